"""The Parquet backend: a directory of immutable, zstd-compressed segment files.

Layout (a documented part of the log format; readers other than hpostore rely on it)::

    runs/                                   the store
      <study>/                              one folder per study (name percent-encoded)
        000000000001-000000000057.<writer>.parquet    events seq 1..57 of that study
        000000000058-000000000060.<writer>.parquet
        _writer.json                        who is appending to the study now (while open)

A segment is written to a temporary ``.<name>.tmp`` file, fsynced, and renamed into place,
so a reader never sees half a segment; a crash leaves at most a temporary file, which
readers ignore and ``compact`` removes. The writer id in each name (host, pid, random)
keeps names unique across processes and machines without coordination, so several
processes can write *different* studies into one directory with no lock.

Two writers on the *same* study would both number their events from the same seq; the first
append to a study therefore claims it with ``_writer.json`` (created exclusively; released at
close; taken over when its process is dead on this host), and every segment is published
only if it continues the study's last seq on disk. The loser gets
:class:`~hpostore.errors.StudyWriterConflict` naming the other writer.

``compact`` merges a study's segments into one; the narrow segments are deleted only after
the merged one is in place, and readers pick the widest segments covering each seq, so a
reader sees the same events before, during and after a compaction.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import CorruptLogError, HPOStoreError, StudyWriterConflict
from ..log.events import COLUMNS, SCHEMA, Row, rows_to_table
from .base import FOLD_INTERVAL_S, EventLog
from .duckdb import _select_only, arrow

#: ``<first seq>-<last seq>.<writer id>.parquet``, seqs zero-padded to 12 digits.
SEGMENT_NAME = re.compile(r"^(\d{12})-(\d{12})\.([A-Za-z0-9_.-]+)\.parquet$")
CLAIM_NAME = "_writer.json"
#: Temporary files older than this are leftovers of a crash; ``compact`` removes them.
STALE_TMP_S = 600.0
_MAX_FOLDER_NAME = 200
_READ_RETRIES = 5


@dataclass(frozen=True, slots=True)
class Segment:
    first: int
    last: int
    writer: str
    path: Path


def study_folder_name(study: str) -> str:
    """The folder name of a study: percent-encoded, never ``.``/``..`` or a path."""
    name = quote(study, safe="").replace(".", "%2E")
    if not study or len(name) > _MAX_FOLDER_NAME:
        raise HPOStoreError(
            f"study name {study[:60]!r}… cannot be a Parquet store folder: it must be non-empty "
            f"and at most {_MAX_FOLDER_NAME} characters once percent-encoded"
        )
    return name


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)[:40]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_segments(folder: Path) -> list[Segment]:
    """Every segment file in a study folder (temporary files and others left out)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        m = SEGMENT_NAME.match(name)
        if m:
            out.append(Segment(int(m.group(1)), int(m.group(2)), m.group(3), folder / name))
    return out


def cover(segments: list[Segment], *, where: str) -> list[Segment]:
    """The segments readers use: the widest ones, in seq order, covering 1..last once.

    Segments inside a wider one (left over from a compaction in progress) are skipped; a gap
    or a partial overlap (two writers numbered the same events) is corruption.
    """
    chosen: list[Segment] = []
    covered = 0
    for seg in sorted(segments, key=lambda s: (s.first, -s.last, s.path.name)):
        if seg.last <= covered:
            continue
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
    return chosen


class ParquetStore(EventLog):
    """Event log in a directory of Parquet segments. Use :func:`hpostore.open_store` with a
    directory path (``open_store("runs/")``) to open one."""

    def __init__(self, path: str, *, durability: str = "durable", read_only: bool = False) -> None:
        super().__init__()
        self.path = path
        self.root = Path(path)
        self.durability = durability
        self.read_only = read_only
        self.writer = "-".join(
            (_safe_id(socket.gethostname()), str(os.getpid()), uuid.uuid4().hex[:8])
        )
        self._pending: list[Row] = []
        self._claims: dict[str, Path] = {}  # study -> the claim file this store holds
        self._published: dict[str, list[Segment]] = {}  # this store's segments, per study
        self._last_commit = time.monotonic()
        self._closed = False
        if read_only:
            if not self.root.is_dir():
                raise HPOStoreError(f"no store at {path}: the directory does not exist")
        else:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HPOStoreError(f"cannot create the Parquet store {path}: {exc}") from exc
            if not self.root.is_dir():
                raise HPOStoreError(f"{path} exists and is not a directory")

    # --- layout -----------------------------------------------------------------------------
    def _folder(self, study: str) -> Path:
        return self.root / study_folder_name(study)

    def _segments(self, study: str) -> list[Segment]:
        folder = self._folder(study)
        return cover(list_segments(folder), where=f"{folder}")

    def _disk_last(self, study: str) -> int:
        segs = list_segments(self._folder(study))
        return max((s.last for s in segs), default=0)

    # --- claims -----------------------------------------------------------------------------
    def _claim(self, study: str) -> None:
        folder = self._folder(study)
        folder.mkdir(exist_ok=True)
        claim = folder / CLAIM_NAME
        info = {
            "writer": self.writer,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        for _ in range(3):
            try:
                fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._claim_holder(claim)
                if holder is None:
                    time.sleep(0.05)  # being written right now, or just released
                    continue
                if holder.get("host") == socket.gethostname() and not _pid_alive(
                    int(holder.get("pid", -1))
                ):
                    claim.unlink(missing_ok=True)  # its process died: the study is free
                    continue
                raise StudyWriterConflict(
                    f"study {study!r} in {self.path} is being written by writer "
                    f"{holder.get('writer')} (pid {holder.get('pid')} on {holder.get('host')}, "
                    f"since {holder.get('since')}). One writer appends to a study at a time: "
                    "give this run another study name, or wait for that one to finish. If that "
                    f"writer is gone (another machine), delete {claim} and try again."
                ) from None
            try:
                os.write(fd, json.dumps(info).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._claims[study] = claim
            return
        raise StudyWriterConflict(
            f"study {study!r} in {self.path}: cannot claim {claim}; another writer keeps "
            "taking it. Give this run another study name."
        )

    @staticmethod
    def _claim_holder(claim: Path) -> dict[str, Any] | None:
        try:
            value = json.loads(claim.read_text())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def _release(self) -> None:
        for claim in self._claims.values():
            holder = self._claim_holder(claim)
            if holder is not None and holder.get("writer") == self.writer:
                claim.unlink(missing_ok=True)
        self._claims.clear()

    # --- write path -------------------------------------------------------------------------
    def _buffer(self, row: Row) -> None:
        if self._closed:
            raise HPOStoreError(f"{self.path}: the store is closed")
        study, seq = row[0], row[1]
        if study not in self._claims:
            self._claim(study)
            on_disk = self._disk_last(study)
            if seq != on_disk + 1:
                self._next_seq.pop(study, None)
                raise StudyWriterConflict(
                    f"study {study!r} in {self.path} grew to seq {on_disk} since this process "
                    f"read it at seq {seq - 1}: another writer appended to it. Reopen the "
                    "store and replay the study before writing to it."
                )
        self._pending.append(row)

    def commit(self, *, force: bool = False) -> None:
        if self.read_only or self._closed:
            return
        now = time.monotonic()
        if self.durability == "durable" or force or now - self._last_commit >= FOLD_INTERVAL_S:
            self._publish_pending()
            self._last_commit = now

    def _publish_pending(self) -> None:
        if not self._pending:
            return
        by_study: dict[str, list[Row]] = {}
        for row in self._pending:
            by_study.setdefault(row[0], []).append(row)
        for study, rows in by_study.items():
            self._publish(study, rows)
            self._pending = [r for r in self._pending if r[0] != study]

    def _publish(self, study: str, rows: list[Row]) -> None:
        folder = self._folder(study)
        first, last = rows[0][1], rows[-1][1]
        on_disk = self._disk_last(study)
        if on_disk != first - 1:
            raise StudyWriterConflict(
                f"study {study!r} in {self.path}: cannot write events {first}..{last}, the "
                f"study already holds events up to {on_disk}: another writer appended to it "
                f"(its claim {folder / CLAIM_NAME} was removed while this one was writing)."
            )
        self._write_segment(folder, rows_to_table(rows), first, last, self.writer)
        self._published.setdefault(study, []).append(
            Segment(first, last, self.writer, folder / self._name(first, last, self.writer))
        )

    @staticmethod
    def _name(first: int, last: int, writer: str) -> str:
        return f"{first:012d}-{last:012d}.{writer}.parquet"

    def _write_segment(
        self, folder: Path, table: pa.Table, first: int, last: int, writer: str
    ) -> Path:
        folder.mkdir(exist_ok=True)
        name = self._name(first, last, writer)
        final = folder / name
        tmp = folder / f".{name}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        if self.durability == "durable":
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, final)  # atomic: readers see all of the segment or none of it
        if self.durability == "durable":
            _fsync_dir(folder)
        return final

    def flush(self) -> None:
        if not self.read_only and not self._closed:
            self._publish_pending()
            self._last_commit = time.monotonic()

    def close(self) -> None:
        if self._closed:
            return
        try:
            if not self.read_only:
                self.flush()
                for study, segs in self._published.items():
                    alive = [seg for seg in segs if seg.path.exists()]  # not compacted yet
                    if len(alive) > 1 and len(alive) == len(segs):
                        self._merge(study, alive)  # this session's small segments -> one
        finally:
            self._closed = True
            self._release()

    # --- compaction -------------------------------------------------------------------------
    def _merge(self, study: str, segs: list[Segment]) -> None:
        """Write one segment holding ``segs`` (contiguous), then delete them."""
        segs = sorted(segs, key=lambda s: s.first)
        table = pa.concat_tables([self._read_segment(s, None) for s in segs])
        folder = self._folder(study)
        self._write_segment(folder, table, segs[0].first, segs[-1].last, f"compact-{self.writer}")
        for s in segs:
            s.path.unlink(missing_ok=True)

    def compact(self, study: str | None = None) -> dict[str, tuple[int, int]]:
        """Merge each study's segments into one (or only ``study``'s).

        Readers see the same events throughout. Returns study -> (segments before, after);
        also removes temporary files left by crashed writes and segments that a wider one
        already holds.
        """
        if self.read_only:
            raise HPOStoreError(f"{self.path} was opened read-only; compacting writes to it")
        self.flush()
        studies = [study] if study is not None else self.studies()
        out = {}
        for name in studies:
            folder = self._folder(name)
            now = time.time()
            for f in folder.glob(".*.tmp"):
                try:
                    if now - f.stat().st_mtime > STALE_TMP_S:
                        f.unlink()
                except FileNotFoundError:
                    pass
            every = list_segments(folder)
            used = cover(every, where=str(folder))
            if len(used) > 1:
                self._merge(name, used)
            remaining = list_segments(folder)
            widest = cover(remaining, where=str(folder))
            for seg in remaining:
                if seg not in widest:
                    seg.path.unlink(missing_ok=True)  # a wider segment holds its events
            out[name] = (len(every), len(list_segments(folder)))
        return out

    def import_events(self, table: pa.Table) -> dict[str, int]:
        """Write whole studies from an Arrow table with the events schema (``hpostore export``).

        Each study must be absent from this store and its seqs must run 1..n; ``ts``,
        ``session`` and everything else is kept as it is. Returns study -> events written.
        """
        if self.read_only:
            raise HPOStoreError(f"{self.path} was opened read-only")
        table = table.select(list(COLUMNS)).cast(SCHEMA)
        out = {}
        studies = table.column("study").unique().to_pylist()
        for study in studies:
            part = table.filter(pc.equal(table.column("study"), study))
            part = part.sort_by("seq")
            seqs = part.column("seq").to_numpy()
            n = part.num_rows
            if seqs[0] != 1 or seqs[-1] != n:
                raise CorruptLogError(
                    f"study {study!r}: its events do not run gaplessly from seq 1 to {n}"
                )
            if self._disk_last(study) or study in self._claims:
                raise HPOStoreError(
                    f"{self.path} already holds study {study!r}; export it elsewhere"
                )
            self._claim(study)
            self._write_segment(self._folder(study), part, 1, n, self.writer)
            out[study] = n
        return out

    # --- read path --------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise HPOStoreError(f"{self.path}: the store is closed")

    def _read_segment(self, seg: Segment, columns: list[str] | None) -> pa.Table:
        try:
            table = pq.read_table(seg.path, columns=columns)
        except FileNotFoundError:
            raise
        except (OSError, pa.ArrowException) as exc:
            raise CorruptLogError(
                f"{seg.path}: not a readable Parquet segment ({exc}). The other segments are "
                "intact; move this file aside to read the rest of the study."
            ) from exc
        if table.num_rows != seg.last - seg.first + 1:
            raise CorruptLogError(
                f"{seg.path}: holds {table.num_rows} events, its name says {seg.first}..{seg.last}; "
                "move this file aside to read the rest of the study."
            )
        return table

    def _read_study(self, study: str, columns: list[str] | None) -> pa.Table:
        fields = [SCHEMA.field(c) for c in (columns or COLUMNS)]
        schema = pa.schema(fields)
        for attempt in range(_READ_RETRIES):
            segs = self._segments(study)
            try:
                parts = [self._read_segment(s, columns).cast(schema) for s in segs]
            except FileNotFoundError:
                if attempt == _READ_RETRIES - 1:
                    raise
                continue  # a compaction replaced the segments between listing and reading
            break
        pending = [r for r in self._pending if r[0] == study]
        if pending:
            extra = rows_to_table(pending)
            parts.append(extra.select([f.name for f in fields]))
        return pa.concat_tables(parts) if parts else schema.empty_table()

    def last_seq(self, study: str) -> int:
        self._check_open()
        pending = [r[1] for r in self._pending if r[0] == study]
        return max(pending) if pending else self._disk_last(study)

    def _study_folders(self) -> Iterator[tuple[str, Path]]:
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.is_dir() and not entry.name.startswith("."):
                yield unquote(entry.name), Path(entry.path)

    def studies(self) -> list[str]:
        self._check_open()
        first_ts: dict[str, Any] = {}
        for study, folder in self._study_folders():
            segs = list_segments(folder)
            if not segs:
                continue
            head = min(segs, key=lambda s: (s.first, -s.last))
            try:
                ts = pq.read_table(head.path, columns=["ts"]).column("ts")[0].value
            except (OSError, pa.ArrowException):
                ts = 0
            first_ts[study] = ts
        for row in self._pending:
            first_ts.setdefault(row[0], row[2])
        return sorted(first_ts, key=lambda s: (first_ts[s], s))

    def events(self, study: str, *, columns: list[str] | None = None) -> pa.Table:
        self._check_open()
        cols = list(COLUMNS) if columns is None else columns
        unknown = set(cols) - set(COLUMNS)
        if unknown:
            raise HPOStoreError(
                f"unknown event columns {sorted(unknown)}; the columns are {list(COLUMNS)}"
            )
        return self._read_study(study, cols)

    def all_segments(self) -> list[Path]:
        """The segment files readers use, over all studies (see :func:`cover`)."""
        out = []
        for _, folder in self._study_folders():
            out += [s.path for s in cover(list_segments(folder), where=str(folder))]
        return out

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pa.Table:
        self._check_open()
        for attempt in range(_READ_RETRIES):
            try:
                return self._sql_once(query, params)
            except duckdb.IOException as exc:
                if attempt == _READ_RETRIES - 1:
                    raise HPOStoreError(f"SQL failed reading {self.path}: {exc}") from exc
                # a compaction replaced segments between listing and reading them: list again
        raise AssertionError("unreachable")

    def _sql_once(self, query: str, params: list[Any] | dict[str, Any] | None) -> pa.Table:
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            _select_only(con, query)
            files = [str(p) for p in self.all_segments()]
            con.register("_hpostore_pending", rows_to_table(self._pending))
            if files:
                con.read_parquet(files).create_view("_hpostore_segments")
                con.execute(
                    "CREATE TEMP VIEW events AS SELECT * FROM _hpostore_segments "
                    "UNION ALL SELECT * FROM _hpostore_pending"
                )
            else:
                con.execute("CREATE TEMP VIEW events AS SELECT * FROM _hpostore_pending")
            try:
                return arrow(con, query, params)
            except duckdb.IOException:
                raise
            except duckdb.Error as exc:
                raise HPOStoreError(f"SQL failed: {exc}") from exc
        finally:
            con.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else self.durability
        return f"ParquetStore({self.path!r}, {mode})"
