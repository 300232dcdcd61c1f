"""A snapshot's Arrow tables as the fold's: their columns, checked on read, and the trials and
lists a resumed ``StudyState`` thaws from them when first read (see :mod:`._coldfold`).

The bytes around the tables (layout, checksum, header): :mod:`hpostore.log._snapcodec`.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

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


def check_schemas(tables: dict[str, pa.Table]) -> None:
    """Refuse (ValueError: the snapshot is ignored) tables whose columns are not the ones this
    version writes, so that thawing a row later cannot fail on a hand-made snapshot."""
    for name, expected in _SCHEMAS.items():
        table = tables.get(name)
        got = None if table is None else [(f.name, _value_type(f.type)) for f in table.schema]
        if got != expected:
            raise ValueError(f"snapshot table {name!r} has columns {got}, not {expected}")
    statuses = tables["trials"].column("status").combine_chunks()
    if not set(statuses.dictionary.to_pylist()) <= set(_STATUS):
        raise ValueError("snapshot trials have an unknown status")


def _value_type(typ: pa.DataType) -> pa.DataType:
    return typ.value_type if pa.types.is_dictionary(typ) else typ


_SCHEMAS = {
    "trials": list(TRIAL_COLUMNS),
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


def cold_lists(tables: dict[str, pa.Table], cold: ArrowTrials) -> dict[str, Prefix[Any]]:
    """The fold's lists as functions of the snapshot's columns (see ``ColdList``)."""
    calls, ev, de = tables["calls"], tables["evaluations"], tables["decisions"]

    def evaluations() -> list[Any]:
        # a null config is the trial's config when the snapshot was taken (the snapshot's own
        # column, not the live trial, which may since have resumed with another config)
        trials = pylist(ev.column("trial"))
        configs = pylist(ev.column("config"))
        if None in configs:
            current = cold.configs_of(trials)
            configs = [c if c is not None else current[i] for i, c in enumerate(configs)]
        return list(zip(trials, configs, *(pylist(ev.column(c)) for c in ("error", "runtime", "resource"))))  # fmt: skip

    def column(name: str) -> Prefix[Any]:
        return Prefix(ev.num_rows, lambda: pylist(ev.column(name)))

    return {
        "calls": Prefix(calls.num_rows, lambda: list(zip(
            map(_CALLS.__getitem__, pylist(calls.column("code"))), pylist(calls.column("trial"))
        ))),
        "evaluations": Prefix(ev.num_rows, evaluations),
        "finished": column("finished"),
        "trajectory": column("trajectory"),
        "finished_elapsed": column("finished_elapsed"),
        "decisions": Prefix(de.num_rows, lambda: list(zip(
            *(pylist(de.column(c)) for c in ("seq", "kind", "trial", "payload"))
        ))),
    }  # fmt: skip


class ArrowTrials:
    """A snapshot's trials as Arrow columns (``ColdTrials``): a row becomes a ``TrialState``
    when the fold or a reader first asks for it, all rows at once when one iterates."""

    def __init__(self, trials: pa.Table, curves: pa.Table, results: pa.Table) -> None:
        # copies: an Arrow buffer inside the snapshot's bytes may be unaligned, and numpy's
        # binary search over an unaligned array copies it on every call
        self._ids = np.array(trials.column("trial").to_numpy())
        self._n = len(self._ids)
        self._cols = [_array(trials.column(name)) for name, _ in TRIAL_COLUMNS]
        #: (table, its trial ids) of the curves and of the results, grouped by trial
        self._points = [(t, np.array(t.column("trial").to_numpy())) for t in (curves, results)]
        #: trial ids strictly increasing and points grouped in that order, as the fold writes
        #: them (suggest order is id order): a lookup is then a binary search
        self.sorted = bool(np.all(self._ids[1:] > self._ids[:-1])) and all(
            bool(np.all(ids[1:] >= ids[:-1])) for _, ids in self._points
        )

    def __len__(self) -> int:
        return self._n

    def _row(self, trial: object) -> int | None:
        key = _as_id(trial)
        if key is None:
            return None
        row = int(np.searchsorted(self._ids, key))
        return row if row < self._n and self._ids[row] == key else None

    def has(self, trial: object) -> bool:
        return self._row(trial) is not None

    def thaw(self, trial: object) -> TrialState | None:
        row = self._row(trial)
        if row is None:
            return None
        values = [col[row].as_py() for col in self._cols]
        values[2] = _STATUS[values[2]]
        key = int(self._ids[row])
        curve, results = (_points(t, ids, key) for t, ids in self._points)
        return _trial(values, curve, results)

    def thaw_all(self) -> Iterator[TrialState]:
        cols = [pylist(col) for col in self._cols]
        cols[2] = [_STATUS[s] for s in cols[2]]
        points: list[dict[int, list[Any]]] = []
        for t, _ in self._points:
            by_trial: dict[int, list[Any]] = {}
            for trial, point in zip(pylist(t.column("trial")), zip(pylist(t.column("resource")), pylist(t.column("error")))):  # fmt: skip
                by_trial.setdefault(trial, []).append(point)
            points.append(by_trial)
        curves, results = points
        for values in zip(*cols):
            trial = values[0]
            yield _trial(values, curves.get(trial, []), results.get(trial, []))

    def pending_update_ids(self) -> list[int]:
        status, updated = self._cols[2], self._cols[7]
        with_result = np.array([s in _WITH_RESULT for s in status.dictionary.to_pylist()], bool)
        mask = with_result[status.indices.to_numpy()] & ~updated.to_numpy(zero_copy_only=False)
        return [int(i) for i in self._ids[mask]]

    def configs_of(self, trials: list[int]) -> list[str]:
        """The snapshot's config of each of ``trials``."""
        if self.sorted:
            rows = np.searchsorted(self._ids, np.asarray(trials, dtype=np.int64))
        else:
            row_of = {trial: row for row, trial in enumerate(self._ids.tolist())}
            rows = np.array([row_of[t] for t in trials], dtype=np.int64)
        return pylist(self._cols[1].take(pa.array(rows)))


def _as_id(trial: object) -> int | None:
    """``trial`` as the int key a dict would match it to (a numpy int, True, 3.0 find trial 1
    or 3 in a dict too), or None when no trial id equals it."""
    try:
        return operator.index(trial)  # type: ignore[arg-type]
    except TypeError:
        if isinstance(trial, float) and trial.is_integer():
            return int(trial)
        return None


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
