"""Arrow arrays built from Python values and numpy arrays, and numpy arrays read from Arrow
arrays, without importing pandas.

Why not ``pa.array(values, type)``: when pandas is installed (a dev dependency, or the user's),
pyarrow's ``pa.array`` (on a list or a numpy array), ``pa.scalar``, ``Array.take`` with a numpy
argument, ``Array.to_numpy`` and a tz-aware timestamp's ``to_pylist`` consult pyarrow's lazy
pandas shim, which imports pandas: ~0.5-1 s and ~50 MB of resident memory, in a process that
never uses it. The store's write path, the fold, snapshots and resume use the builders here
instead, which reach Arrow through entry points that do not consult the shim
(``Array.from_buffers``, ``DictionaryArray.from_arrays`` of two arrays, ``dictionary_encode``).
pyarrow's pandas integration stays as it is for the user (``to_pandas()``, ``pa.table(df)``).

Each builder gives the array ``pa.array(values, type)`` gives (the same values, nulls and
bits): None is a null, and a float NaN stays a NaN value (not a null), as ``pa.array`` of a list
keeps it (tests/test_no_pandas.py compares them).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from itertools import compress, repeat
from typing import Any, cast

import numpy as np
import pyarrow as pa

#: the most bytes of text one ``pa.string()`` array holds (its offsets are int32)
_MAX_STRING_BYTES = 2**31 - 1
_INT64 = pa.int64()
#: the numpy type of each Arrow number type these builders read and write
_DTYPES = {
    t: np.dtype(d)
    for t, d in (
        (pa.int8(), "int8"), (pa.int16(), "int16"), (pa.int32(), "int32"), (pa.int64(), "int64"),
        (pa.uint8(), "uint8"), (pa.uint16(), "uint16"), (pa.uint32(), "uint32"),
        (pa.uint64(), "uint64"), (pa.float32(), "float32"), (pa.float64(), "float64"),
    )
}  # fmt: skip


def _valid(values: Sequence[Any]) -> tuple[bytes, int]:
    """One byte a value (1: not None) and the count of values that are not None."""
    valid = bytes(map(operator.is_not, values, repeat(None)))
    return valid, len(values) - valid.count(0)


def _bitmap(valid: bytes | np.ndarray) -> pa.Buffer:
    """The Arrow validity bitmap of a byte or bool mask (nonzero: not null)."""
    mask = np.frombuffer(valid, bool) if isinstance(valid, bytes) else valid
    return pa.py_buffer(np.packbits(mask, bitorder="little"))


def int64s(values: Sequence[int | None], typ: pa.DataType = _INT64) -> pa.Array:
    """An integer array (``typ``: int64 or another integer type) of ints and Nones. Raises
    OverflowError for an int outside ``typ``'s range, as ``pa.array`` raises."""
    dtype, n = _DTYPES[typ], len(values)
    try:
        data = np.fromiter(values, dtype=dtype, count=n)
    except TypeError:  # a None among them (or a value that is no int: it fails again below)
        pass
    else:
        return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(data)])
    nulls = values.count(None)
    if nulls <= n >> 6:  # a few (the events of no trial among a batch): set them to 0 in a copy
        copy, at = list(values), list[int]()
        for _ in range(nulls):
            at.append(copy.index(None, at[-1] + 1 if at else 0))
            copy[at[-1]] = 0  # a null's slot holds 0, as in pa.array's arrays
        data = np.fromiter(copy, dtype=dtype, count=n)
        present = np.ones(n, dtype=bool)
        present[at] = False
        return pa.Array.from_buffers(typ, n, [_bitmap(present), pa.py_buffer(data)])
    valid, k = _valid(values)
    data = np.zeros(n, dtype=dtype)
    data[np.frombuffer(valid, bool)] = np.fromiter(compress(values, valid), dtype=dtype, count=k)
    return pa.Array.from_buffers(typ, n, [_bitmap(valid), pa.py_buffer(data)])


def float64s(values: Sequence[float | None]) -> pa.Array:
    """A float64 array of floats (or ints) and Nones; a NaN is a value, a None a null."""
    n = len(values)
    data = np.fromiter(values, dtype=np.float64, count=n)  # None -> NaN, told apart below
    nan = np.isnan(data)
    nans = int(np.count_nonzero(nan))
    nulls = values.count(None) if nans else 0
    if not nulls:
        return pa.Array.from_buffers(pa.float64(), n, [None, pa.py_buffer(data)])
    if nulls == nans:  # every NaN is a None
        valid = ~nan
    else:  # NaN values too: look at the NaN positions alone
        valid = np.ones(n, dtype=bool)
        at = np.flatnonzero(nan)
        valid[at] = [values[i] is not None for i in at.tolist()]
    data[~valid] = 0.0  # a null's slot holds zero, as in pa.array's arrays
    return pa.Array.from_buffers(pa.float64(), n, [_bitmap(valid), pa.py_buffer(data)])


def strings(values: Sequence[str | None]) -> pa.Array:
    """A ``pa.string()`` array of strs and Nones (UTF-8). Raises UnicodeEncodeError for a str
    that is not valid UTF-8 (a lone surrogate), as ``pa.array`` refuses it."""
    n = len(values)
    if n == 0:
        return pa.Array.from_buffers(
            pa.string(), 0, [None, pa.py_buffer(np.zeros(1, np.int32)), pa.py_buffer(b"")]
        )
    first = values[0]
    if isinstance(first, str) and values[-1] == first and values.count(first) == n:
        # one text (a batch's study, or its session): no join, no search for separators
        text = first.encode("utf-8")
        if n * len(text) > _MAX_STRING_BYTES:
            raise OverflowError(
                f"{n * len(text)} bytes of text in one Arrow string array; at most "
                f"{_MAX_STRING_BYTES}"
            )
        offsets = np.arange(n + 1, dtype=np.int32) * np.int32(len(text))
        data = pa.py_buffer(text * n)
        return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), data])
    valid: bytes | None = None
    texts = cast("Sequence[str]", values)  # None is caught by join
    try:
        # the texts joined by NUL in one pass: the NULs then give each text's UTF-8 length
        joined = "\x00".join(texts)
    except TypeError:  # a None among them (or a value that is no str: it fails again below)
        valid, k = _valid(values)
        texts = cast("list[str]", list(compress(values, valid)))
        joined = "\x00".join(texts)
    else:
        k = n
    encoded = joined.encode("utf-8")
    ends = np.flatnonzero(np.frombuffer(encoded, dtype=np.uint8) == 0)
    if len(ends) == k - 1:  # the NULs are the separators: the end of text i is the position
        # of the NUL after it less the i NULs before it
        data = encoded.replace(b"\x00", b"")
        cumulative = np.empty(k, dtype=np.int64)
        cumulative[:-1] = ends - np.arange(k - 1)
        cumulative[-1:] = len(data)
    else:  # a text holds NUL itself
        parts = [t.encode("utf-8") for t in texts]
        data = b"".join(parts)
        cumulative = np.cumsum(np.fromiter(map(len, parts), dtype=np.int64, count=k))
    if len(data) > _MAX_STRING_BYTES:
        raise OverflowError(
            f"{len(data)} bytes of text in one Arrow string array; at most {_MAX_STRING_BYTES}"
        )
    offsets = np.zeros(n + 1, dtype=np.int32)
    if valid is None:
        offsets[1:] = cumulative
        bitmap = None
    else:  # a null is an empty slot: its end is the end of the text before it
        offsets[1:][np.frombuffer(valid, bool)] = cumulative
        np.maximum.accumulate(offsets, out=offsets)
        bitmap = _bitmap(valid)
    return pa.Array.from_buffers(
        pa.string(), n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def bools(values: Sequence[bool | None]) -> pa.Array:
    """A bool array of bools and Nones."""
    data = np.fromiter(values, dtype=bool, count=len(values))  # None -> False
    bitmap = _bitmap(_valid(values)[0]) if None in values else None
    bits = pa.py_buffer(np.packbits(data, bitorder="little"))
    return pa.Array.from_buffers(pa.bool_(), len(data), [bitmap, bits])


def column(values: Sequence[Any], typ: pa.DataType) -> pa.Array:
    """``pa.array(values, typ)`` for the types the store writes: ints, floats, strings, bools,
    and a dictionary of strings (encoded in order of first appearance, as
    ``dictionary_encode`` does)."""
    if pa.types.is_dictionary(typ):
        encoded = column(values, typ.value_type).dictionary_encode()
        if encoded.type != typ:  # dictionary_encode's indices are int32
            encoded = encoded.cast(typ)
        return encoded
    if not values or (values[0] is None and values.count(None) == len(values)):
        # Nones alone (an attribute never set, the resource of a study without fidelities):
        # no builder's passes
        return pa.nulls(len(values), typ)
    if pa.types.is_string(typ):
        return strings(values)
    if pa.types.is_floating(typ) and typ.bit_width == 64:
        return float64s(values)
    if pa.types.is_integer(typ):
        return int64s(values, typ)
    if pa.types.is_boolean(typ):
        return bools(values)
    raise TypeError(f"no builder for an Arrow {typ} column")


def from_numpy(data: np.ndarray) -> pa.Array:
    """A 1-d numpy array of numbers or bools as an Arrow array of its type, without nulls
    (sharing ``data``'s memory unless it is bools or not contiguous)."""
    if data.ndim != 1:
        raise ValueError(f"expected a 1-d array, got shape {data.shape}")
    typ = pa.from_numpy_dtype(data.dtype)
    if data.dtype == np.bool_:
        buffer = pa.py_buffer(np.packbits(data, bitorder="little"))
    else:
        buffer = pa.py_buffer(np.ascontiguousarray(data))
    return pa.Array.from_buffers(typ, len(data), [None, buffer])


def to_numpy(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric or bool Arrow array without nulls as a new numpy array of its type (a copy:
    aligned, writable, independent of the Arrow buffers). Raises ValueError for nulls."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if array.null_count:
        raise ValueError(f"an Arrow {array.type} column holds {array.null_count} nulls")
    n, offset = len(array), array.offset
    buffer = array.buffers()[1]
    if pa.types.is_boolean(array.type):
        if n == 0:
            return np.zeros(0, dtype=bool)
        bits = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")
        return bits[offset : offset + n].astype(bool)
    dtype = _DTYPES.get(array.type)
    if dtype is None:
        raise TypeError(f"no numpy reading for an Arrow {array.type} column")
    if n == 0:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(buffer, dtype=dtype, count=n, offset=offset * dtype.itemsize).copy()
