"""The store never imports pandas: a batched study, its snapshots, a reopen and a resume leave
``pandas`` out of ``sys.modules``, and the Arrow builders that make this so
(:mod:`hpostore.log._arrowcols`) give the arrays ``pa.array`` gives.

pyarrow imports pandas (when it is installed) inside ``pa.array``, ``Array.to_numpy`` and a few
other entry points: ~50 MB and ~1 s in a process that never uses it. The subprocess test proves
nothing where pandas is not installed, so it is skipped there.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpostore.log import _arrowcols, _snapstream
from hpostore.log.events import SCHEMA, rows_to_table

_STUDY = """
import math, os, shutil, sys
from scipy import stats
from hpostore import ASHAScheduler, HPOTuner, RandomSearcher, open_store
from hpostore.tuner import _snapshots

_snapshots.EVERY_EVENTS = 150  # layers on a full snapshot, not only the one at close

def curve(x, y, max_epochs, report):
    if x > 0.8:
        raise ValueError("a failing region: ü")
    error = 1.0
    for epoch in range(1, int(max_epochs) + 1):
        error = math.nan if x < 0.05 else (x - 0.3) ** 2 + y + 1.0 / epoch
        if report(epoch, error):
            break
    return error

def run(path, n):
    store = open_store(path, durability="batched")
    space = {{"x": stats.uniform(0, 1), "y": stats.loguniform(1e-3, 1)}}
    scheduler = ASHAScheduler(RandomSearcher(space, seed=3), eta=2, r_min=1, r_max=4)
    tuner = HPOTuner(scheduler, curve, store=store, study="s ü", verbose=False,
                     max_failures=None)
    tuner.run(n)
    assert store.trials("s ü").num_rows > 0
    store.close()

path = {path!r}
snapshots = os.path.normpath(path) + ".snapshots"
run(path, 120)  # a new study: the fold, snapshots written
run(path, 240)  # reopened: resumed from the snapshots, thawing cold trials for ASHA
shutil.move(snapshots, snapshots + ".aside")
run(path, 260)  # resumed by replaying the whole log
assert os.listdir(snapshots), "no snapshot was written"
from hpostore.log.events import ARROW_LINE_ROWS, encode_commit
from hpostore.log.tail import parse_tail
rows = [("s", i, 0, 0.0, "t", "suggest", i, "{{}}", None, None, None, None, None)
        for i in range(1, ARROW_LINE_ROWS + 1)]
assert parse_tail(encode_commit(rows)[0], "x").rows == rows  # a large commit's Arrow line
heavy = sorted(m for m in sys.modules if m.split(".")[0] == "pandas")
assert not heavy, f"pandas was imported: {{heavy[:3]}}"
import pyarrow as pa
import pandas as pd  # pyarrow's pandas integration still works in the same process
assert pa.table(pd.DataFrame({{"a": [1]}})).to_pandas()["a"].tolist() == [1]
"""


@pytest.mark.skipif(
    importlib.util.find_spec("pandas") is None, reason="pandas is not installed: nothing to prove"
)
@pytest.mark.parametrize("store", ["runs.duckdb", "runs/"], ids=["duckdb", "parquet"])
def test_a_study_its_snapshots_and_resume_never_import_pandas(tmp_path: Path, store: str) -> None:
    code = _STUDY.format(path=os.fspath(tmp_path) + os.sep + store)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


# --- the builders give what pa.array gives -------------------------------------------------
_AWKWARD: list[tuple[pa.DataType, list[Any]]] = [
    (pa.int64(), []),
    (pa.int64(), [None]),
    (pa.int64(), [1, None, -(2**63), 2**63 - 1, 0]),
    (pa.int64(), [7] * 100 + [None] + [8] * 100),  # a few nulls among many
    (pa.int8(), [0, None, -128, 127]),
    (pa.float64(), []),
    (pa.float64(), [None, None]),
    (pa.float64(), [math.nan]),
    (pa.float64(), [1.5, None, math.nan, math.inf, -math.inf, -0.0, 0.0, 5, 2**53, 5e-324]),
    (pa.float64(), [None, math.nan, None, float("nan")]),
    (pa.string(), []),
    (pa.string(), [""]),
    (pa.string(), [None]),
    (pa.string(), ["", "", ""]),
    (pa.string(), ["same"] * 5),
    (pa.string(), ["a", None, "", "ü", "日本語", "😀", "x" * 1000]),
    (pa.string(), ["nul \x00 inside", None, "b", "\x00"]),
    (pa.string(), [None, "", None]),
    (pa.bool_(), []),
    (pa.bool_(), [True, False, None] * 7),
    (pa.dictionary(pa.int32(), pa.string()), ["a", "b", None, "a", "ü", "b"]),
]


def _reference(values: list[Any], typ: pa.DataType) -> pa.Array:
    if pa.types.is_dictionary(typ):
        return pa.array(values, typ.value_type).dictionary_encode()
    return pa.array(values, typ)


def _same(got: pa.Array, want: pa.Array) -> bool:
    """Equal arrays, a NaN equal to a NaN (``Array.equals`` holds NaN unequal to itself), with
    the same nulls and, for floats, the same bits (-0.0 is not 0.0, a NaN is not a null)."""
    if got.type != want.type or got.null_count != want.null_count:
        return False
    if not pa.types.is_floating(got.type):
        return got.equals(want)
    if not got.is_null().equals(want.is_null()):
        return False
    n = len(got)
    bits = [a.buffers()[1].to_pybytes()[: 8 * n] if n else b"" for a in (got, want)]
    return bits[0] == bits[1]


@pytest.mark.parametrize(("typ", "values"), _AWKWARD, ids=lambda x: str(x)[:20])
def test_builders_give_what_pa_array_gives(typ: pa.DataType, values: list[Any]) -> None:
    got = _arrowcols.column(values, typ)
    got.validate(full=True)
    assert _same(got, _reference(values, typ))
    assert _same(_arrowcols.column(tuple(values), typ), got)  # a tuple (zip's) as a list


@pytest.mark.parametrize(
    "typ",
    sorted({f.type for schema in [SCHEMA, *_snapstream.SCHEMAS.values()] for f in schema}, key=str),
    ids=str,
)
def test_a_column_of_nones_alone_is_what_pa_array_gives(typ: pa.DataType) -> None:
    # (made without the builders' passes: the events' resource, a trial's unset attributes)
    for n in (0, 1, 70_000):
        got = _arrowcols.column([None] * n, typ)
        got.validate(full=True)
        assert _same(got, _reference([None] * n, typ))


@given(st.lists(st.one_of(st.none(), st.floats(), st.integers(-(2**53), 2**53))))
def test_floats_keep_nan_apart_from_null(values: list[Any]) -> None:
    assert _same(_arrowcols.float64s(values), pa.array(values, pa.float64()))


@given(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))))
def test_ints(values: list[Any]) -> None:
    assert _same(_arrowcols.int64s(values), pa.array(values, pa.int64()))


@given(st.lists(st.one_of(st.none(), st.text(), st.sampled_from(["", "\x00", "ü"]))))
def test_strings(values: list[Any]) -> None:
    got = _arrowcols.strings(values)
    got.validate(full=True)
    assert _same(got, pa.array(values, pa.string()))


def test_builders_refuse_what_pa_array_refuses() -> None:
    with pytest.raises(OverflowError):
        _arrowcols.int64s([2**63])
    with pytest.raises(OverflowError):
        _arrowcols.int64s([1, None, 2**63])
    with pytest.raises(TypeError):
        _arrowcols.strings(["a", 1])
    with pytest.raises(TypeError):
        _arrowcols.strings([None, 1])
    with pytest.raises(UnicodeEncodeError):
        _arrowcols.strings(["lone \udcff surrogate"])


@pytest.mark.parametrize(
    "data",
    [
        np.array([1, -(2**63), 2**63 - 1], np.int64),
        np.array([1, -1, 127], np.int8),
        np.array([True, False, True, True, False, False, True, False, True]),
        np.array([1.5, np.nan, -0.0]),
        np.zeros(0, bool),
        np.zeros(0, np.int64),
        np.arange(10)[::3],  # not contiguous
    ],
    ids=lambda a: f"{a.dtype}[{len(a)}]",
)
def test_numpy_round_trip(data: np.ndarray) -> None:
    array = _arrowcols.from_numpy(data)
    assert array.type == pa.from_numpy_dtype(data.dtype)
    assert array.to_pylist() == pa.array(data).to_pylist() or np.isnan(data).any()
    back = _arrowcols.to_numpy(array)
    assert back.dtype == data.dtype and np.array_equal(back, data, equal_nan=data.dtype.kind == "f")
    for lo in range(min(3, len(data))):  # an array's offset into its buffers (a slice)
        assert np.array_equal(_arrowcols.to_numpy(array.slice(lo)), data[lo:], equal_nan=True)
    chunked = pa.chunked_array([array, array], array.type)
    assert np.array_equal(
        _arrowcols.to_numpy(chunked), np.concatenate([data, data]), equal_nan=True
    )


def test_to_numpy_refuses_nulls() -> None:
    with pytest.raises(ValueError, match="null"):
        _arrowcols.to_numpy(pa.array([1, None], pa.int64()))


def test_rows_to_table_is_the_struct_conversion() -> None:
    """Awkward rows give the table that Arrow's own conversion of the row tuples gave."""
    rows = [
        ("s", 1, 0, 0.0, "w", "study", None, None, None, None, None, None, '{"a":1}'),
        ("s", 2, -1, -0.0, "w", "suggest", 0, '{"x":"ü"}', None, None, None, None, None),
        ("s", 3, 2**62, math.inf, "w", "report", 0, None, 1.0, math.nan, 0.5, "p", None),
        ("s", 2**63 - 1, 5, 1e-300, "w", "evaluate", -(2**63), None, 2.0, -0.0, None, "", ""),
        ("s", 5, 6, 2.5, "日本", "fail", 2**63 - 1, "\x00", None, None, math.nan, None, "😀"),
    ]
    struct = pa.struct([(f.name, pa.int64() if f.name == "ts" else f.type) for f in SCHEMA])
    columns = list(pa.RecordBatch.from_struct_array(pa.array(rows, type=struct)).columns)
    columns[2] = columns[2].cast(SCHEMA.field("ts").type)
    want = pa.Table.from_arrays(columns, schema=SCHEMA)
    got = rows_to_table(rows)
    assert got.schema.equals(want.schema)
    for name in SCHEMA.names:
        assert _same(got.column(name).chunk(0), want.column(name).chunk(0)), name
    assert rows_to_table([]).equals(want.slice(0, 0))
    with pytest.raises(ValueError, match="columns"):
        rows_to_table([rows[0][:-1]])


_CLI = """
import sys
from hpostore.cli import main
for argv in {commands!r}:
    sys.argv = ["hpostore", *argv]
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, (argv, exc.code)
heavy = sorted(m for m in sys.modules if m.split(".")[0] == "pandas")
assert not heavy, f"pandas was imported: {{heavy[:3]}}"
"""


@pytest.mark.skipif(
    importlib.util.find_spec("pandas") is None, reason="pandas is not installed: nothing to prove"
)
def test_the_cli_export_and_compact_never_import_pandas(tmp_path: Path) -> None:
    from hpostore import open_store

    source = os.fspath(tmp_path / "a.duckdb")
    with open_store(source) as store:
        for seq, kind in enumerate(["study", "session", "end"], start=1):
            payload = '{"format_version":2}' if kind == "study" else None
            store.append("s ü", kind, elapsed=float(seq), session="t", payload=payload)
    parquet, copy = os.fspath(tmp_path / "p") + os.sep, os.fspath(tmp_path / "b.duckdb")
    commands = [
        ["export", source, "--parquet", parquet],
        ["compact", parquet],
        ["export", parquet, "--duckdb", copy],
        ["studies", copy],
    ]
    code = _CLI.format(commands=commands)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "s ü" in proc.stdout
