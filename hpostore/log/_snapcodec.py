"""The bytes of a fold snapshot: a ``StudyState`` as a checksummed header and Arrow tables.

What a snapshot is for and when one is used: :mod:`hpostore.log.snapshot`.

File layout: ``MAGIC`` (8 bytes) | SHA-256 of the rest (32 bytes) | header length (4 bytes,
little endian) | header (JSON) | Arrow IPC streams, one per table, lengths in the header.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import operator
import struct
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from ._coldfold import Prefix, TrialMap
from .fold import StudyState
from .trial import WITH_RESULT, Call, TrialState, TrialStatus

__all__ = [
    "MAGIC",
    "STATE_FIELDS",
    "TRIAL_FIELDS",
    "VERSION",
    "decode",
    "encode",
    "encode_chunks",
    "read_header",
]

log = logging.getLogger("hpostore")

MAGIC = b"HPOSNAP\x00"
#: the snapshot format this module reads and writes; any other is ignored (the log is replayed)
VERSION = 2  # 2: the fold has objectives (metric, mode, sign) and trials metrics_json

#: the StudyState / TrialState attributes a snapshot carries. A state with other attributes
#: (a newer fold) is not snapshotted rather than snapshotted without them.
STATE_FIELDS = frozenset(
    [
        "study",
        "seq",
        "elapsed",
        "spec",
        "trials",
        "_calls",
        "_finished",
        "_evaluations",
        "_trajectory",
        "_finished_elapsed",
        "_cold_lists",
        "incumbent_trial",
        "_incumbent",
        "_open",
        "_next_trial",
        "n_failed",
        "sessions",
        "session_open",
        "last_kind",
        "_decisions",
        "enqueued",
        "attributes",
        "metric",
        "mode",
        "sign",
    ]
)
_TRIAL_SCALARS = (
    ("trial", pa.int64()), ("config_json", pa.string()), ("status", pa.string()),
    ("error", pa.float64()), ("runtime", pa.float64()), ("resource", pa.float64()),
    ("attempts", pa.int64()), ("updated", pa.bool_()), ("worker", pa.string()),
    ("session", pa.string()), ("suggested_at", pa.float64()), ("started_at", pa.float64()),
    ("finished_at", pa.float64()), ("message", pa.string()), ("payload_json", pa.string()),
    ("stopped", pa.bool_()), ("decision", pa.string()), ("metrics_json", pa.string()),
)  # fmt: skip
TRIAL_FIELDS = frozenset([n for n, _ in _TRIAL_SCALARS] + ["curve", "results", "_config"])
_STATUS = {s.value: s for s in TrialStatus}
_WITH_RESULT = frozenset(s.value for s in WITH_RESULT)
#: trial columns whose values repeat (dictionary-encoded)
_REPEATED = frozenset(("status", "worker", "session", "decision"))
_CALLS = tuple(Call)  # by code: Call.SUGGEST is 0, Call.UPDATE 1


def _ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def encode(state: StudyState, anchor_digest: str) -> bytes | None:
    """The snapshot file's bytes for ``state`` (whose last event has ``anchor_digest``), or
    None when the state holds attributes this version does not know how to carry."""
    chunks = encode_chunks(state, anchor_digest)
    return None if chunks is None else b"".join(chunks)


def encode_chunks(state: StudyState, anchor_digest: str) -> list[Any] | None:
    """:func:`encode` as a list of bytes-like chunks (the Arrow buffers are not copied)."""
    with _no_cyclic_gc():
        return _encode(state, anchor_digest)


def _encode(state: StudyState, anchor_digest: str) -> list[Any] | None:
    state.thaw()  # what a snapshot left as columns (a resumed study) is encoded as it stands
    if set(vars(state)) != STATE_FIELDS or set(TrialState.__slots__) != TRIAL_FIELDS:
        log.debug("snapshot of %r not written: the fold has fields it does not carry", state.study)
        return None
    evals = state.evaluations
    if not (len(evals) == len(state.finished) == len(state.trajectory) == len(state.finished_elapsed)):  # fmt: skip
        log.debug("snapshot of %r not written: result lists of unequal length", state.study)
        return None
    ts = list(state.trials.values())
    names = [name for name, _ in _TRIAL_SCALARS]
    columns = list(zip(*map(operator.attrgetter(*names), ts))) if ts else [()] * len(names)
    trials = pa.table({
        name: _column(list(values), typ, name in _REPEATED)
        for (name, typ), values in zip(_TRIAL_SCALARS, columns)
    })  # fmt: skip
    trial_config = {t.trial: t.config_json for t in ts}
    curves = [(t.trial, r, e) for t in ts for r, e in t.curve]
    results = [(t.trial, r, e) for t in ts for r, e in t.results]
    tables = {
        "trials": trials,
        "calls": pa.table({"code": pa.array([c for c, _ in state.calls], pa.int8()),
                           "trial": pa.array([i for _, i in state.calls], pa.int64())}),
        "evaluations": pa.table({
            "trial": pa.array([e[0] for e in evals], pa.int64()),
            # null: the trial's current config (shared, as in the live fold)
            "config": pa.array([None if trial_config.get(e[0]) == e[1] else e[1] for e in evals],
                               pa.string()),
            "error": pa.array([e[2] for e in evals], pa.float64()),
            "runtime": pa.array([e[3] for e in evals], pa.float64()),
            "resource": pa.array([e[4] for e in evals], pa.float64()),
            "finished": pa.array(state.finished, pa.int64()),
            "trajectory": pa.array(state.trajectory, pa.float64()),
            "finished_elapsed": pa.array(state.finished_elapsed, pa.float64()),
        }),
        "curves": _triples(curves),
        "results": _triples(results),
        "decisions": pa.table({
            "seq": pa.array([d[0] for d in state.decisions], pa.int64()),
            "kind": pa.array([d[1] for d in state.decisions], pa.string()),
            "trial": pa.array([d[2] for d in state.decisions], pa.int64()),
            "payload": pa.array([d[3] for d in state.decisions], pa.string()),
        }),
    }  # fmt: skip
    blobs = {name: _ipc(t) for name, t in tables.items()}
    header = {
        "version": VERSION,
        "study": state.study,
        "seq": state.seq,
        "anchor": anchor_digest,
        "elapsed": state.elapsed,
        "spec": state.spec,
        "incumbent_trial": state.incumbent_trial,
        "incumbent": list(state._incumbent) if state._incumbent is not None else None,
        "open": list(state._open),
        "next_trial": state._next_trial,
        "n_failed": state.n_failed,
        "sessions": state.sessions,
        "session_open": state.session_open,
        "last_kind": state.last_kind,
        "enqueued": state.enqueued,
        # [trial or null (the study), key, value] of each user attribute
        "attributes": [[t, k, v] for t, kv in state.attributes.items() for k, v in kv.items()],
        "tables": [[name, b.size] for name, b in blobs.items()],
    }
    head = json.dumps(header, separators=(",", ":"), allow_nan=True).encode()
    rest = [struct.pack("<I", len(head)), head, *blobs.values()]
    digest = hashlib.sha256()
    for chunk in rest:
        digest.update(chunk)
    return [MAGIC, digest.digest(), *rest]


def _column(values: list[Any], typ: pa.DataType, repeated: bool) -> pa.Array:
    array = pa.array(values, typ)
    return array.dictionary_encode() if repeated else array


def _array(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array: its only chunk as it is (``combine_chunks`` would copy it)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _pylist(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """The column as Python objects; a dictionary column's repeated values are one object
    each (as in the live fold, where every trial of a session shares its id string)."""
    array = _array(column) if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(array.type):
        return array.to_pylist()
    values = array.dictionary.to_pylist()
    return [None if i is None else values[i] for i in array.indices.to_pylist()]


def _triples(rows: Sequence[tuple[int, float | None, float]]) -> pa.Table:
    return pa.table({
        "trial": pa.array([r[0] for r in rows], pa.int64()),
        "resource": pa.array([r[1] for r in rows], pa.float64()),
        "error": pa.array([r[2] for r in rows], pa.float64()),
    })  # fmt: skip


def read_header(data: bytes) -> tuple[dict[str, Any], memoryview] | None:
    """(header, tables' bytes) of a snapshot file, or None when it is not one of this version
    or its checksum fails (logged at debug level). The tables' bytes are a view of ``data``."""
    if len(data) < 44 or data[:8] != MAGIC:
        return None
    rest = memoryview(data)[40:]  # no copy of a large snapshot
    if hashlib.sha256(rest).digest() != data[8:40]:
        log.debug("snapshot ignored: checksum mismatch")
        return None
    (n,) = struct.unpack("<I", rest[:4])
    try:
        header = json.loads(bytes(rest[4 : 4 + n]))
    except ValueError:
        return None
    version = header.get("version") if isinstance(header, dict) else None
    if version != VERSION:
        log.debug("snapshot ignored: format version %r, not %r", version, VERSION)
        return None
    return header, rest[4 + n :]


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic GC: encoding and decoding allocate many objects and no cycles, and
    the collections that allocation triggers would make them 2-3x slower."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def decode(header: dict[str, Any], body: bytes | memoryview) -> StudyState:
    """The ``StudyState`` a verified snapshot holds (see :func:`read_header`)."""
    with _no_cyclic_gc():
        return _decode(header, body)


def _decode(header: dict[str, Any], body: bytes | memoryview) -> StudyState:
    tables: dict[str, pa.Table] = {}
    pos = 0
    for name, size in header["tables"]:
        tables[name] = pa.ipc.open_stream(pa.py_buffer(body[pos : pos + size])).read_all()
        pos += size
    _check_schemas(tables)
    state = StudyState(header["study"])
    state.seq, state.elapsed, state.spec = header["seq"], header["elapsed"], header["spec"]
    if state.spec is not None:
        state.bind_spec(state.spec)
    cold = _ColdTrials(tables["trials"], tables["curves"], tables["results"])
    if cold.sorted:
        state.trials = TrialMap(cold)  # thawed trial by trial as the fold and its readers ask
    else:  # trial ids out of order (not written by hpostore's fold): decode them all now
        for t in cold.thaw_all():
            state.trials[t.trial] = t
    state._cold_lists = _cold_lists(tables, cold)
    state.incumbent_trial = header["incumbent_trial"]
    inc = header["incumbent"]
    state._incumbent = None if inc is None else (inc[0], inc[1])
    state._open = dict.fromkeys(header["open"])
    state._next_trial, state.n_failed = header["next_trial"], header["n_failed"]
    state.sessions, state.session_open = header["sessions"], header["session_open"]
    state.last_kind = header["last_kind"]
    state.enqueued = list(header.get("enqueued", []))
    for t, k, v in header.get("attributes", []):
        state.attributes.setdefault(t, {})[k] = v
    return state


def _check_schemas(tables: dict[str, pa.Table]) -> None:
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
    "trials": list(_TRIAL_SCALARS),
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


def _cold_lists(tables: dict[str, pa.Table], cold: _ColdTrials) -> dict[str, Prefix[Any]]:
    """The fold's lists as functions of the snapshot's columns (see ``ColdList``)."""
    calls, ev, de = tables["calls"], tables["evaluations"], tables["decisions"]

    def evaluations() -> list[Any]:
        # a null config is the trial's config when the snapshot was taken (the snapshot's own
        # column, not the live trial, which may since have resumed with another config)
        trials = _pylist(ev.column("trial"))
        configs = _pylist(ev.column("config"))
        if None in configs:
            current = cold.configs_of(trials)
            configs = [c if c is not None else current[i] for i, c in enumerate(configs)]
        return list(zip(trials, configs, *(_pylist(ev.column(c)) for c in ("error", "runtime", "resource"))))  # fmt: skip

    def column(name: str) -> Prefix[Any]:
        return Prefix(ev.num_rows, lambda: _pylist(ev.column(name)))

    return {
        "calls": Prefix(calls.num_rows, lambda: list(zip(
            map(_CALLS.__getitem__, _pylist(calls.column("code"))), _pylist(calls.column("trial"))
        ))),
        "evaluations": Prefix(ev.num_rows, evaluations),
        "finished": column("finished"),
        "trajectory": column("trajectory"),
        "finished_elapsed": column("finished_elapsed"),
        "decisions": Prefix(de.num_rows, lambda: list(zip(
            *(_pylist(de.column(c)) for c in ("seq", "kind", "trial", "payload"))
        ))),
    }  # fmt: skip


class _ColdTrials:
    """A snapshot's trials as Arrow columns (``ColdTrials``): a row becomes a ``TrialState``
    when the fold or a reader first asks for it, all rows at once when one iterates."""

    def __init__(self, trials: pa.Table, curves: pa.Table, results: pa.Table) -> None:
        # copies: an Arrow buffer inside the snapshot's bytes may be unaligned, and numpy's
        # binary search over an unaligned array copies it on every call
        self._ids = np.array(trials.column("trial").to_numpy())
        self._n = len(self._ids)
        self._cols = [_array(trials.column(name)) for name, _ in _TRIAL_SCALARS]
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
        if type(trial) is not int:  # noqa: E721 (None, or anything the fold never stores)
            return None
        row = int(np.searchsorted(self._ids, trial))
        return row if row < self._n and self._ids[row] == trial else None

    def has(self, trial: object) -> bool:
        return self._row(trial) is not None

    def thaw(self, trial: object) -> TrialState | None:
        row = self._row(trial)
        if row is None:
            return None
        values = [col[row].as_py() for col in self._cols]
        values[2] = _STATUS[values[2]]
        assert isinstance(trial, int)  # _row found it
        curve, results = (_points(t, ids, trial) for t, ids in self._points)
        return _trial(values, curve, results)

    def thaw_all(self) -> Iterator[TrialState]:
        cols = [_pylist(col) for col in self._cols]
        cols[2] = [_STATUS[s] for s in cols[2]]
        points: list[dict[int, list[Any]]] = []
        for t, _ in self._points:
            by_trial: dict[int, list[Any]] = {}
            for trial, point in zip(_pylist(t.column("trial")), zip(_pylist(t.column("resource")), _pylist(t.column("error")))):  # fmt: skip
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
        return _pylist(self._cols[1].take(pa.array(rows)))


def _points(table: pa.Table, ids: Any, trial: int) -> list[tuple[float | None, float]]:
    """(resource, error) of ``trial`` in a curves/results table grouped by trial id."""
    lo, hi = (int(i) for i in np.searchsorted(ids, [trial, trial + 1]))
    part = table.slice(lo, hi - lo)
    return list(zip(_pylist(part.column("resource")), _pylist(part.column("error"))))


def _trial(values: Sequence[Any], curve: list[Any], results: list[Any]) -> TrialState:
    (trial, config, status, error, runtime, resource, attempts, updated, worker, session,
     suggested_at, started_at, finished_at, message, payload, stopped, decision,
     metrics) = values  # fmt: skip
    return TrialState(
        trial, config, status, error, runtime, resource, attempts, updated, worker, session,
        suggested_at, started_at, finished_at, message, payload, curve, stopped, results,
        decision, metrics_json=metrics,
    )  # fmt: skip
