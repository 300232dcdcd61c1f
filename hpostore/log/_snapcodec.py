"""The bytes of a fold snapshot: a ``StudyState`` as a checksummed header and Arrow tables.

What a snapshot is for and when one is used: :mod:`hpostore.log.snapshot`.

File layout: ``MAGIC`` (8 bytes) | SHA-256 of the rest (32 bytes) | header length (4 bytes,
little endian) | header (JSON) | Arrow IPC streams, one per table; the header gives each
table's name, length, SHA-256 and rows (a resume reads only the tables it needs).
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

import pyarrow as pa

from ._coldfold import TrialMap
from ._snaptables import KEY_COLUMNS, TRIAL_COLUMNS, ArrowTrials, Tables, check_schemas, cold_lists
from .fold import StudyState
from .trial import TrialState

__all__ = [
    "MAGIC",
    "STATE_FIELDS",
    "TRIAL_FIELDS",
    "VERSION",
    "decode",
    "encode",
    "encode_chunks",
    "parse_header",
    "read_header",
]

log = logging.getLogger("hpostore")

MAGIC = b"HPOSNAP\x00"
#: the snapshot format this module reads and writes; any other is ignored (the log is replayed)
VERSION = 3  # 2: objectives and metrics_json; 3: keys table, a digest and row count per table

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
TRIAL_FIELDS = frozenset([n for n, _ in TRIAL_COLUMNS] + ["curve", "results", "_config"])
#: trial columns whose values repeat (dictionary-encoded)
_REPEATED = frozenset(("status", "worker", "session", "decision"))


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
    names = [name for name, _ in TRIAL_COLUMNS]
    columns = list(zip(*map(operator.attrgetter(*names), ts))) if ts else [()] * len(names)
    trials = {
        name: _column(list(values), typ, name in _REPEATED)
        for (name, typ), values in zip(TRIAL_COLUMNS, columns)
    }  # fmt: skip
    trial_config = {t.trial: t.config_json for t in ts}
    curves = [(t.trial, r, e) for t in ts for r, e in t.curve]
    results = [(t.trial, r, e) for t in ts for r, e in t.results]
    tables = {
        "keys": pa.table({name: trials.pop(name) for name in KEY_COLUMNS}),
        "trials": pa.table(trials),
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
        # [name, bytes, SHA-256, rows] of each table, in file order
        "tables": [
            [name, b.size, hashlib.sha256(b).hexdigest(), tables[name].num_rows]
            for name, b in blobs.items()
        ],
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


def _triples(rows: Sequence[tuple[int, float | None, float]]) -> pa.Table:
    return pa.table({
        "trial": pa.array([r[0] for r in rows], pa.int64()),
        "resource": pa.array([r[1] for r in rows], pa.float64()),
        "error": pa.array([r[2] for r in rows], pa.float64()),
    })  # fmt: skip


def read_header(data: bytes) -> tuple[dict[str, Any], Tables] | None:
    """(header, tables) of a snapshot file's bytes, or None when it is not one of this version
    or its checksum fails (logged at debug level). The tables are read from ``data``."""
    if len(data) < 44 or data[:8] != MAGIC:
        return None
    rest = memoryview(data)[40:]  # no copy of a large snapshot
    if hashlib.sha256(rest).digest() != data[8:40]:
        log.debug("snapshot ignored: checksum mismatch")
        return None
    (n,) = struct.unpack("<I", rest[:4])
    header = parse_header(bytes(rest[4 : 4 + n]))
    if header is None:
        return None
    body = rest[4 + n :]
    return header, Tables(header["tables"], lambda offset, size: body[offset : offset + size],
                          where="snapshot", verify=False)  # fmt: skip


def parse_header(text: bytes) -> dict[str, Any] | None:
    """The JSON header of a checksum-verified snapshot, or None when this version did not write
    it (not JSON, another format version, no table list; logged at debug level)."""
    try:
        header = json.loads(text)
    except ValueError:
        return None
    version = header.get("version") if isinstance(header, dict) else None
    if version != VERSION:
        log.debug("snapshot ignored: format version %r, not %r", version, VERSION)
        return None
    if not isinstance(header.get("tables"), list):
        return None
    return header


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


def decode(header: dict[str, Any], tables: Tables) -> StudyState:
    """The ``StudyState`` a verified snapshot holds (see :func:`read_header`): trials and lists
    stay its tables' columns until read."""
    with _no_cyclic_gc():
        return _decode(header, tables)


def _decode(header: dict[str, Any], tables: Tables) -> StudyState:
    check_schemas(tables)
    state = StudyState(header["study"])
    state.seq, state.elapsed, state.spec = header["seq"], header["elapsed"], header["spec"]
    if state.spec is not None:
        state.bind_spec(state.spec)
    cold = ArrowTrials(tables)
    if cold.sorted:
        state.trials = TrialMap(cold)  # thawed trial by trial as the fold and its readers ask
    else:  # trial ids out of order (not written by hpostore's fold): decode them all now
        for t in cold.thaw_all():
            state.trials[t.trial] = t
    state._cold_lists = cold_lists(tables, cold)
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
