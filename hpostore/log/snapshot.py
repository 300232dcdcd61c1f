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

**Layers.** The first snapshot of a study is a full one. Each later one is a layer: the trials
that changed since the snapshot below it (its ``base``: that file's seq and SHA-256), the list
items logged since, and the study's scalars; a trial's newest layer holds it. A layer is used
only with its whole chain, down to a full snapshot: every file passes the checks above, and each
one below is the very file (its SHA-256) the one above was written on. After writing one, a
running tuner rebases its fold on the chain (:func:`rebase`): only its trials in flight stay
Python objects, so its memory and each snapshot's cost stay bounded however long it runs.

The bytes of a snapshot (file layout, encoding, decoding) are :mod:`hpostore.log._snapcodec`;
this module names, anchors, writes, chains and chooses the files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import tempfile
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from ._snapcodec import MAGIC as MAGIC
from ._snapcodec import STATE_FIELDS as STATE_FIELDS
from ._snapcodec import TRIAL_FIELDS as TRIAL_FIELDS
from ._snapcodec import VERSION as VERSION
from ._snapcodec import decode as decode
from ._snapcodec import decode_chain, parse_header, write_to
from ._snapcodec import encode as encode
from ._snapcodec import read_header as read_header
from ._snaplayers import LayeredTrials, layered_lists
from ._snaptables import ArrowTrials, SnapshotChanged, Tables
from .fold import StudyState
from .trial import UNFINISHED, WITH_RESULT, TrialState

log = logging.getLogger("hpostore")

SUFFIX = ".snap"
#: layers written on a full snapshot before the next snapshot is a full one again (which holds
#: every trial as an object while it is written); the tuner's pace of snapshots (every 40k
#: events or 1/128 of the log) reaches it only past a billion events
MAX_LAYERS = 1024


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


# --- writing --------------------------------------------------------------------------------
def write(
    directory: str, state: StudyState, anchor_digest: str
) -> tuple[str, dict[str, Any]] | None:
    """Write ``state``'s snapshot atomically into ``directory`` (temp file + rename): a layer
    on the chain ``state`` was resumed or rebased from when it can be, else a full snapshot.
    Removes the study's files that neither the new chain nor the previous one uses. Returns
    (path, header), or None when nothing was written (logged at debug level: a snapshot is
    only a cache, so failing to write one never stops a study)."""
    base = _layer_base(state)
    if base is None:
        state.thaw()  # a full snapshot: every trial and list item as objects
    prefix = file_prefix(state.study)
    path = os.path.join(directory, f"{prefix}.{state.seq:020d}{SUFFIX}")
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=SUFFIX)
        try:
            with os.fdopen(fd, "w+b") as f:
                header = write_to(f, state, anchor_digest, base)
            if header is None:
                os.unlink(tmp)
                return None
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _prune(directory, state.study, state.seq)
    except OSError as exc:
        log.debug("snapshot of %r not written to %s: %s", state.study, directory, exc)
        return None
    return path, header


def _prune(directory: str, study: str, seq: int) -> None:
    """Remove ``study``'s snapshot files but the chain of the one at ``seq`` and the chain of
    the newest one before it (should the new one turn out unusable, that one still is)."""
    files = dict(candidates(directory, study))
    keep: set[int] = set()
    for top in (seq, max((s for s in files if s < seq), default=None)):
        while top is not None and top in files and top not in keep:
            keep.add(top)
            top = _base_seq(files[top])
    for s, old in files.items():
        if s not in keep:
            with contextlib.suppress(OSError):
                os.unlink(old)


def _base_seq(path: str) -> int | None:
    """The seq of the layer below the snapshot at ``path`` as its header says (not verified:
    only which files to keep depends on it), or None."""
    try:
        with open(path, "rb") as f:
            text = _footer(f.fileno(), os.fstat(f.fileno()).st_size)
        header = None if text is None else json.loads(text)
        base = header.get("base") if isinstance(header, dict) else None
        return base.get("seq") if isinstance(base, dict) else None
    except (OSError, ValueError):
        return None


def _layer_base(state: StudyState) -> dict[str, Any] | None:
    """The base of a layer on the chain ``state`` holds as columns, or None when the next
    snapshot must be a full one: no chain, a chain of :data:`MAX_LAYERS`, a chain file gone,
    or a trial id that would not keep ids in suggest order."""
    cold, hot = state.trials.parts()
    if not isinstance(cold, LayeredTrials) or not 0 < len(cold.links) < MAX_LAYERS:
        return None
    last = cold.last
    for i in hot:  # new trials (ids past the chain's) must come in id order
        if i > last:
            last = i
        elif not cold.has(i):
            return None
    link = cold.links[-1]
    if not all(os.path.exists(x["path"]) for x in cold.links):
        return None
    return {"seq": link["seq"], "sha256": link["sha256"], "after": cold.rows}


def _in_flight(t: TrialState) -> bool:
    """The fold is still changing this trial: not yet run to a result, or a result the
    scheduler has not been told of. Other trials can live in a snapshot's columns (and are
    thawed should an event name them again, e.g. a promotion)."""
    return t.status in UNFINISHED or (t.status in WITH_RESULT and not t.updated)


def rebase(state: StudyState, path: str, header: dict[str, Any]) -> bool:
    """Let the snapshot just written at ``path`` (its ``header``), with the chain below it,
    hold ``state``'s trials and lists, as a resume from it would: the live fold then keeps as
    objects only the trials in flight, and the next snapshot is a layer with what changed.
    Nothing the state answers changes. False (nothing done) when the file cannot be read back.
    """
    tables = _tables(path, header)
    if tables is None:
        return False
    cold, _ = state.trials.parts()
    below = cold if header.get("base") is not None and isinstance(cold, LayeredTrials) else None
    try:
        layer = ArrowTrials(tables)
        chain = (below or LayeredTrials.of([])).extend(layer)
        state.trials.rebase(chain, keep=_in_flight)
    except (OSError, ValueError, SnapshotChanged, pa.ArrowException) as exc:
        log.debug("snapshot %s not used for the live fold: %s", path, exc)
        return False
    link = {"seq": header["seq"], "sha256": header["_checksum"], "path": path}
    chain.links = [*(below.links if below is not None else ()), link]
    for name in ("calls", "finished", "evaluations", "trajectory", "finished_elapsed",
                 "decisions"):  # fmt: skip
        setattr(state, "_" + name, [])
    _bind_lists(state, chain)
    return True


def _bind_lists(state: StudyState, chain: LayeredTrials) -> None:
    state._cold_lists = layered_lists([(layer.tables, layer) for layer in chain.layers])
    chain.rows = {name: prefix.n for name, prefix in state._cold_lists.items()}


# --- reading ---------------------------------------------------------------------------------
def load(
    directory: str, study: str, seq: int, path: str, cache: dict[str, Any]
) -> tuple[dict[str, Any], StudyState] | None:
    """(newest header, state) of the snapshot ``path`` at ``seq`` and the chain below it, each
    file verified (``cache``: headers already read, by path), or None when a file of the chain
    is missing, changed or not valid (its debug log line says why)."""
    chain: list[tuple[str, dict[str, Any]]] = []
    paths = dict(candidates(directory, study))
    expect: str | None = None
    while True:
        header = cache[path] if path in cache else cache.setdefault(path, read(path, study))
        if header is None or header["seq"] != seq:
            return None
        if expect is not None and header["_checksum"] != expect:
            log.debug("snapshot %s ignored: not the layer its successor was written on", path)
            return None
        chain.append((path, header))
        base = header.get("base")
        if base is None:
            break
        if not (isinstance(base, dict) and isinstance(base.get("seq"), int)
                and base["seq"] < seq and base["seq"] in paths):  # fmt: skip
            log.debug("snapshot %s ignored: the layer below it is gone", path)
            return None
        seq, path, expect = base["seq"], paths[base["seq"]], base.get("sha256")
    chain.reverse()
    state = decode_chain([(h, h["_tables"]) for _, h in chain])
    cold, _ = state.trials.parts()
    if isinstance(cold, LayeredTrials):
        cold.links = [{"seq": h["seq"], "sha256": h["_checksum"], "path": p} for p, h in chain]
        _bind_lists(state, cold)
    return chain[-1][1], state


def _tables(path: str, header: dict[str, Any]) -> Tables | None:
    """The tables of the snapshot file at ``path`` whose verified ``header`` is known: each is
    read from the file when first needed (the file is opened for that read, no descriptor is
    held between reads: a study on a chain of many layers keeps none open) and checked against
    its SHA-256 from the header, so a file changed, cut short or removed since is refused
    (``SnapshotChanged``), never trusted."""

    def read_at(offset: int, size: int) -> bytes:
        try:
            with open(path, "rb") as f:
                data = os.pread(f.fileno(), size, _BASE + offset)
        except OSError as exc:
            raise SnapshotChanged(
                f"{path}: the snapshot can no longer be read ({exc}) since the study was "
                "opened from it. The log is intact: open the study again"
            ) from exc
        if len(data) != size:
            raise SnapshotChanged(f"{path}: the snapshot was cut short after it was checked")
        return data

    try:
        return Tables(header["tables"], read_at, where=path, verify=True)
    except (TypeError, ValueError) as exc:  # a header this version did not write
        log.debug("snapshot %s ignored: %s", path, exc)
        return None


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
    file changed in place, cut short or removed after the check is refused, never trusted."""
    try:
        with open(path, "rb") as f:
            got = _verified_header(f, path)
    except (OSError, ValueError) as exc:
        log.debug("snapshot %s ignored: %s", path, exc)
        return None
    if got is not None and got.get("study") != study:
        log.debug("snapshot %s ignored: it is of study %r", path, got.get("study"))
        got = None
    tables = None if got is None else _tables(path, got)
    if got is None or tables is None:
        return None
    got["_tables"] = tables
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
    if digest.digest() != head[8:]:
        log.debug("snapshot %s ignored: checksum mismatch", path)
        return None
    text = _footer(f.fileno(), size)
    header = None if text is None else parse_header(text, size - 4 - len(text) - _BASE)
    if header is not None:
        header["_checksum"] = head[8:].hex()  # what a layer written on this file names
    return header


def _footer(fd: int, size: int) -> bytes | None:
    """The header text at the end of the ``size``-byte snapshot file open as ``fd`` (before
    its 4-byte length), or None when the length does not fit after the magic and checksum."""
    if size < _BASE + 4:
        return None
    (n,) = struct.unpack("<I", os.pread(fd, 4, size - 4))
    if n > size - 4 - _BASE:
        return None
    text = os.pread(fd, n, size - 4 - n)
    return text if len(text) == n else None
