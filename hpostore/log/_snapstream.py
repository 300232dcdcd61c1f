"""A fold's snapshot tables as streams of Arrow record batches (the writer's side).

What the fold holds as Python objects (``TrialState``, list items) is converted in batches;
what it still holds as an earlier snapshot's columns (a resumed study, or a live one after
:meth:`TrialMap.rebase`) is copied from that snapshot batch by batch, never built as objects
nor held whole. So a snapshot of a large study costs memory in proportion to a batch, and
time in proportion to the bytes copied plus the objects converted.

Rows keep the order a full encoding would give them: trials by id (the columns' rows that a
``TrialState`` replaces are dropped and its row merged in at its place), list items in list
order (the snapshot's prefix first).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from ._coldfold import Prefix
from ._snaptables import _SCHEMAS, KEY_COLUMNS, TRIAL_COLUMNS, ArrowTrials
from .fold import StudyState
from .trial import TrialState

#: rows per record batch the writer builds from Python objects
BATCH = 1 << 16
#: trial columns whose values repeat (dictionary-encoded)
REPEATED = frozenset(("status", "worker", "session", "decision"))

Batches = Callable[[], Iterator[pa.RecordBatch]]


def _schema(name: str) -> pa.Schema:
    return pa.schema(
        [(n, pa.dictionary(pa.int32(), t) if n in REPEATED and name in ("keys", "trials") else t)
         for n, t in _SCHEMAS[name]]
    )  # fmt: skip


SCHEMAS = {name: _schema(name) for name in _SCHEMAS}


def tables(state: StudyState) -> list[tuple[str, pa.Schema, Batches]]:
    """(name, schema, batches) of each table of ``state``'s snapshot, in file order."""
    cold, hot = state.trials.parts()
    replaced: list[int] = []
    if isinstance(cold, ArrowTrials):
        new = []
        for i in hot:
            (replaced if cold.has(i) else new).append(i)
        if new and not all(a < b for a, b in zip([cold.last, *new], new)):
            # a trial id below an earlier one (a scheduler's own ids): rows in suggest order
            # can no longer be in id order, so the columns are thawed and written as objects
            state.trials.thaw()
            cold, hot = state.trials.parts()
    if not isinstance(cold, ArrowTrials):
        cold, replaced = None, []
    # rows in id order, which is suggest order when the columns hold any; else dict order
    order = list(hot) if cold is None else sorted(hot)
    ids = np.fromiter(order, np.int64, len(order))
    trials = Trials(cold, hot, ids, np.array(replaced, np.int64))
    lists = Lists(state, hot)
    return [
        ("keys", SCHEMAS["keys"], lambda: trials.batches("keys")),
        ("trials", SCHEMAS["trials"], lambda: trials.batches("trials")),
        ("calls", SCHEMAS["calls"], lambda: lists.batches("calls", [("calls", 2, _calls)])),
        ("evaluations", SCHEMAS["evaluations"], lambda: lists.batches("evaluations", [
            ("evaluations", 5, lists.evaluations), ("finished", 1, _ints),
            ("trajectory", 1, _floats), ("finished_elapsed", 1, _floats)])),
        ("curves", SCHEMAS["curves"], lambda: trials.points("curves", "curve")),
        ("results", SCHEMAS["results"], lambda: trials.points("results", "results")),
        ("decisions", SCHEMAS["decisions"],
         lambda: lists.batches("decisions", [("decisions", 4, _decisions)])),
    ]  # fmt: skip


def _merge(
    cold: Iterable[tuple[pa.RecordBatch, np.ndarray]],
    drop: np.ndarray,
    keys: np.ndarray,
    add: Callable[[int, int], pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """The ``cold`` batches (each with its rows' sort keys) without the rows whose key is in
    ``drop``, with the rows ``add(lo, hi)`` builds (``keys[lo:hi]``, ascending) merged in key
    order; every row of ``add`` is given exactly once, even if the cold keys are not sorted."""
    j = 0
    for batch, batch_keys in cold:
        k = j
        if len(batch_keys):
            k = max(j, int(np.searchsorted(keys, batch_keys.max(), side="right")))
        gone = np.isin(batch_keys, drop) if len(drop) else None
        if k == j and (gone is None or not gone.any()):
            yield batch
            continue
        kept = batch if gone is None else batch.filter(pa.array(~gone))
        kept_keys = batch_keys if gone is None else batch_keys[~gone]
        if k == j:
            yield kept
            continue
        table = pa.Table.from_batches([kept, add(j, k)]).combine_chunks()
        order = np.argsort(np.concatenate([kept_keys, keys[j:k]]), kind="stable")
        yield from table.take(pa.array(order)).to_batches()
        j = k
    for lo in range(j, len(keys), BATCH):
        yield add(lo, min(lo + BATCH, len(keys)))


class Trials:
    """The trial tables (keys, trials) and the point tables (curves, results) of a snapshot."""

    def __init__(self, cold: ArrowTrials | None, hot: dict[int, TrialState], ids: np.ndarray,
                 replaced: np.ndarray) -> None:  # fmt: skip
        self.cold, self.hot, self.ids, self.replaced = cold, hot, ids, replaced

    def batches(self, name: str) -> Iterator[pa.RecordBatch]:
        schema = SCHEMAS[name]
        getter = operator.attrgetter(*schema.names)
        ids, hot = self.ids, self.hot

        def add(lo: int, hi: int) -> pa.RecordBatch:
            rows = [getter(hot[i]) for i in ids[lo:hi].tolist()]
            columns = list(zip(*rows)) if rows else [()] * len(schema)
            return pa.record_batch(
                [_array(list(v), f.type) for v, f in zip(columns, schema)], schema=schema
            )

        return _merge(self._cold_rows(name), self.replaced, ids, add)

    def _cold_rows(self, name: str) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        if self.cold is None:
            return
        offset, all_ids = 0, self.cold.ids
        for batch in self.cold.tables.stream(name):  # row-aligned with the ids (keys table)
            yield batch, all_ids[offset : offset + batch.num_rows]
            offset += batch.num_rows

    def points(self, name: str, attr: str) -> Iterator[pa.RecordBatch]:
        """(trial, resource, error) of each point of ``attr`` (``curve`` | ``results``)."""
        hot = self.hot
        rows = [(i, r, e) for i in self.ids.tolist() for r, e in getattr(hot[i], attr)]
        keys = np.fromiter((r[0] for r in rows), np.int64, len(rows))

        def add(lo: int, hi: int) -> pa.RecordBatch:
            part = rows[lo:hi]
            return pa.record_batch(
                [pa.array([r[0] for r in part], pa.int64()),
                 pa.array([r[1] for r in part], pa.float64()),
                 pa.array([r[2] for r in part], pa.float64())], schema=SCHEMAS[name],
            )  # fmt: skip

        cold = ()
        if self.cold is not None:
            cold = ((b, b.column("trial").to_numpy()) for b in self.cold.tables.stream(name))
        return _merge(cold, self.replaced, keys, add)


class Lists:
    """The tables of the fold's lists (calls, evaluations, decisions): a snapshot's prefix is
    copied, the items after it converted."""

    def __init__(self, state: StudyState, hot: dict[int, TrialState]) -> None:
        self.state, self.hot = state, hot
        self.cold: dict[str, Prefix[Any]] = dict(state._cold_lists or {})

    def batches(
        self, table: str, groups: list[tuple[str, int, Callable[[list[Any]], list[pa.Array]]]]
    ) -> Iterator[pa.RecordBatch]:
        """``groups``: (list name, how many columns, its items -> those columns), in the
        table's column order."""
        schema, state, cold = SCHEMAS[table], self.state, self.cold
        items = {name: getattr(state, "_" + name) for name, _, _ in groups}  # no thawing
        source = next((cold[name].source for name, _, _ in groups if name in cold), None)
        n = 0
        if source is not None:
            tables, trials = source
            n = tables.rows(table)
            fix = {}
            if table == "evaluations" and "evaluations" in cold:
                fix = self._changed_configs(trials)
            offset = 0
            for batch in tables[table].to_batches() if fix else tables.stream(table):
                size, columns = batch.num_rows, []
                for name, width, convert in groups:
                    if name in cold:
                        columns += batch.columns[len(columns) : len(columns) + width]
                    else:
                        columns += convert(items[name][offset : offset + size])
                if fix:
                    columns[1] = _fill(columns[0], columns[1], fix)
                yield pa.record_batch(columns, schema=schema)
                offset += size
        starts = {name: 0 if name in cold else n for name, _, _ in groups}
        total = len(items[groups[0][0]]) - starts[groups[0][0]]
        for lo in range(0, total, BATCH):
            columns = []
            for name, _, convert in groups:
                start = starts[name] + lo
                columns += convert(items[name][start : start + BATCH])
            yield pa.record_batch(columns, schema=schema)

    def _changed_configs(self, trials: ArrowTrials | None) -> dict[int, str]:
        """{trial: its config in the snapshot ``trials``} of each trial whose config has
        changed since (a null config in that snapshot's evaluations meant that one)."""
        if trials is None:
            return {}
        ids = [i for i in self.hot if trials.has(i)]
        if not ids:
            return {}
        old = trials.configs_of(ids)
        return {i: c for i, c in zip(ids, old) if self.hot[i].config_json != c}

    def evaluations(self, items: list[Any]) -> list[pa.Array]:
        hot = self.hot

        def config(trial: int, text: str) -> str | None:
            # null: the trial's current config (shared, as in the live fold)
            t = hot.get(trial)
            return None if t is not None and t.config_json == text else text

        return [
            pa.array([e[0] for e in items], pa.int64()),
            pa.array([config(e[0], e[1]) for e in items], pa.string()),
            pa.array([e[2] for e in items], pa.float64()),
            pa.array([e[3] for e in items], pa.float64()),
            pa.array([e[4] for e in items], pa.float64()),
        ]


def _fill(trials: pa.Array, configs: pa.Array, fix: dict[int, str]) -> pa.Array:
    ids, texts = trials.to_pylist(), configs.to_pylist()
    return pa.array(
        [fix.get(i) if c is None and i in fix else c for i, c in zip(ids, texts)], pa.string()
    )


def _calls(items: list[Any]) -> list[pa.Array]:
    return [pa.array([c for c, _ in items], pa.int8()), pa.array([i for _, i in items], pa.int64())]


def _decisions(items: list[Any]) -> list[pa.Array]:
    return [
        pa.array([d[0] for d in items], pa.int64()),
        pa.array([d[1] for d in items], pa.string()),
        pa.array([d[2] for d in items], pa.int64()),
        pa.array([d[3] for d in items], pa.string()),
    ]


def _ints(items: list[Any]) -> list[pa.Array]:
    return [pa.array(items, pa.int64())]


def _floats(items: list[Any]) -> list[pa.Array]:
    return [pa.array(items, pa.float64())]


def _array(values: list[Any], typ: pa.DataType) -> pa.Array:
    if pa.types.is_dictionary(typ):
        return pa.array(values, typ.value_type).dictionary_encode()
    return pa.array(values, typ)


__all__ = ["BATCH", "KEY_COLUMNS", "SCHEMAS", "TRIAL_COLUMNS", "tables"]
