"""Parquet segments: names, content hashes, listing, the cover readers use, verified reads.

A segment is ``<study folder>/<first>-<last>.<writer>.<blake2b-128 of the file>.parquet``
(seqs zero-padded to 12 digits). The hash in the name is checked on every read, so a flipped
byte anywhere in a segment is a :class:`~hpostore.errors.CorruptLogError` naming it. Segments
written by hpostore 0.1 have no hash (``<first>-<last>.<writer>.parquet``); they are still
read, with their content checked against their name and folder (study, seqs, row count), but
only before the first hashed segment of a study or inside a hashed one (compacted): a writer
of this version never writes an unhashed one, so one after a hashed one is refused, and
hashed segments carry a Parquet metadata mark, so one renamed without its hash is too.

Cover rules (the same for the store and ``analysis``): the widest segments, in seq order,
hold 1..last exactly once; a gap or a partial overlap is corruption; a segment inside or
equal to a wider one (a compaction in progress) must hold the same events as that part of
the wider one, else two writers numbered the same events: corruption, never a silent choice.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._files import fsync_dir
from ..errors import CorruptLogError, HPOStoreError
from ._arrowcols import to_numpy
from .events import COLUMNS, SCHEMA, check_study_name

SEGMENT_NAME = re.compile(r"^(\d{12})-(\d{12})\.([A-Za-z0-9_-]+)\.([0-9a-f]{32})\.parquet$")
#: hpostore 0.1 segments, without a content hash
LEGACY_SEGMENT_NAME = re.compile(r"^(\d{12})-(\d{12})\.([A-Za-z0-9_.-]+)\.parquet$")
_MAX_FOLDER_NAME = 200
#: Parquet key-value metadata of hashed segments, so one renamed to an unhashed name is caught.
_MARK = b"hpostore_segment"
#: How often a reader lists again when a compaction removed a file it was about to read.
READ_RETRIES = 5


@dataclass(frozen=True, slots=True)
class Segment:
    first: int
    last: int
    writer: str
    #: blake2b-128 hex of the file's bytes; None for an hpostore 0.1 segment
    digest: str | None
    path: Path


def segment_name(first: int, last: int, writer: str, digest: str) -> str:
    return f"{first:012d}-{last:012d}.{writer}.{digest}.parquet"


def content_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def study_folder_name(study: str) -> str:
    """The folder name of a study: percent-encoded, never ``.``/``..``, a path or a NUL."""
    check_study_name(study)
    name = quote(study, safe="").replace(".", "%2E")
    if len(name) > _MAX_FOLDER_NAME:
        raise HPOStoreError(
            f"study name {study[:60]!r}… cannot be a Parquet store folder: it must be at most "
            f"{_MAX_FOLDER_NAME} characters once percent-encoded; give a shorter name"
        )
    return name


def study_folders(root: Path) -> Iterator[tuple[str, Path]]:
    """(study, folder) for each study folder under ``root``, sorted by folder name."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir() and not entry.name.startswith("."):
            yield unquote(entry.name), Path(entry.path)


def list_segments(folder: Path) -> list[Segment]:
    """Every segment file in a study folder (temporary and other files left out)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        m = SEGMENT_NAME.match(name)
        if m:
            out.append(Segment(int(m[1]), int(m[2]), m[3], m[4], folder / name))
            continue
        m = LEGACY_SEGMENT_NAME.match(name)
        if m:
            out.append(Segment(int(m[1]), int(m[2]), m[3], None, folder / name))
    return out


@dataclass(frozen=True, slots=True)
class Cover:
    """The segments to read, and those inside a chosen one (each with the one holding it)."""

    chosen: list[Segment]
    shadowed: list[tuple[Segment, Segment]]


def cover(segments: list[Segment], *, where: str) -> Cover:
    """Choose the segments readers use (see the module's rules; names only, no reads)."""
    chosen: list[Segment] = []
    shadowed: list[tuple[Segment, Segment]] = []
    covered = 0
    hashed_from = min((s.first for s in segments if s.digest is not None), default=0)
    for seg in sorted(segments, key=lambda s: (s.first, -s.last, s.path.name)):
        if seg.last <= covered:
            shadowed.append((seg, next(c for c in chosen if c.first <= seg.first <= c.last)))
            continue
        if seg.digest is None and hashed_from and seg.last >= hashed_from:
            raise CorruptLogError(
                f"{where}: {seg.path.name} has no content hash but holds events from "
                f"{hashed_from} on, where this version writes hashed segments only. Move it "
                "aside to read the study."
            )
        if seg.first != covered + 1:
            if seg.first > covered + 1:
                after = f"after {chosen[-1].path.name}" if chosen else "at the start"
                raise CorruptLogError(
                    f"{where}: events {covered + 1}..{seg.first - 1} are missing {after} (next "
                    f"segment: {seg.path.name}); a segment file was deleted or not copied"
                )
            raise CorruptLogError(
                f"{where}: segments {chosen[-1].path.name} and {seg.path.name} both hold events "
                f"{seg.first}..{covered}: two writers appended to the study at once. Move one "
                "of them aside to read the study."
            )
        chosen.append(seg)
        covered = seg.last
    return Cover(chosen, shadowed)


def read_segment(seg: Segment, study: str, cache: dict[str, pa.Table] | None = None) -> pa.Table:
    """A segment's events, verified (hash, schema, study, seqs). FileNotFoundError passes."""
    key = str(seg.path)
    if cache is not None and seg.digest is not None and key in cache:
        return cache[key]
    # Read into Arrow memory, not a Python bytes: a Parquet read can return before its worker
    # threads drop their last reference to the source, and dropping a Python object needs the
    # GIL; at interpreter exit that aborts the process ("terminate called without an active
    # exception"). An Arrow buffer is freed without the GIL.
    with pa.OSFile(os.fspath(seg.path)) as f:
        data = f.read_buffer()

    def bad(problem: str) -> CorruptLogError:
        return CorruptLogError(
            f"{seg.path}: corrupt segment ({problem}). The other segments are intact; move "
            "this file aside to read the rest of the study (events after it will be missing)."
        )

    if seg.digest is not None and content_digest(data) != seg.digest:
        raise bad("its content does not match the hash in its name")
    try:
        table = pq.ParquetFile(pa.BufferReader(data)).read()  # (read_table imports pandas)
        if seg.digest is None and _MARK in (table.schema.metadata or {}):
            raise bad("written with a content hash, renamed without it")
        if tuple(table.column_names) != COLUMNS:
            raise bad(f"columns {table.column_names}, not the event-log columns")
        table = table.cast(SCHEMA)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise bad(f"not a readable Parquet events file: {exc}") from exc
    if table.num_rows != seg.last - seg.first + 1:
        raise bad(f"holds {table.num_rows} events, its name says {seg.first}..{seg.last}")
    seqs = to_numpy(table.column("seq"))
    if not np.array_equal(seqs, np.arange(seg.first, seg.last + 1, dtype=np.int64)):
        raise bad(f"its seqs are not {seg.first}..{seg.last}")
    # (pc.unique, not pc.equal with a str: converting the str imports pandas, when installed)
    if pc.unique(table.column("study")).to_pylist() != [study]:
        raise bad(f"it holds events of another study than {study!r}")
    if cache is not None and seg.digest is not None:
        cache[key] = table
    return table


def read_folder(folder: Path, study: str, cache: dict[str, pa.Table] | None = None) -> pa.Table:
    """All events of one study folder, in seq order, under the cover rules.

    A file that vanishes between listing and reading (a compaction) makes it list again.
    """
    for attempt in range(READ_RETRIES):
        try:
            return read_cover(folder, study, cover(list_segments(folder), where=str(folder)), cache)
        except FileNotFoundError:
            if attempt == READ_RETRIES - 1:
                raise CorruptLogError(
                    f"{folder}: its segments kept vanishing while being read ({READ_RETRIES} "
                    "tries); is a compaction looping? Try again."
                ) from None
    raise AssertionError("unreachable")


def read_cover(
    folder: Path, study: str, found: Cover, cache: dict[str, pa.Table] | None = None
) -> pa.Table:
    """The events of ``found.chosen``, after checking each shadowed segment holds the same
    events as its part of the wider one. FileNotFoundError passes (list again)."""
    parts = {seg.path: read_segment(seg, study, cache) for seg in found.chosen}
    for inner, outer in found.shadowed:
        try:
            inner_table = read_segment(inner, study, cache)
        except FileNotFoundError:
            continue  # the compaction finished meanwhile
        part = parts[outer.path].slice(inner.first - outer.first, inner.last - inner.first + 1)
        if not inner_table.equals(part):
            raise CorruptLogError(
                f"{folder}: segments {outer.path.name} and {inner.path.name} hold different "
                f"events {inner.first}..{inner.last}: two writers appended to the study at "
                "once. Move one of them aside to read the study."
            )
    if cache is not None:  # forget segments compacted away, so a long-lived reader stays small
        live = {str(seg.path) for seg in found.chosen}
        prefix = str(folder / "x")[:-1]
        for key in [k for k in cache if k.startswith(prefix) and k not in live]:
            del cache[key]
    tables = [parts[seg.path] for seg in found.chosen]
    return pa.concat_tables(tables) if tables else pa.Table.from_batches([], schema=SCHEMA)


def read_directory(root: Path, cache: dict[str, pa.Table] | None = None) -> pa.Table:
    """Every study's events in a Parquet log directory (each checked as by :func:`read_folder`)."""
    tables = [read_folder(folder, study, cache) for study, folder in study_folders(root)]
    return pa.concat_tables(tables) if tables else pa.Table.from_batches([], schema=SCHEMA)


def write_segment(
    folder: Path, table: pa.Table, first: int, last: int, writer: str, *, durable: bool
) -> Segment:
    """Publish ``table`` (events first..last) as a new segment; never replaces a file.

    The bytes go to a temporary file (fsynced when ``durable``), which is then hard-linked to
    its final name (no-replace: an existing name is never overwritten) and removed. An
    ``OSError`` (a full disk, an I/O error) becomes :class:`HPOStoreError` naming the file,
    with nothing left behind.
    """
    sink = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata({_MARK: b"2"}), sink, compression="zstd")
    data = sink.getvalue().to_pybytes()
    digest = content_digest(data)
    name = segment_name(first, last, writer, digest)
    final = folder / name
    tmp = folder / f".{name}.tmp"
    try:
        folder.mkdir(exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        _link_no_replace(tmp, final)
        if durable:
            fsync_dir(folder)
    except OSError as exc:
        raise HPOStoreError(
            f"cannot write the segment {final}: {exc.strerror or exc}. Nothing was lost: the "
            "events stay pending and the next commit writes them again; free space (or fix "
            "the disk) and go on."
        ) from exc
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        except OSError:  # a broken disk: the temporary file is left, readers ignore it
            pass
    return Segment(first, last, writer, digest, final)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _link_no_replace(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except FileExistsError:
        # the same name is the same writer, range and content hash: the same bytes
        if content_digest(dst.read_bytes()) != dst.name.split(".")[-2]:
            raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        # no hard links here (some network file systems): the name is unique to this writer
        if dst.exists():
            raise FileExistsError(errno.EEXIST, "segment exists", str(dst)) from exc
        os.rename(src, dst)
