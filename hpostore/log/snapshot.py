"""Snapshots of the fold: a derived, verifiable cache of a ``StudyState`` (never pickle).

Resume must not cost O(log) (DESIGN.md "Snapshots"): a snapshot holds the fold of a study's
events up to ``seq``; resume loads the newest valid one and folds only the events after it.
The log always wins: a snapshot is used only when all of this holds, else it is ignored
(a debug log line) and the log is replayed in full:

- the file starts with ``MAGIC`` and the format version this module writes (``VERSION``);
- the SHA-256 stored after the magic matches the rest of the file (any flipped byte fails);
- its header names the same study, and ``anchor`` — the SHA-256 of the study name and the
  canonical encoding of the event at ``seq``, every column (``ts`` to the microsecond, the
  random 64-bit ``session`` id) — equals the anchor of the event the log holds at that seq.

Why the anchor detects a replaced prefix: the log is append-only and gapless, and every event
carries the id of the session that appended it (random, 64 bits) and its wall-clock time in
µs. A log whose prefix was replaced (the store deleted and the study re-run, another study's
file copied in, a restored backup that diverged, a crash that lost the events after a
snapshot was taken) holds, at ``seq``, an event from another session or instant, or none at
all, so its anchor differs. What it does not catch is an in-place edit of an event before
``seq`` that keeps the event at ``seq`` (an ``UPDATE`` run by hand on the table): the log is
not edited in place by hpostore, and such an edit is a damaged log, not a replaced prefix.

The bytes of a snapshot (file layout, encoding, decoding) are :mod:`hpostore.log._snapcodec`;
this module names, anchors, writes and chooses the files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import tempfile
import weakref
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from ._snapcodec import MAGIC as MAGIC
from ._snapcodec import STATE_FIELDS as STATE_FIELDS
from ._snapcodec import TRIAL_FIELDS as TRIAL_FIELDS
from ._snapcodec import VERSION as VERSION
from ._snapcodec import decode as decode
from ._snapcodec import encode as encode
from ._snapcodec import parse_header, write_to
from ._snapcodec import read_header as read_header
from ._snaptables import ArrowTrials, SnapshotChanged, Tables, cold_lists
from .fold import StudyState
from .trial import TrialState, TrialStatus

log = logging.getLogger("hpostore")

SUFFIX = ".snap"
#: snapshots kept per study (older ones are removed when a new one is written)
KEEP = 2


def anchor(study: str, row: Sequence[Any]) -> str:
    """The digest that ties a snapshot to the log: SHA-256 of ``study`` and the event ``row``
    given as (seq, ts in µs since the epoch, elapsed, session, kind, trial, config, resource,
    error, runtime, worker, payload) — see the module doc for why it detects a replaced prefix."""
    text = json.dumps([study, *row], separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


#: the columns of :func:`anchor`'s row, in order, as a SELECT list over ``events``
ANCHOR_SELECT = (
    "seq, epoch_us(ts) AS ts_us, elapsed, session, kind, trial, config, resource, error, "
    "runtime, worker, payload"
)


def file_prefix(study: str) -> str:
    """The file name prefix of ``study``'s snapshots: a hash (names are data, never paths)."""
    return hashlib.sha256(study.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def snapshot_dir(store_path: str) -> str | None:
    """``<store>.snapshots`` beside a store file or directory; None for an in-memory store."""
    if store_path == ":memory:" or not store_path:
        return None
    return os.path.normpath(store_path) + ".snapshots"


# --- encoding -------------------------------------------------------------------------------
def write(
    directory: str, state: StudyState, anchor_digest: str
) -> tuple[str, dict[str, Any]] | None:
    """Write ``state``'s snapshot atomically into ``directory`` (temp file + rename); keep the
    newest :data:`KEEP`. Returns (path, header), or None when nothing was written (logged at
    debug level: a snapshot is only a cache, so failing to write one never stops a study)."""
    prefix = file_prefix(state.study)
    path = os.path.join(directory, f"{prefix}.{state.seq:020d}{SUFFIX}")
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=SUFFIX)
        try:
            with os.fdopen(fd, "w+b") as f:
                header = write_to(f, state, anchor_digest)
            if header is None:
                os.unlink(tmp)
                return None
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        for old in candidates(directory, state.study)[KEEP:]:
            with contextlib.suppress(OSError):
                os.unlink(old[1])
    except (OSError, SnapshotChanged) as exc:
        log.debug("snapshot of %r not written to %s: %s", state.study, directory, exc)
        return None
    return path, header


def _settled(t: TrialState) -> bool:
    """The fold will not change this trial again unless an event names it (a promotion): it
    may live in a snapshot's columns rather than as an object."""
    status = t.status
    if status is TrialStatus.FAILED:
        return True
    return t.updated and (status is TrialStatus.FINISHED or status is TrialStatus.STOPPED)


def rebase(state: StudyState, path: str, header: dict[str, Any]) -> bool:
    """Let the snapshot just written at ``path`` (its ``header``) hold ``state``'s settled trials
    and its lists, as a resume from it would: the live fold then keeps in memory only what it
    is still changing, and the study's next snapshot copies these columns. Nothing the state
    answers changes. False (nothing done) when the file cannot be read back."""
    opened = _open_tables(path, header)
    if opened is None:
        return False
    tables, close = opened
    try:
        cold = ArrowTrials(tables)
        if not cold.sorted:
            raise ValueError("trial ids out of order")
        state.trials.rebase(cold, keep=lambda t: not _settled(t))
        _, kept = state.trials.parts()
        cold.known.update((i, t.config_json) for i, t in kept.items())
    except (OSError, ValueError, SnapshotChanged, pa.ArrowException) as exc:
        log.debug("snapshot %s not used for the live fold: %s", path, exc)
        close()
        return False
    for name in ("calls", "finished", "evaluations", "trajectory", "finished_elapsed",
                 "decisions"):  # fmt: skip
        setattr(state, "_" + name, [])
    state._cold_lists = cold_lists(tables, cold)
    return True


def _open_tables(path: str, header: dict[str, Any], f: Any = None) -> tuple[Tables, Any] | None:
    """The tables of the snapshot file at ``path`` (open as ``f``, or opened now) whose
    verified ``header`` is known, each checked against its SHA-256 when first read; the file
    stays open while they may be read: a newer snapshot that replaces it and the removal of
    old ones leave an open file intact."""
    if f is None:
        try:
            f = open(path, "rb")  # noqa: SIM115 (closed by the tables' finalizer)
        except OSError as exc:
            log.debug("snapshot %s ignored: %s", path, exc)
            return None
    fd = f.fileno()

    def read_at(offset: int, size: int) -> bytes:
        data = os.pread(fd, size, _BASE + offset)
        if len(data) != size:
            raise SnapshotChanged(f"{path}: the snapshot was cut short after it was checked")
        return data

    try:
        tables = Tables(header["tables"], read_at, where=path, verify=True)
    except (TypeError, ValueError) as exc:  # a header this version did not write
        log.debug("snapshot %s ignored: %s", path, exc)
        f.close()
        return None
    weakref.finalize(tables, f.close)
    return tables, f.close


def candidates(directory: str, study: str) -> list[tuple[int, str]]:
    """(seq, path) of ``study``'s snapshot files in ``directory``, newest first."""
    prefix = file_prefix(study) + "."
    out = []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        if name.startswith(prefix) and name.endswith(SUFFIX):
            digits = name[len(prefix) : -len(SUFFIX)]
            if digits.isdigit():
                out.append((int(digits), os.path.join(directory, name)))
    return sorted(out, reverse=True)


def read(path: str, study: str) -> dict[str, Any] | None:
    """The verified header (with ``"_tables"``) of the snapshot at ``path`` for ``study``, or
    None.

    The whole file is checked in chunks (its SHA-256) but not kept: its tables are read again
    when first needed (a resume needs only the trial keys; a 1M-trial study's 250 MB snapshot
    is not held in memory), each checked against its own SHA-256 from the verified header, so a
    file changed in place after the check is refused, never trusted. The file stays open
    (read-only) while its tables may still be read: a newer snapshot that replaces it and the
    removal of old ones leave an open file intact."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (kept open by the tables; closed by their finalizer)
    except OSError as exc:
        log.debug("snapshot %s ignored: %s", path, exc)
        return None
    try:
        got = _verified_header(f, path)
    except (OSError, ValueError) as exc:
        log.debug("snapshot %s ignored: %s", path, exc)
        got = None
    if got is not None and got.get("study") != study:
        log.debug("snapshot %s ignored: it is of study %r", path, got.get("study"))
        got = None
    opened = None if got is None else _open_tables(path, got, f)
    if got is None or opened is None:
        f.close()
        return None
    got["_tables"] = opened[0]
    return got


#: where a snapshot's tables start: after the magic and the checksum
_BASE = 40


def _verified_header(f: Any, path: str) -> dict[str, Any] | None:
    """The header of the open snapshot ``f`` once its SHA-256 matches."""
    head = f.read(_BASE)
    if len(head) < _BASE or head[:8] != MAGIC:
        log.debug("snapshot %s ignored: not a snapshot file", path)
        return None
    digest, buffer = hashlib.sha256(), bytearray(1 << 20)
    view = memoryview(buffer)
    size = _BASE
    while n := f.readinto(buffer):
        digest.update(view[:n])
        size += n
    if digest.digest() != head[8:] or size < _BASE + 4:
        log.debug("snapshot %s ignored: checksum mismatch", path)
        return None
    (n,) = struct.unpack("<I", os.pread(f.fileno(), 4, size - 4))
    if n > size - 4 - _BASE:
        return None
    return parse_header(os.pread(f.fileno(), n, size - 4 - n), size - 4 - n - _BASE)
