"""The Parquet backend: a directory of immutable, content-hashed, zstd-compressed segment files.

Layout (a documented part of the log format; readers other than hpostore rely on it)::

    runs/                                   the store
      <study>/                              one folder per study (name percent-encoded)
        000000000001-000000000057.<writer>.<blake2b>.parquet    events seq 1..57 of that study
        000000000058-000000000060.<writer>.<blake2b>.parquet
        _writer.json                        who is appending to the study now (while open)

Segments are named, listed, covered and verified by :mod:`hpostore.log.segments` (the same
code ``analysis`` reads with). A segment is written to a temporary file, fsynced, and
hard-linked to its name (never replacing a file), so a reader never sees half a segment; a
crash leaves at most a temporary file, which readers ignore and ``compact`` removes.

Two writers on the *same* study would both number their events from the same seq; the first
append to a study therefore claims it with ``_writer.json``: the claim is written to a
temporary file and linked into place, so it is never seen empty. A claim that is empty or
not JSON (left by hpostore 0.1), or whose process is dead on this host, is moved aside
(atomically: only one taker wins) and taken. Each publish checks the claim is still this
writer's and that no other writer published the same events; the loser gets
:class:`~hpostore.errors.StudyWriterConflict`.

``compact`` merges a study's segments into one; the narrow segments are deleted only after
the merged one is in place and holds the same events, so a reader sees the same events
before, during and after a compaction (a reader whose file vanished lists again).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
import weakref
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import CorruptLogError, HPOStoreError, StudyWriterConflict
from ..log.events import COLUMNS, SCHEMA, Row, rows_to_table
from ..log.segments import (
    READ_RETRIES,
    Segment,
    cover,
    list_segments,
    read_cover,
    read_directory,
    read_folder,
    read_segment,
    study_folder_name,
    study_folders,
    write_segment,
)
from ..log.sql import lock_down, run_user_sql
from ._claims import CLAIM_NAME, Claims
from .base import FOLD_INTERVAL_S, EventLog

__all__ = ["CLAIM_NAME", "ParquetStore", "Segment", "list_segments", "study_folder_name"]

#: Temporary files older than this are leftovers of a crash; ``compact`` removes them.
STALE_TMP_S = 600.0
log = logging.getLogger("hpostore")
#: This process's writers by id: a claim held by one that was garbage-collected unclosed (a
#: re-run notebook cell) is stale; one held by a store object still alive is a conflict.
_LIVE: weakref.WeakValueDictionary[str, ParquetStore] = weakref.WeakValueDictionary()


def _safe_id(text: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in text)[:40]


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
        self._claims = Claims(path, self.writer, _LIVE.get)
        self._published: dict[str, list[Segment]] = {}  # this store's segments, per study
        self._cache: dict[str, pa.Table] = {}  # verified hashed segments (immutable)
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
            _LIVE[self.writer] = self

    def _folder(self, study: str) -> Path:
        return self.root / study_folder_name(study)

    def _disk_last(self, study: str) -> int:
        return max((s.last for s in list_segments(self._folder(study))), default=0)

    # --- write path -------------------------------------------------------------------------
    def _buffer(self, row: Row) -> None:
        if self._closed:
            raise HPOStoreError(f"{self.path}: the store is closed")
        study, seq = row[0], row[1]
        if study not in self._claims.held:
            self._claims.take(study, self._folder(study))
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
        """Publish pending events per study; a study's events leave ``_pending`` only once on
        disk, so a failed write (full disk) keeps them, gapless, for the next commit."""
        by_study: dict[str, list[Row]] = {}
        for row in self._pending:
            by_study.setdefault(row[0], []).append(row)
        for study, rows in by_study.items():
            self._publish(study, rows)
            self._pending = [r for r in self._pending if r[0] != study]

    def _publish(self, study: str, rows: list[Row]) -> None:
        folder = self._folder(study)
        first, last = rows[0][1], rows[-1][1]
        self._claims.check(study)
        on_disk = self._disk_last(study)
        if on_disk != first - 1:
            raise StudyWriterConflict(
                f"study {study!r} in {self.path}: cannot write events {first}..{last}, the "
                f"study already holds events up to {on_disk}: another writer appended to it."
            )
        seg = write_segment(
            folder, rows_to_table(rows), first, last, self.writer,
            durable=self.durability == "durable",
        )  # fmt: skip
        rivals = [
            s.path.name
            for s in list_segments(folder)
            if s.path != seg.path and s.first <= last and s.last >= first
            and not s.writer.startswith("compact-")
        ]  # fmt: skip
        if rivals:  # a writer that lost its claim unnoticed published the same events
            seg.path.unlink(missing_ok=True)
            raise StudyWriterConflict(
                f"study {study!r} in {self.path}: {rivals} hold events {first}..{last} too: "
                "another writer appends to the study. Reopen the store and replay it."
            )
        self._published.setdefault(study, []).append(seg)

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
            self._claims.release()

    # --- compaction -------------------------------------------------------------------------
    def _merge(self, study: str, segs: list[Segment]) -> bool:
        """Write one segment holding ``segs`` (contiguous), then delete them; False when one
        vanished first (another compaction got there)."""
        segs = sorted(segs, key=lambda s: s.first)
        try:
            table = pa.concat_tables([read_segment(s, study, self._cache) for s in segs])
        except FileNotFoundError:
            return False
        write_segment(
            self._folder(study), table, segs[0].first, segs[-1].last, f"compact-{self.writer}",
            durable=self.durability == "durable",
        )  # fmt: skip
        for s in segs:
            s.path.unlink(missing_ok=True)
        return True

    def compact(self, study: str | None = None) -> dict[str, tuple[int, int]]:
        """Merge each study's segments into one (or only ``study``'s).

        Safe beside writers and readers. Returns study -> (segments before, after); also
        removes temporary files left by crashed writes and segments a wider one holds (after
        checking it holds the same events; a conflict is a CorruptLogError, nothing deleted).
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
            before = len(list_segments(folder))
            for _ in range(READ_RETRIES):
                try:
                    found = cover(list_segments(folder), where=str(folder))
                    read_cover(folder, name, found, self._cache)  # conflicts: error, no change
                    if len(found.chosen) > 1:
                        self._merge(name, found.chosen)
                        continue  # list again; the narrow ones are gone
                    for inner, _ in found.shadowed:  # checked: the wider one holds its events
                        inner.path.unlink(missing_ok=True)
                    break
                except FileNotFoundError:
                    continue  # another compaction or a writer's close changed the folder
            out[name] = (before, len(list_segments(folder)))
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
        for name in table.column("study").unique():
            # an Arrow scalar, and Arrow values, throughout: a Python str given to pc.equal or
            # Array.to_numpy would import pandas (when installed) into the CLI's process
            study = name.as_py()
            part = table.filter(pc.equal(table.column("study"), name)).sort_by("seq")
            seqs = part.column("seq")
            n = part.num_rows
            if seqs[0].as_py() != 1 or seqs[-1].as_py() != n:
                raise CorruptLogError(
                    f"study {study!r}: its events do not run gaplessly from seq 1 to {n}"
                )
            if self._disk_last(study) or study in self._claims.held:
                raise HPOStoreError(
                    f"{self.path} already holds study {study!r}; export it elsewhere"
                )
            self._claims.take(study, self._folder(study))
            write_segment(self._folder(study), part, 1, n, self.writer, durable=True)
            out[study] = n
        return out

    # --- read path --------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise HPOStoreError(f"{self.path}: the store is closed")

    def last_seq(self, study: str) -> int:
        self._check_open()
        pending = [r[1] for r in self._pending if r[0] == study]
        return max(pending) if pending else self._disk_last(study)

    def studies(self) -> list[str]:
        self._check_open()
        first_ts: dict[str, Any] = {}
        for study, folder in study_folders(self.root):
            segs = list_segments(folder)
            if not segs:
                continue
            head = min(segs, key=lambda s: (s.first, -s.last))
            try:
                ts = read_segment(head, study, self._cache).column("ts")[0].value
            except (FileNotFoundError, CorruptLogError):
                ts = 0  # compacted away or corrupt: listed first; reading it says what is wrong
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
        table = read_folder(self._folder(study), study, self._cache)
        pending = [r for r in self._pending if r[0] == study]
        if pending:
            table = pa.concat_tables([table, rows_to_table(pending)])
        return table.select(cols)

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pa.Table:
        """One SELECT over a verified snapshot of ``events``; no file access, no writes."""
        self._check_open()
        table = read_directory(self.root, self._cache)
        if self._pending:
            table = pa.concat_tables([table, rows_to_table(self._pending)])
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.register("_hpostore_events", table)
            con.execute("CREATE TEMP VIEW events AS SELECT * FROM _hpostore_events")
            lock_down(con)
            return run_user_sql(con, query, params)
        finally:
            con.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else self.durability
        return f"ParquetStore({self.path!r}, {mode})"
