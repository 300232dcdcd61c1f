"""A snapshot's Arrow tables as the fold's: their columns, checked on read, and the trials and
lists a resumed ``StudyState`` thaws from them when first read (see :mod:`._coldfold`).

The bytes around the tables (layout, checksum, header): :mod:`hpostore.log._snapcodec`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import SnapshotChanged
from ._arrowcols import from_numpy, strings, to_numpy
from ._coldfold import Prefix
from .trial import WITH_RESULT, Call, TrialState, TrialStatus

#: the trial table's columns: every scalar ``TrialState`` attribute, in ``TrialState`` order
TRIAL_COLUMNS = (
    ("trial", pa.int64()), ("config_json", pa.string()), ("status", pa.string()),
    ("error", pa.float64()), ("runtime", pa.float64()), ("resource", pa.float64()),
    ("attempts", pa.int64()), ("updated", pa.bool_()), ("worker", pa.string()),
    ("session", pa.string()), ("suggested_at", pa.float64()), ("started_at", pa.float64()),
    ("finished_at", pa.float64()), ("message", pa.string()), ("payload_json", pa.string()),
    ("stopped", pa.bool_()), ("decision", pa.string()), ("metrics_json", pa.string()),
)  # fmt: skip
_STATUS = {s.value: s for s in TrialStatus}
_WITH_RESULT = frozenset(s.value for s in WITH_RESULT)
_CALLS = tuple(Call)  # by code: Call.SUGGEST is 0, Call.UPDATE 1
#: the trial columns a resume reads at once (the ``keys`` table); the others (the ``trials``
#: table) are read when the first trial is thawed
KEY_COLUMNS = ("trial", "status", "updated")
#: how many bytes of a table's IPC stream hold its schema (the first message), at most
_SCHEMA_BYTES = 1 << 16


class Tables:
    """A snapshot's tables, each read (and, from a file, checked against its SHA-256 in the
    header) when first needed. ``read(offset, size)`` gives the bytes of the tables' area."""

    def __init__(self, entries: list[list[Any]], read: Any, *, where: str, verify: bool) -> None:
        self._entries: dict[str, tuple[int, int, str, int]] = {}
        offset = 0
        for name, size, digest, rows in entries:
            self._entries[name] = (offset, size, digest, rows)
            offset += size
        self._read, self._where, self._verify = read, where, verify
        self._loaded: dict[str, pa.Table] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def rows(self, name: str) -> int:
        return self._entries[name][3]

    def schema(self, name: str) -> pa.Schema:
        offset, size, _, _ = self._entries[name]
        return pa.ipc.open_stream(pa.py_buffer(self._read(offset, min(size, _SCHEMA_BYTES)))).schema

    def __getitem__(self, name: str) -> pa.Table:
        table = self._loaded.get(name)
        if table is None:
            table = self._loaded[name] = self.read(name)
        return table

    def forget(self, *names: str) -> None:
        """Drop these tables if loaded (the next ``[name]`` reads them from the source again)."""
        for name in names:
            self._loaded.pop(name, None)

    def read(self, name: str) -> pa.Table:
        """The table read from the source now (kept by the caller, not by these tables)."""
        table = self._loaded.get(name)
        if table is None:
            offset, size, digest, _ = self._entries[name]
            data = self._read(offset, size)
            if self._verify and hashlib.sha256(data).hexdigest() != digest:
                raise SnapshotChanged(
                    f"{self._where}: the snapshot's {name!r} table changed on disk after the "
                    "study was opened from it. The log is intact: open the study again (the "
                    "snapshot is then ignored, or remove the .snapshots directory)"
                )
            table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
        return table


def _array(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array: its only chunk as it is (``combine_chunks`` would copy it)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def pylist(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """The column as Python objects; a dictionary column's repeated values are one object
    each (as in the live fold, where every trial of a session shares its id string)."""
    array = _array(column) if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(array.type):
        return array.to_pylist()
    values = array.dictionary.to_pylist()
    return [None if i is None else values[i] for i in array.indices.to_pylist()]


def check_schemas(tables: Tables) -> None:
    """Refuse (ValueError: the snapshot is ignored) tables whose columns are not the ones this
    version writes, so that reading or thawing one later cannot fail on a hand-made snapshot."""
    for name, expected in _SCHEMAS.items():
        got = None
        if name in tables:
            got = [(f.name, _value_type(f.type)) for f in tables.schema(name)]
        if got != expected:
            raise ValueError(f"snapshot table {name!r} has columns {got}, not {expected}")


def _value_type(typ: pa.DataType) -> pa.DataType:
    return typ.value_type if pa.types.is_dictionary(typ) else typ


_SCHEMAS = {
    "keys": [c for c in TRIAL_COLUMNS if c[0] in KEY_COLUMNS],
    "trials": [c for c in TRIAL_COLUMNS if c[0] not in KEY_COLUMNS],
    "calls": [("code", pa.int8()), ("trial", pa.int64())],
    "evaluations": [
        ("trial", pa.int64()), ("config", pa.string()), ("error", pa.float64()),
        ("runtime", pa.float64()), ("resource", pa.float64()), ("finished", pa.int64()),
        ("trajectory", pa.float64()), ("finished_elapsed", pa.float64()),
    ],
    "curves": [("trial", pa.int64()), ("resource", pa.float64()), ("error", pa.float64())],
    "results": [("trial", pa.int64()), ("resource", pa.float64()), ("error", pa.float64())],
    "decisions": [("seq", pa.int64()), ("kind", pa.string()), ("trial", pa.int64()),
                  ("payload", pa.string())],
}  # fmt: skip


def cold_lists(tables: Tables, cold: ArrowTrials) -> dict[str, Prefix[Any]]:
    """The fold's lists as functions of the snapshot's tables (see ``ColdList``), each table
    read when its first list is."""

    def evaluations() -> list[Any]:
        ev = tables["evaluations"]
        # a null config is the trial's config when the snapshot was taken (the snapshot's own
        # column, not the live trial, which may since have resumed with another config)
        trials = pylist(ev.column("trial"))
        configs = pylist(ev.column("config"))
        if None in configs:
            current = cold.configs_of(trials)
            configs = [c if c is not None else current[i] for i, c in enumerate(configs)]
        return list(zip(trials, configs, *(pylist(ev.column(c)) for c in ("error", "runtime", "resource"))))  # fmt: skip

    def column(name: str) -> Prefix[Any]:
        return Prefix(
            tables.rows("evaluations"), lambda: pylist(tables["evaluations"].column(name))
        )

    def calls() -> list[Any]:
        t = tables["calls"]
        return list(zip(map(_CALLS.__getitem__, pylist(t.column("code"))), pylist(t.column("trial"))))  # fmt: skip

    def decisions() -> list[Any]:
        t = tables["decisions"]
        return list(zip(*(pylist(t.column(c)) for c in ("seq", "kind", "trial", "payload"))))

    return {
        "calls": Prefix(tables.rows("calls"), calls),
        "evaluations": Prefix(tables.rows("evaluations"), evaluations),
        "finished": column("finished"),
        "trajectory": column("trajectory"),
        "finished_elapsed": column("finished_elapsed"),
        "decisions": Prefix(tables.rows("decisions"), decisions),
    }


class ArrowTrials:
    """One snapshot file's trials as Arrow columns: rows become ``TrialState`` objects when
    asked for (the fold's ``ColdTrials`` is :class:`~._snaplayers.LayeredTrials`, over the
    files of a chain)."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        keys = tables.read("keys")  # kept as the compact arrays below, not as the table
        # copies: an Arrow buffer inside the snapshot's bytes may be unaligned, and numpy's
        # binary search over an unaligned array copies it on every call
        self._ids = to_numpy(keys.column("trial"))
        self._n = len(self._ids)
        status = _array(keys.column("status"))
        #: the statuses in use, and each row's as a code into them (one byte a trial)
        self._statuses = status.dictionary.to_pylist()
        if not set(self._statuses) <= set(_STATUS) or len(self._statuses) > 127:
            raise ValueError("snapshot trials have an unknown status")
        self._codes = to_numpy(status.indices).astype(np.int8)
        self._updated = to_numpy(keys.column("updated"))
        #: trial ids strictly increasing, as the fold writes them (suggest order is id order):
        #: a lookup is then a binary search
        self.sorted = bool(np.all(self._ids[1:] > self._ids[:-1]))
        self._columns: list[pa.Array] | None = None  # every trial column, once thawing starts
        self._curve_index: list[Any] | None = None

    @property
    def _cols(self) -> list[pa.Array]:
        """Every trial column in ``TRIAL_COLUMNS`` order (reads the ``trials`` table)."""
        if self._columns is None:
            rest = self._tables["trials"]
            statuses = strings(self._statuses)
            status = pa.DictionaryArray.from_arrays(from_numpy(self._codes), statuses)
            keys = {
                "trial": from_numpy(self._ids),
                "status": status,
                "updated": from_numpy(self._updated),
            }
            self._columns = [keys[n] if n in keys else _array(rest.column(n)) for n, _ in TRIAL_COLUMNS]  # fmt: skip
        return self._columns

    @property
    def _point_index(self) -> list[Any]:
        """Per table (curves, results): (table, its trial ids) when grouped by trial in id order
        (a binary search finds a trial's slice), else a dict of each trial's points."""
        if self._curve_index is None:
            index: list[Any] = []
            for name in ("curves", "results"):
                t = self._tables[name]
                ids = to_numpy(t.column("trial"))
                if bool(np.all(ids[1:] >= ids[:-1])):
                    index.append((t, ids))
                else:
                    index.append(_grouped(t))
            self._curve_index = index
        return self._curve_index

    def __len__(self) -> int:
        return self._n

    def loaded_bytes(self) -> int:
        """Bytes of the columns a thaw read and keeps (0 before the first thaw or a release)."""
        total = sum(c.nbytes for c in self._columns) if self._columns is not None else 0
        for entry in self._curve_index or ():
            if isinstance(entry, tuple):  # (table, its trial ids)
                total += entry[0].nbytes + entry[1].nbytes
            else:  # a dict of each trial's points: ~100 bytes a point as Python objects
                total += 100 * sum(map(len, entry.values()))
        return total

    def release(self) -> None:
        """Drop the columns a thaw read (the trials, curves and results tables); the next thaw
        reads them from the file again."""
        self._columns = self._curve_index = None
        self._tables.forget("trials", "curves", "results")

    @property
    def tables(self) -> Tables:
        return self._tables

    @property
    def ids(self) -> np.ndarray:
        """The trial ids, in row order."""
        return self._ids

    def thaw_rows(self, rows: np.ndarray) -> list[TrialState]:
        """The trials at ``rows`` (row numbers) as new ``TrialState`` objects, in that order."""
        if len(rows) == self._n and bool(np.all(rows == np.arange(self._n))):
            return list(self.thaw_all())
        taken = from_numpy(np.asarray(rows, dtype=np.int64))
        cols = [pylist(col.take(taken)) for col in self._cols]
        cols[2] = [_STATUS[s] for s in cols[2]]
        index = self._point_index
        out = []
        for values in zip(*cols):
            key = values[0]
            curve, results = (
                list(p.get(key, [])) if isinstance(p, dict) else _points(p[0], p[1], key)
                for p in index
            )
            out.append(_trial(values, curve, results))
        return out

    def pending_rows(self) -> np.ndarray:
        """A mask of the rows whose trial has a result and no ``update`` after it."""
        with_result = np.array([s in _WITH_RESULT for s in self._statuses], bool)
        return with_result[self._codes] & ~self._updated

    def thaw_all(self) -> Iterator[TrialState]:
        cols = [pylist(col) for col in self._cols]
        cols[2] = [_STATUS[s] for s in cols[2]]
        curves, results = (_grouped(self._tables[name]) for name in ("curves", "results"))
        for values in zip(*cols):
            trial = values[0]
            yield _trial(values, curves.get(trial, []), results.get(trial, []))

    def configs_of(self, trials: list[int]) -> list[str]:
        """The snapshot's config of each of ``trials``."""
        if self.sorted:
            rows = np.searchsorted(self._ids, np.asarray(trials, dtype=np.int64))
        else:
            row_of = {trial: row for row, trial in enumerate(self._ids.tolist())}
            rows = np.array([row_of[t] for t in trials], dtype=np.int64)
        # the config column of the loaded columns, else read for this call only (a list built
        # from a layer must not keep its trial columns: only thawed layers' are bounded)
        if self._columns is not None:
            configs = self._columns[1]
        else:
            configs = _array(self._tables.read("trials").column("config_json"))
        return pylist(configs.take(from_numpy(np.asarray(rows, dtype=np.int64))))


def _grouped(table: pa.Table) -> dict[int, list[tuple[float | None, float]]]:
    """(resource, error) of each trial in a curves/results table, in table order."""
    by_trial: dict[int, list[tuple[float | None, float]]] = {}
    for trial, point in zip(pylist(table.column("trial")), zip(pylist(table.column("resource")), pylist(table.column("error")))):  # fmt: skip
        by_trial.setdefault(trial, []).append(point)
    return by_trial


def _points(table: pa.Table, ids: Any, trial: int) -> list[tuple[float | None, float]]:
    """(resource, error) of ``trial`` in a curves/results table grouped by trial id."""
    lo, hi = (int(i) for i in np.searchsorted(ids, [trial, trial + 1]))
    part = table.slice(lo, hi - lo)
    return list(zip(pylist(part.column("resource")), pylist(part.column("error"))))


def _trial(values: Sequence[Any], curve: list[Any], results: list[Any]) -> TrialState:
    (trial, config, status, error, runtime, resource, attempts, updated, worker, session,
     suggested_at, started_at, finished_at, message, payload, stopped, decision,
     metrics) = values  # fmt: skip
    return TrialState(
        trial, config, status, error, runtime, resource, attempts, updated, worker, session,
        suggested_at, started_at, finished_at, message, payload, curve, stopped, results,
        decision, metrics_json=metrics,
    )  # fmt: skip
