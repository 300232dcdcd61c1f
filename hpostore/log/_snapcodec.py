"""The bytes of a fold snapshot: a ``StudyState`` as a checksummed header and Arrow tables.

What a snapshot is for and when one is used: :mod:`hpostore.log.snapshot`.

File layout: ``MAGIC`` (8 bytes) | SHA-256 of the rest (32 bytes) | Arrow IPC streams, one
per table | header (JSON) | header length (4 bytes, little endian). The header gives each
table's name, length, SHA-256 and rows (a resume reads only the tables it needs); it comes
last because the tables are streamed (their lengths and digests are known once written).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import json
import logging
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

import pyarrow as pa

from . import _snapstream
from ._coldfold import TrialMap
from ._snaplayers import LayeredTrials, layered_lists
from ._snaptables import TRIAL_COLUMNS, ArrowTrials, Tables, check_schemas, cold_lists
from .fold import StudyState
from .queries import StudyQueries
from .trial import TrialState

__all__ = [
    "MAGIC",
    "STATE_FIELDS",
    "TRIAL_FIELDS",
    "VERSION",
    "decode",
    "decode_chain",
    "encode",
    "parse_header",
    "read_header",
    "write_to",
]

log = logging.getLogger("hpostore")

MAGIC = b"HPOSNAP\x00"
#: the snapshot format this module reads and writes; any other is ignored (the log is replayed)
#: 2: objectives and metrics_json; 3: keys table, a digest and row count per table; 4: the
#: header after the tables (streamed), tables of several record batches
VERSION = 4

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


def encode(state: StudyState, anchor_digest: str) -> bytes | None:
    """The snapshot file's bytes for ``state`` (whose last event has ``anchor_digest``), or
    None when the state holds attributes this version does not know how to carry."""
    f = io.BytesIO()
    return None if write_to(f, state, anchor_digest) is None else f.getvalue()


def write_to(
    f: BinaryIO, state: StudyState, anchor_digest: str, base: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Write ``state``'s snapshot into the empty, seekable binary file ``f``; its header, or
    None (nothing useful written) when the state holds attributes this version does not carry.

    Without ``base``, a full snapshot: ``state`` must hold every trial and list item as
    objects (``state.thaw()``). With ``base`` (``{"seq", "sha256", "after"}``: the chain's last
    layer, and how many items of each list the chain holds), a layer on top of that chain: the
    trials ``state`` holds as objects and the list items after the chain's. The tables are
    written a batch at a time (see :mod:`._snapstream`)."""
    with _no_cyclic_gc():
        return _write(f, state, anchor_digest, base)


class _Sink:
    """Writes to ``f``, hashing into the file's digest and the current table's."""

    closed = False

    def __init__(self, f: BinaryIO, digest: Any) -> None:
        self.f, self.file_digest = f, digest
        self.digest, self.size = hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.f.write(data)
        self.file_digest.update(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def _write(
    f: BinaryIO, state: StudyState, anchor_digest: str, base: dict[str, Any] | None
) -> dict[str, Any] | None:
    if set(vars(state)) != STATE_FIELDS or set(TrialState.__slots__) != TRIAL_FIELDS:
        log.debug("snapshot of %r not written: the fold has fields it does not carry", state.study)
        return None
    q = StudyQueries
    counts = {q.evaluations.count(state), q.finished.count(state), q.trajectory.count(state),
              q.finished_elapsed.count(state)}  # fmt: skip
    if len(counts) != 1:
        log.debug("snapshot of %r not written: result lists of unequal length", state.study)
        return None
    f.write(MAGIC + bytes(32))
    digest = hashlib.sha256()
    entries = []
    after = None if base is None else base["after"]
    for name, schema, batches in _snapstream.tables(state, after):
        sink, rows = _Sink(f, digest), 0
        with pa.ipc.new_stream(sink, schema) as writer:
            for batch in batches():
                writer.write_batch(batch)
                rows += batch.num_rows
        entries.append([name, sink.size, sink.digest.hexdigest(), rows])
    header = {
        "version": VERSION,
        "study": state.study,
        "seq": state.seq,
        "anchor": anchor_digest,
        # the layer below this one (its seq and file checksum), or null: a full snapshot
        "base": None if base is None else {"seq": base["seq"], "sha256": base["sha256"]},
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
        "tables": entries,
    }
    head = json.dumps(header, separators=(",", ":"), allow_nan=True).encode()
    footer = head + struct.pack("<I", len(head))
    f.write(footer)
    digest.update(footer)
    f.seek(len(MAGIC))
    f.write(digest.digest())
    header["_checksum"] = digest.hexdigest()  # the file's, as a layer on it will name it
    return header


def read_header(data: bytes) -> tuple[dict[str, Any], Tables] | None:
    """(header, tables) of a snapshot file's bytes, or None when it is not one of this version
    or its checksum fails (logged at debug level). The tables are read from ``data``."""
    if len(data) < 44 or data[:8] != MAGIC:
        return None
    rest = memoryview(data)[40:]  # no copy of a large snapshot
    if hashlib.sha256(rest).digest() != data[8:40]:
        log.debug("snapshot ignored: checksum mismatch")
        return None
    end = len(data) - 4
    (n,) = struct.unpack("<I", data[end:])
    header = parse_header(bytes(data[end - n : end]), end - n - 40) if n <= end - 40 else None
    if header is None:
        return None
    body = rest[: end - n - 40]
    return header, Tables(header["tables"], lambda offset, size: body[offset : offset + size],
                          where="snapshot", verify=False)  # fmt: skip


def parse_header(text: bytes, body: int) -> dict[str, Any] | None:
    """The JSON header of a checksum-verified snapshot whose tables take ``body`` bytes, or
    None when this version did not write it (not JSON, another format version, a table list
    that does not cover the tables' bytes; logged at debug level)."""
    try:
        header = json.loads(text)
    except ValueError:
        return None
    version = header.get("version") if isinstance(header, dict) else None
    if version != VERSION:
        log.debug("snapshot ignored: format version %r, not %r", version, VERSION)
        return None
    tables = header.get("tables")
    try:
        if sum(int(entry[1]) for entry in tables) != body:
            raise ValueError
    except (TypeError, ValueError, IndexError):
        log.debug("snapshot ignored: its table list does not cover its tables")
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
    """The ``StudyState`` a verified full snapshot holds (see :func:`read_header`)."""
    return decode_chain([(header, tables)])


def decode_chain(chain: list[tuple[dict[str, Any], Tables]]) -> StudyState:
    """The ``StudyState`` a verified chain of snapshots holds (a full one, then the layers on
    it, oldest first): trials and lists stay the tables' columns until read. ValueError when
    the tables are not what this version writes."""
    with _no_cyclic_gc():
        return _decode(chain)


def _decode(chain: list[tuple[dict[str, Any], Tables]]) -> StudyState:
    for _, tables in chain:
        check_schemas(tables)
    header = chain[-1][0]
    state = StudyState(header["study"])
    state.seq, state.elapsed, state.spec = header["seq"], header["elapsed"], header["spec"]
    if state.spec is not None:
        state.bind_spec(state.spec)
    layers = [(tables, ArrowTrials(tables)) for _, tables in chain]
    if len(layers) == 1 and not layers[0][1].sorted:
        # trial ids out of order (a scheduler's own ids): decode them all now, in file order
        for t in layers[0][1].thaw_all():
            state.trials[t.trial] = t
        state._cold_lists = cold_lists(*layers[0])
    else:
        cold = LayeredTrials.of([trials for _, trials in layers])
        state.trials = TrialMap(cold)  # thawed trial by trial as the fold and its readers ask
        state._cold_lists = layered_lists(layers)
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
