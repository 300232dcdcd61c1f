"""A fold's snapshot tables as streams of Arrow record batches (the writer's side).

A snapshot holds what the fold holds as Python objects: every trial and list item for a full
snapshot (the state thawed first), or, for a layer on top of a chain (see
:mod:`hpostore.log.snapshot`), the trials held as ``TrialState`` (those changed since the
chain's last layer, and the ones still in flight) and the list items after the chain's. The
rows are converted a batch at a time, so writing one costs memory in proportion to a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
import pyarrow as pa

from ._arrowcols import column, from_numpy
from ._snaptables import _SCHEMAS
from .fold import StudyState
from .trial import TrialState

#: rows per record batch
BATCH = 1 << 16
_INT64, _FLOAT64, _STRING = pa.int64(), pa.float64(), pa.string()
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
    trial_ids = np.fromiter(ids, dtype=np.int64, count=len(ids))

    def evaluations(rows: list[Any]) -> list[pa.Array]:
        trial, config, error, runtime, resource = _transposed(rows, 5)
        # null: the trial's config in this snapshot (shared, as in the live fold)
        other = [None if c == own else c for c, own in zip(config, map(configs.get, trial))]
        return [column(trial, _INT64), column(other, _STRING), column(error, _FLOAT64),
                column(runtime, _FLOAT64), column(resource, _FLOAT64)]  # fmt: skip

    convert: dict[str, Callable[[list[Any]], list[pa.Array]]] = {
        "calls": _calls, "evaluations": evaluations, "finished": _ints, "trajectory": _floats,
        "finished_elapsed": _floats, "decisions": _decisions,
    }  # fmt: skip

    def points(attr: str, table: str) -> Iterator[pa.RecordBatch]:
        return _points(trials, trial_ids, attr, SCHEMAS[table])

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
        ("curves", SCHEMAS["curves"], lambda: points("curve", "curves")),
        ("results", SCHEMAS["results"], lambda: points("results", "results")),
        ("decisions", SCHEMAS["decisions"], lambda: of_lists("decisions")),
    ]


def _trials(trials: list[TrialState], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    # an attribute of every trial at a time: no row tuples to build and transpose
    getters = [(attrgetter(f.name), f.type) for f in schema]
    for lo in range(0, max(1, len(trials)), BATCH):
        part = trials[lo : lo + BATCH]
        yield pa.record_batch([column(list(map(g, part)), t) for g, t in getters], schema=schema)


def _points(
    trials: list[TrialState], ids: np.ndarray, attr: str, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """(trial, resource, error) of each point of ``attr`` (``curve`` | ``results``) of
    ``trials`` (``ids``: their ids)."""
    lists = list(map(attrgetter(attr), trials))
    points = list(chain.from_iterable(lists))
    # each point's trial: its trial's id repeated (no count of every trial's points when there
    # are none: a study without curves)
    counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists)) if points else 0
    trial = np.repeat(ids, counts)
    for lo in range(0, max(1, len(points)), BATCH):
        resource, error = _transposed(points[lo : lo + BATCH], 2)
        yield pa.record_batch(
            [from_numpy(trial[lo : lo + BATCH]), column(resource, _FLOAT64),
             column(error, _FLOAT64)], schema=schema,
        )  # fmt: skip


def _calls(items: list[Any]) -> list[pa.Array]:
    # a Call code is one byte: bytes() reads the IntEnum members in C (numpy's fromiter goes
    # through their __index__, several times slower)
    codes = np.frombuffer(bytes(map(itemgetter(0), items)), dtype=np.int8)
    return [from_numpy(codes), column(list(map(itemgetter(1), items)), _INT64)]


def _decisions(items: list[Any]) -> list[pa.Array]:
    seq, kind, trial, payload = _transposed(items, 4)
    return [column(seq, _INT64), column(kind, _STRING), column(trial, _INT64),
            column(payload, _STRING)]  # fmt: skip


def _ints(items: list[Any]) -> list[pa.Array]:
    return [column(items, _INT64)]


def _floats(items: list[Any]) -> list[pa.Array]:
    return [column(items, _FLOAT64)]


def _transposed(rows: list[tuple[Any, ...]], width: int) -> list[tuple[Any, ...]]:
    """The columns of ``rows`` (tuples of ``width`` values)."""
    return list(zip(*rows)) if rows else [()] * width
