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

from ._snapcodec import MAGIC as MAGIC
from ._snapcodec import STATE_FIELDS as STATE_FIELDS
from ._snapcodec import TRIAL_FIELDS as TRIAL_FIELDS
from ._snapcodec import VERSION as VERSION
from ._snapcodec import decode as decode
from ._snapcodec import encode as encode
from ._snapcodec import encode_chunks as encode_chunks
from ._snapcodec import parse_header
from ._snapcodec import read_header as read_header
from ._snaptables import SnapshotChanged, Tables
from .fold import StudyState

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
def write(directory: str, state: StudyState, anchor_digest: str) -> str | None:
    """Write ``state``'s snapshot atomically into ``directory`` (temp file + rename); keep the
    newest :data:`KEEP`. Returns the path, or None when nothing was written (logged at debug
    level: a snapshot is only a cache, so failing to write one never stops a study)."""
    chunks = encode_chunks(state, anchor_digest)
    if chunks is None:
        return None
    prefix = file_prefix(state.study)
    path = os.path.join(directory, f"{prefix}.{state.seq:020d}{SUFFIX}")
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        for old in candidates(directory, state.study)[KEEP:]:
            with contextlib.suppress(OSError):
                os.unlink(old[1])
    except OSError as exc:
        log.debug("snapshot of %r not written to %s: %s", state.study, directory, exc)
        return None
    return path


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
    if got is None:
        f.close()
        return None
    header, base = got
    if header.get("study") != study:
        log.debug("snapshot %s ignored: it is of study %r", path, header.get("study"))
        f.close()
        return None
    fd = f.fileno()

    def read_at(offset: int, size: int) -> bytes:
        data = os.pread(fd, size, base + offset)
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
    header["_tables"] = tables
    return header


def _verified_header(f: Any, path: str) -> tuple[dict[str, Any], int] | None:
    """(header, offset of the tables) of the open snapshot ``f`` once its SHA-256 matches."""
    head = f.read(40)
    if len(head) < 40 or head[:8] != MAGIC:
        log.debug("snapshot %s ignored: not a snapshot file", path)
        return None
    digest, buffer = hashlib.sha256(), bytearray(1 << 20)
    view = memoryview(buffer)
    while n := f.readinto(buffer):
        digest.update(view[:n])
    if digest.digest() != head[8:]:
        log.debug("snapshot %s ignored: checksum mismatch", path)
        return None
    (n,) = struct.unpack("<I", os.pread(f.fileno(), 4, 40))
    header = parse_header(os.pread(f.fileno(), n, 44))
    return None if header is None else (header, 44 + n)
