"""The DuckDB backend: an ``events`` table in a DuckDB file, fed by a write-ahead tail.

A committing INSERT into a DuckDB file costs milliseconds, an append + fdatasync a fraction of
one. So each commit point appends the new events as checksummed lines to ``<path>.tail`` and
fdatasyncs it (durable mode: every commit; batched: at most every 0.25 s). A background thread
folds the tail into the ``events`` table in one Arrow batch every 0.25-0.9 s, and the store
folds at close and on the next open (which is also crash recovery: rows already in the table
are skipped by (study, seq), a torn last line is cut off). A failed tail write (disk full, I/O
error) keeps the events in memory and cuts off what it wrote, so the log stays gapless.

One process writes a store at a time: an ``flock`` on the DuckDB file (POSIX, local disks; see
``_writer_lock``); ``<path>.lock`` only says who holds it. In one process, a second writer on
the same file takes over from the first (which is flushed and closed; using it again raises),
so a re-run notebook cell works; :func:`live_writer` is the writer a process has open, and a
read-only store in that process reads through it.

Readers while a study runs: the writer holds DuckDB's own file lock only while it folds (tens
of ms), never between folds, and new files are written in DuckDB storage version v1.1.0. So the
``duckdb`` CLI 1.1 or later (``duckdb -readonly runs.duckdb``), Python's
``duckdb.connect(path, read_only=True)`` and ``hpostore trials``/``open_store(path,
read_only=True)`` read a live store; they see events within about 1 s (hpostore's readers
also read the unfolded tail, so they see every committed event). A reader that connects while
a fold runs gets DuckDB's lock error (hpostore's readers retry; the CLI: run it again); a
reader that stays connected holds the folds back (never the writer: events wait, durable, in
the tail) until it disconnects. A file written before this version keeps its storage version.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa

from .._processes import current_pid
from ..errors import HPOStoreError, StoreLocked
from ..log.events import (
    COLUMNS,
    DUCKDB_DDL,
    SCHEMA,
    Row,
    check_study_name,
)
from ..log.sql import arrow
from ..log.tail import read_tail as _read_tail
from ._duckdb_io import (
    DUCKDB_LOCK_WAIT_S,
    STORAGE_VERSION,
    check_directory,
    create_store_file,
    events_view,
    execute,
    open_error,
    run_user_sql,
    snapshot_table,
    sql_on_table,
)
from ._folding import FoldThread, TableWriter, insert_rows
from ._tail_writer import TailWriter
from ._writer_lock import WriterLock, register_writer, registered_writer, unregister_writer
from .base import FOLD_INTERVAL_S, EventLog

__all__ = ["STORAGE_VERSION", "DuckDBStore", "arrow", "execute", "live_writer", "read_tail"]

log = logging.getLogger("hpostore")


def live_writer(path: str) -> DuckDBStore | None:
    """The store this process has open for writing on the DuckDB file ``path``, if any."""
    writer = registered_writer(path)
    if isinstance(writer, DuckDBStore) and not writer._closed and not writer.read_only:
        return writer
    return None


def read_tail(path: str) -> tuple[list[Row], int]:
    """Rows of a tail file and the byte offset just past the last complete line, under the
    shared rules of :mod:`hpostore.log.tail` (CRC per line; a torn last line is left out)."""
    tail = _read_tail(path)
    return tail.rows, tail.end


@atexit.register
def _close_writers_at_exit() -> None:
    from ._writer_lock import _WRITERS

    for ref in list(_WRITERS.values()):
        store = ref()
        if isinstance(store, DuckDBStore):
            try:
                store.close()
            except HPOStoreError as exc:
                log.error("%s", exc)


#: An in-memory store inserts its events into its table when they are read, at forced commits
#: (session start and end), and in batches of this many rows (a few MB of tuples).
MEMORY_BATCH_ROWS = 50_000


class DuckDBStore(EventLog):
    """Event log in a DuckDB file (or ``:memory:``). Use :func:`hpostore.open_store` to open one."""

    def __init__(self, path: str, *, durability: str = "durable", read_only: bool = False) -> None:
        super().__init__()
        self.path = str(path)
        self.durability = durability
        self.read_only = read_only
        self._memory = self.path == ":memory:"
        self._pending: list[Row] = []  # appended, not yet committed
        self._unfolded: list[Row] = []  # durable in the tail, not yet in the table
        #: one (rows, their Arrow table or None) per commit in ``_unfolded``: the table a large
        #: commit's tail line was built from is the one the fold inserts
        self._commits: list[tuple[int, pa.Table | None]] = []
        self._mu = threading.RLock()  # guards _pending, _unfolded, _commits and the tail
        self._con: duckdb.DuckDBPyConnection | None = None  # the in-memory store's
        self._table = TableWriter(self.path, self.tail_path)
        self._tail: TailWriter | None = None
        self._lock: WriterLock | None = None
        self._closed = False
        self._taken_over = False
        self._folder: FoldThread | None = None
        self._pid = current_pid()  # a forked child's copy must neither write nor flush at exit
        self._last_commit = time.monotonic()
        try:
            if self._memory:
                self._con = duckdb.connect(":memory:")
                execute(self._con, "SET TimeZone = 'UTC'")
                execute(self._con, DUCKDB_DDL)
            elif read_only:
                if live_writer(self.path) is None:
                    with self._view():
                        pass  # the file, its table and its tail are readable
            else:
                self._open_writer()
        except BaseException:
            self._closed = True
            self._release()
            raise

    # --- opening ----------------------------------------------------------------------------
    @property
    def tail_path(self) -> str:
        return self.path + ".tail"

    def _open_writer(self) -> None:
        check_directory(self.path)
        previous = live_writer(self.path)
        if previous is not None:
            previous._hand_over()
        try:
            if not os.path.exists(self.path):
                create_store_file(self.path)
            self._lock = WriterLock(self.path)
            self._table.recover(read_tail(self.tail_path)[0])
            self._truncate_tail()  # everything in it is now in the table (or was torn)
            self._tail = TailWriter(self.tail_path)
        except OSError as exc:
            raise open_error(self.path, exc) from exc
        register_writer(self.path, self)
        self._folder = FoldThread(self, name=f"hpostore fold {self.path}")

    def _hand_over(self) -> None:
        """A newer writer on this file in this process replaces this one (see the module doc)."""
        log.warning(
            "%s: a new writer in this process takes over from an earlier store object that was "
            "not closed; that object is closed now",
            self.path,
        )
        self._taken_over = True
        try:
            self.close()
        except HPOStoreError as exc:
            log.error("%s", exc)

    def _connect(self, wait_s: float = DUCKDB_LOCK_WAIT_S) -> duckdb.DuckDBPyConnection:
        """The writer's read-write connection (opened on demand; closed at the next fold)."""
        return self._table.connect(wait_s)

    def _truncate_tail(self) -> None:
        if os.path.exists(self.tail_path):
            with open(self.tail_path, "r+b") as f:
                f.truncate(0)
                os.fsync(f.fileno())

    # --- write path -------------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self._pid != current_pid():
            raise HPOStoreError(
                f"{self.path}: this store was opened by process {self._pid}; a forked child "
                "process cannot write it (open a store of its own, or send results back)"
            )
        if self._taken_over:
            raise HPOStoreError(
                f"{self.path}: a later open_store({self.path!r}) in this process took over "
                "writing this store, and this store object was closed; use the new one"
            )
        if self._closed:
            raise HPOStoreError(f"{self.path}: the store is closed")
        if self._tail is not None and self._tail.failed is not None:
            raise HPOStoreError(self._tail.failed)

    def _buffer(self, row: Row) -> None:
        tail = self._tail
        # _check_writable's tests, inline (every event); it raises with the message
        if (
            self._pid != current_pid()
            or self._taken_over
            or self._closed
            or (tail is not None and tail.failed is not None)
        ):
            self._check_writable()
        # acquire/release, not ``with``: the lock's __enter__/__exit__ cost twice as much, and
        # this runs for every event
        mu = self._mu
        mu.acquire()
        try:
            self._pending.append(row)
        finally:
            mu.release()

    def _write_pending(self) -> None:
        """Append the pending events to the tail and fdatasync; on failure keep them pending."""
        with self._mu:
            if not self._pending or self._memory:
                return
            if self._tail is None:
                raise HPOStoreError(f"{self.path}: the store is closed")
            table = self._tail.append(self._pending)  # raises with the rows still pending
            self._unfolded.extend(self._pending)
            self._commits.append((len(self._pending), table))
            self._pending = []

    def commit(self, *, force: bool = False) -> None:
        if self.read_only:
            return
        if self._memory:  # nothing to make durable: insert when read, or in large batches
            if force or len(self._pending) >= MEMORY_BATCH_ROWS:
                self._fold_memory()
            return
        now = time.monotonic()
        self._check_writable()
        if self.durability == "durable" or force or now - self._last_commit >= FOLD_INTERVAL_S:
            self._last_commit = now
            self._write_pending()
            # durable now; the fold thread inserts into the table within its interval (a forced
            # commit at session start does not pay DuckDB's attach: ``flush`` is the one that
            # folds at once)
            if self._unfolded and self._folder is not None:
                self._folder.wake()

    def _fold(self, wait_s: float, *, background: bool = False) -> bool:
        """Insert the committed rows into the table (see :class:`TableWriter`); False, with the
        rows kept in the tail, when DuckDB's file is busy or a background fold failed."""
        with self._table.mu:
            if self._closed and background:
                return True
            with self._mu:
                rows = list(self._unfolded)
                commits = list(self._commits)
            if not rows:
                return True
            if not self._table.fold(rows, wait_s, background=background, commits=commits):
                return False
            with self._mu:
                del self._unfolded[: len(rows)]
                del self._commits[: len(commits)]
                if self._tail is not None:
                    self._tail.trim(len(commits))
            if self._lock is not None:
                self._lock.check_info()
            return True

    def _fold_memory(self) -> None:
        with self._mu:
            rows, self._pending = self._pending, []
        if rows and self._con is not None:
            insert_rows(self._con, rows, self.path)

    def flush(self) -> None:
        if self.read_only or self._closed:
            return
        if self._memory:
            self._fold_memory()
            return
        self._check_writable()
        self._write_pending()
        if not self._fold(0.0):
            raise StoreLocked(
                f"{self.path}: another process holds DuckDB's lock on the file; events are safe "
                f"in {self.tail_path}"
            )

    def close(self) -> None:
        """Commit and fold what was appended, then release the file. Raises
        :class:`HPOStoreError` (after releasing everything) only when events appended since the
        last commit could not be written; the log on disk stays a gapless prefix then."""
        if self._closed:
            return
        if self._pid != current_pid():  # a forked child's copy: the parent owns the files
            self._closed = True
            return
        lost: HPOStoreError | None = None
        try:
            self._stop_folder()
            if not self.read_only and not self._memory:
                try:
                    self._write_pending()
                except HPOStoreError as exc:
                    lost = exc
                deadline = time.monotonic() + DUCKDB_LOCK_WAIT_S
                try:
                    while not self._fold(0.0) and time.monotonic() < deadline:
                        time.sleep(0.1)  # a reader holds the file; else the next open folds
                except HPOStoreError as exc:
                    log.warning("%s", exc)  # the committed events are safe in the tail
        finally:
            self._closed = True
            self._release()
        if lost is not None:
            raise HPOStoreError(
                f"{self.path} was closed, but {len(self._pending)} events appended after the "
                f"last successful commit were not written ({lost}); the log holds everything "
                "before them, so the study resumes from there"
            ) from lost

    def _stop_folder(self) -> None:
        if self._folder is not None:
            self._folder.stop()
            self._folder = None

    def _release(self) -> None:
        self._stop_folder()
        if self._con is not None:
            with contextlib.suppress(duckdb.Error):
                self._con.close()
            self._con = None
        self._table.close()
        with self._mu:
            if self._tail is not None:
                self._tail.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
            unregister_writer(self.path, self)

    # --- read path --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _view(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection whose ``events`` view holds every event this store sees."""
        if self._taken_over or self._closed:
            self._check_writable()
        if self._memory:
            self._fold_memory()
            assert self._con is not None
            yield self._con
            return
        writer = self if not self.read_only else live_writer(self.path)
        if writer is None:  # the file, plus the tail's events not yet in it
            with events_view(self.path, self.tail_path, None) as con:
                yield con
            return
        with writer._table.mu:  # no fold opens the file meanwhile
            writer._table.disconnect()
            with writer._mu:
                extra = writer._unfolded + writer._pending
            with events_view(self.path, self.tail_path, extra) as con:
                yield con

    def last_seq(self, study: str) -> int:
        check_study_name(study)
        with self._view() as con:
            return int(
                execute(con, "SELECT coalesce(max(seq), 0) FROM events WHERE study = ?", [study])[
                    0
                ][0]
            )

    def studies(self) -> list[str]:
        with self._view() as con:
            query = "SELECT study FROM events GROUP BY study ORDER BY min(ts), study"
            return [r[0] for r in execute(con, query)]

    def events(self, study: str, *, columns: list[str] | None = None) -> pa.Table:
        cols = list(COLUMNS) if columns is None else columns
        unknown = set(cols) - set(COLUMNS)
        if unknown:
            raise HPOStoreError(
                f"unknown event columns {sorted(unknown)}; the columns are {list(COLUMNS)}"
            )
        check_study_name(study)
        with self._view() as con:
            sel = ", ".join(cols)
            table = arrow(con, f"SELECT {sel} FROM events WHERE study = ? ORDER BY seq", [study])
        return table.cast(pa.schema([SCHEMA.field(c) for c in cols]))

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pa.Table:
        """Run one SELECT over ``events`` on a separate read-only connection whose access to
        files is off: user SQL never writes the log (a ``DELETE … RETURNING`` inside a CTE
        included) and reads nothing outside it."""
        if self._memory:
            with self._view() as con:
                return sql_on_table(snapshot_table(con), query, params)
        with self._view() as con:
            return run_user_sql(con, query, params)

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else self.durability
        return f"DuckDBStore({self.path!r}, {mode})"
