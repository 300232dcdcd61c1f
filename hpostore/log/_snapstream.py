"""A fold's snapshot tables as streams of Arrow record batches (the writer's side).

A snapshot holds what the fold holds as Python objects: every trial and list item for a full
snapshot (the state thawed first), or, for a layer on top of a chain (see
:mod:`hpostore.log.snapshot`), the trials held as ``TrialState`` (those changed since the
chain's last layer, and the ones still in flight) and the list items after the chain's. The
rows are converted a batch at a time, so writing one costs memory in proportion to a batch.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from ._arrowcols import column, float64s, int64s, strings
from ._snaptables import _SCHEMAS
from .fold import StudyState
from .trial import TrialState

#: rows per record batch
BATCH = 1 << 16
#: trial columns whose values repeat (dictionary-encoded)
REPEATED = frozenset(("status", "worker", "session", "decision"))
#: the fold's lists, by the snapshot table that holds them (in the table's column order)
LISTS = {
    "calls": ("calls",),
    "evaluations": ("evaluations", "finished", "trajectory", "finished_elapsed"),
    "decisions": ("decisions",),
}

Batches = Callable[[], Iterator[pa.RecordBatch]]


def _schema(name: str) -> pa.Schema:
    return pa.schema(
        [(n, pa.dictionary(pa.int32(), t) if n in REPEATED and name in ("keys", "trials") else t)
         for n, t in _SCHEMAS[name]]
    )  # fmt: skip


SCHEMAS = {name: _schema(name) for name in _SCHEMAS}


def tables(state: StudyState, after: dict[str, int] | None) -> list[tuple[str, pa.Schema, Batches]]:
    """(name, schema, batches) of each table, in file order, of a full snapshot of ``state``
    (``after`` None: its trials and lists are all objects) or of a layer: its ``TrialState``
    objects in id order, and the items of each list after the first ``after[name]`` (a list
    the chain's columns still hold is all new items)."""
    _, hot = state.trials.parts()
    ids = list(hot) if after is None else sorted(hot)
    trials = [hot[i] for i in ids]
    pending = state._cold_lists or {}
    items = {}
    for names in LISTS.values():
        for name in names:
            own = getattr(state, "_" + name)  # what the fold appended: no thawing
            items[name] = own if after is None or name in pending else own[after[name] :]
    configs = {t.trial: t.config_json for t in trials}

    def evaluations(rows: list[Any]) -> list[pa.Array]:
        # null: the trial's config in this snapshot (shared, as in the live fold)
        return [
            int64s([e[0] for e in rows]),
            strings([None if configs.get(e[0]) == e[1] else e[1] for e in rows]),
            float64s([e[2] for e in rows]),
            float64s([e[3] for e in rows]),
            float64s([e[4] for e in rows]),
        ]

    convert: dict[str, Callable[[list[Any]], list[pa.Array]]] = {
        "calls": _calls, "evaluations": evaluations, "finished": _ints, "trajectory": _floats,
        "finished_elapsed": _floats, "decisions": _decisions,
    }  # fmt: skip

    def of_lists(table: str) -> Iterator[pa.RecordBatch]:
        names = LISTS[table]
        for lo in range(0, max(1, len(items[names[0]])), BATCH):
            columns = [a for n in names for a in convert[n](items[n][lo : lo + BATCH])]
            yield pa.record_batch(columns, schema=SCHEMAS[table])

    return [
        ("keys", SCHEMAS["keys"], lambda: _trials(trials, SCHEMAS["keys"])),
        ("trials", SCHEMAS["trials"], lambda: _trials(trials, SCHEMAS["trials"])),
        ("calls", SCHEMAS["calls"], lambda: of_lists("calls")),
        ("evaluations", SCHEMAS["evaluations"], lambda: of_lists("evaluations")),
        ("curves", SCHEMAS["curves"], lambda: _points(trials, "curve", SCHEMAS["curves"])),
        ("results", SCHEMAS["results"], lambda: _points(trials, "results", SCHEMAS["results"])),
        ("decisions", SCHEMAS["decisions"], lambda: of_lists("decisions")),
    ]


def _trials(trials: list[TrialState], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    getter = operator.attrgetter(*schema.names)
    for lo in range(0, max(1, len(trials)), BATCH):
        rows = [getter(t) for t in trials[lo : lo + BATCH]]
        columns = list(zip(*rows)) if rows else [()] * len(schema)
        yield pa.record_batch([column(v, f.type) for v, f in zip(columns, schema)], schema=schema)


def _points(trials: list[TrialState], attr: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """(trial, resource, error) of each point of ``attr`` (``curve`` | ``results``)."""
    rows = [(t.trial, r, e) for t in trials for r, e in getattr(t, attr)]
    for lo in range(0, max(1, len(rows)), BATCH):
        part = rows[lo : lo + BATCH]
        yield pa.record_batch(
            [int64s([r[0] for r in part]), float64s([r[1] for r in part]),
             float64s([r[2] for r in part])], schema=schema,
        )  # fmt: skip


def _calls(items: list[Any]) -> list[pa.Array]:
    return [int64s([c for c, _ in items], pa.int8()), int64s([i for _, i in items])]


def _decisions(items: list[Any]) -> list[pa.Array]:
    return [
        int64s([d[0] for d in items]),
        strings([d[1] for d in items]),
        int64s([d[2] for d in items]),
        strings([d[3] for d in items]),
    ]


def _ints(items: list[Any]) -> list[pa.Array]:
    return [int64s(items)]


def _floats(items: list[Any]) -> list[pa.Array]:
    return [float64s(items)]
