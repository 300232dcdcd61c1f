"""Folding a DuckDB store's tail into its table: the short-lived writer connection and the thread.

The writer attaches the DuckDB file only to insert a batch and detaches it right after, so
DuckDB's own file lock is free between folds and other processes can read the file. It attaches
to one in-memory DuckDB instance kept for the store's life: an ATTACH/DETACH costs ~5x less than
opening and closing a DuckDB instance on the file.

That instance runs on one thread under a memory limit. Unlimited, DuckDB keeps blocks of the file
cached in it, more as the table grows (64 MB after a 1M-trial study, 4M events); the limit makes
it evict them, and spill to a private temporary directory what a checkpoint of a full row group
needs beyond it (~60 MB). A large fold raises the limit for its own insert, and an instance that
runs out of memory anyway is rebuilt without one.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import tempfile
import threading
import time
import weakref
from typing import Protocol

import duckdb
import pyarrow as pa

from ..errors import HPOStoreError, StoreLocked
from ..log.events import Row, rows_to_table
from ._duckdb_io import create_events_table, execute, new_rows, open_error, retry_locked
from .base import FOLD_INTERVAL_S

log = logging.getLogger("hpostore")

#: The longest time between folds (when folds are slow): readers see events within about 1 s.
MAX_FOLD_INTERVAL_S = 0.9
#: A fold starts, whatever the interval, once this many committed events wait for it.
FOLD_ROWS = 16384
#: Folds are at least this many fold durations apart, so a fold (DuckDB opened, rows inserted,
#: file checkpointed and closed: 10-50 ms) takes at most ~5% of the time of a fast study.
FOLD_SPACING = 20
#: The fold instance's memory limit (DuckDB's buffers, the rows being inserted): beyond it DuckDB
#: evicts, or spills to :func:`_spill_directory`. A fold of a few thousand rows needs ~10 MB, a
#: checkpoint that compresses a full row group ~60 MB; at 16 MB folds spilled more, ~30% slower.
FOLD_MEMORY_LIMIT = 32 * 2**20
#: A fold whose batch is larger than half :data:`FOLD_MEMORY_LIMIT` (recovery at open, a fold
#: after a long pause) runs under this many times the batch's (estimated) Arrow size.
FOLD_MEMORY_PER_BYTE = 2
#: Worker threads of the fold instance (DuckDB's default is one per core): a fold inserts a few
#: thousand rows, which more threads do not speed up, and each thread adds buffers.
FOLD_THREADS = 1

_SPILL_SERIAL = itertools.count()


def _spill_directory() -> str:
    """A directory of the fold instance's own in the system's temporary directory (DuckDB's
    default is ``.tmp`` in the working directory): DuckDB creates it at its first spill and
    removes it when the instance closes; instances never share one."""
    name = f"hpostore-duckdb-{os.getpid()}-{next(_SPILL_SERIAL)}"
    return os.path.join(tempfile.gettempdir(), name)


def _out_of_memory(exc: BaseException | None, spill: str) -> bool:
    """Whether ``exc`` is DuckDB running out of memory (or of its spill directory)."""
    if exc is None:
        return False
    if isinstance(exc, duckdb.OutOfMemoryException):
        return True
    text = str(exc)
    lower = text.lower()
    return spill in text or any(
        s in lower for s in ("out of memory", "could not allocate", "failed to pin")
    )


def _batch_bytes(rows: list[Row]) -> int:
    """About the size of ``rows`` as an Arrow batch, from up to 64 rows spread over them."""
    step = max(1, len(rows) // 64)
    sample = rows[::step]
    size = sum(8 * len(row) + sum(len(v) for v in row if isinstance(v, str)) for row in sample)
    return size * len(rows) // max(1, len(sample))


def commits_table(rows: list[Row], commits: list[tuple[int, pa.Table | None]]) -> pa.Table:
    """``rows`` as one Arrow table, from their commits (``(rows, table or None)`` each, in
    order): a commit's own table where its tail line carried one, the rows of each run of
    commits without one converted at once (a table's fixed cost is ~0.2 ms)."""
    parts: list[pa.Table] = []
    plain = at = 0  # the runs of rows without a table start at ``plain``
    for n, table in commits:
        if table is not None:
            if at > plain:
                parts.append(rows_to_table(rows[plain:at]))
            parts.append(table)
            plain = at + n
        at += n
    if at != len(rows):
        raise AssertionError(f"{at} rows in the commits, {len(rows)} rows to fold")
    if at > plain or not parts:
        parts.append(rows_to_table(rows[plain:]))
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


def insert_rows(
    con: duckdb.DuckDBPyConnection, rows: list[Row], where: str, table: pa.Table | None = None
) -> None:
    """One Arrow batch (``table``, else built from ``rows``) into ``events``; a DuckDB failure
    becomes :class:`HPOStoreError`."""
    con.register("_hpostore_batch", rows_to_table(rows) if table is None else table)
    try:
        con.execute("INSERT INTO events SELECT * FROM _hpostore_batch").fetchall()
    except duckdb.Error as exc:
        raise HPOStoreError(
            f"{where}: folding {len(rows)} events into the events table failed ({exc}); they "
            "are safe in the tail file, and the next open folds them"
        ) from exc
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister("_hpostore_batch")


class TableWriter:
    """Inserts batches into the ``events`` table of the DuckDB file ``path``."""

    def __init__(self, path: str, tail_path: str) -> None:
        self.path = path
        self.tail_path = tail_path
        self._instance: duckdb.DuckDBPyConnection | None = None  # in memory; ``log`` attached
        self._attached = False
        self._spill = ""  # the instance's spill directory
        self._limit = 0  # the instance's memory limit in bytes; 0: DuckDB's default
        self.limited = True  # False once an instance ran out of memory: later ones have no limit
        self.mu = threading.RLock()  # one connection to the file in this store at a time
        self.last = time.monotonic()
        self.cost = 0.0
        self._failing = False
        _TABLES.add(self)

    def connect(self, wait_s: float) -> duckdb.DuckDBPyConnection:
        """A connection where ``events`` is the file's table (attached read-write as ``log``)."""
        with self.mu:
            if self._instance is None:
                self._instance = self._new_instance()
            con = self._instance
            if not self._attached:
                quoted = self.path.replace("'", "''")
                try:
                    retry_locked(lambda: execute(con, f"ATTACH '{quoted}' AS log"), wait_s)
                    execute(con, "USE log")
                except (duckdb.Error, OSError) as exc:
                    self.close()
                    if self.limited and _out_of_memory(exc, self._spill):
                        self._lift_limit(exc)  # (replaying a large WAL)
                        return self.connect(wait_s)
                    raise open_error(self.path, exc) from exc
                self._attached = True
            return con

    def _new_instance(self) -> duckdb.DuckDBPyConnection:
        instance = duckdb.connect(":memory:")
        self._spill = _spill_directory()
        self._limit = 0
        spill = self._spill.replace("'", "''")
        execute(instance, "SET TimeZone = 'UTC'")
        execute(instance, f"SET threads = {FOLD_THREADS}")
        execute(instance, f"SET temp_directory = '{spill}'")
        if self.limited:
            self._set_limit(instance, FOLD_MEMORY_LIMIT)
        return instance

    def _set_limit(self, con: duckdb.DuckDBPyConnection, limit: int) -> None:
        if self.limited and limit != self._limit:
            try:
                execute(con, f"SET memory_limit = '{limit // 1024}KiB'")
            except duckdb.Error as exc:  # (lowering it while DuckDB cannot evict enough)
                log.debug("%s: setting DuckDB's memory limit failed (%s)", self.path, exc)
                return
            self._limit = limit

    def _lift_limit(self, exc: BaseException) -> None:
        """After DuckDB ran out of memory under the limit: no limit for this store from now on."""
        log.info(
            "%s: DuckDB ran out of memory under the fold's %d MiB limit (%s); folding without "
            "a limit from now on",
            self.path,
            self._limit >> 20,
            (str(exc).splitlines() or [type(exc).__name__])[0],
        )
        self.limited = False
        self.close()

    def _insert(
        self,
        rows: list[Row],
        wait_s: float,
        *,
        filter_folded: bool = False,
        commits: list[tuple[int, pa.Table | None]] | None = None,
    ) -> None:
        """Insert ``rows`` (those not in the table yet when ``filter_folded``; from their
        ``commits``' tables where given) under a limit that fits their batch; one DuckDB runs
        out of memory for is retried without a limit."""
        con = self.connect(wait_s)
        if filter_folded:
            rows = new_rows(con, "events", rows, self.tail_path)
            if not rows:
                return
        self._set_limit(con, max(FOLD_MEMORY_LIMIT, FOLD_MEMORY_PER_BYTE * _batch_bytes(rows)))
        try:
            table = None if commits is None else commits_table(rows, commits)
            insert_rows(con, rows, self.path, table)
        except HPOStoreError as exc:
            if not (self.limited and _out_of_memory(exc.__cause__, self._spill)):
                raise
            self._lift_limit(exc.__cause__ or exc)
        else:
            return
        con = self.connect(wait_s)
        try:  # a failed commit wrote nothing, but skip what the table holds all the same
            fresh = new_rows(con, "events", rows, self.tail_path)
        except duckdb.Error as exc:
            raise HPOStoreError(f"{self.path}: reading the events table failed ({exc})") from exc
        if fresh:
            insert_rows(con, fresh, self.path)

    def disconnect(self) -> None:
        """Detach the file (DuckDB checkpoints it; if that fails the WAL keeps the rows)."""
        with self.mu:
            if self._attached and self._instance is not None:
                self._attached = False
                try:
                    execute(self._instance, "USE memory")
                    execute(self._instance, "DETACH log")
                    if self._limit > FOLD_MEMORY_LIMIT:  # back from a large fold's limit
                        self._set_limit(self._instance, FOLD_MEMORY_LIMIT)
                except duckdb.Error as exc:
                    # the rows are committed (in the WAL, which the next ATTACH replays)
                    if self.limited and _out_of_memory(exc, self._spill):
                        self._lift_limit(exc)
                    else:
                        log.warning("%s: detaching DuckDB failed (%s)", self.path, exc)
                    self.close()

    def close(self) -> None:
        """Detach the file and drop the in-memory instance (a failed one is rebuilt next time)."""
        with self.mu:
            self._attached = False
            if self._instance is not None:
                instance, self._instance = self._instance, None
                with contextlib.suppress(duckdb.Error):
                    instance.close()

    def recover(self, tail: list[Row]) -> None:
        """Create the table if needed and insert the tail rows it does not hold yet."""
        with self.mu:
            try:
                con = self.connect(5.0)
                create_events_table(self.path, con)
                if tail:
                    self._insert(tail, 5.0, filter_folded=True)
            finally:
                self.disconnect()

    def fold(
        self,
        rows: list[Row],
        wait_s: float,
        *,
        background: bool,
        commits: list[tuple[int, pa.Table | None]] | None = None,
    ) -> bool:
        """Insert ``rows`` (see :meth:`_insert`); False when DuckDB's file is busy, or when a
        background fold failed (logged once per run of failures); a foreground failure raises."""
        with self.mu:
            start = time.monotonic()
            try:
                self._insert(rows, wait_s, commits=commits)
            except StoreLocked:
                return False
            except HPOStoreError as exc:
                self.close()  # DuckDB may have invalidated the instance: start afresh next time
                if not background:
                    raise
                log.log(logging.DEBUG if self._failing else logging.WARNING, "%s", exc)
                self._failing = True
                return False
            finally:
                self.disconnect()
                self.last = time.monotonic()
            self.cost = self.last - start
            self._failing = False
            return True

    def next_at(self) -> float:
        interval = min(MAX_FOLD_INTERVAL_S, max(FOLD_INTERVAL_S, FOLD_SPACING * self.cost))
        return self.last + interval


_TABLES: weakref.WeakSet[TableWriter] = weakref.WeakSet()


def _keep_instances_in_child() -> None:
    """DuckDB is not fork-safe: a forked child that frees an instance inherited from its parent
    crashes (SIGSEGV at exit). The child never uses it, so it keeps it alive instead."""
    for table in list(_TABLES):
        if table._instance is not None:
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(table._instance))
            table._instance = None
            table._attached = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_keep_instances_in_child)


class Foldable(Protocol):
    _table: TableWriter
    _unfolded: list[Row]

    def _fold(self, wait_s: float, *, background: bool = False) -> bool: ...


def _fold_delay(store: Foldable) -> float:
    """Seconds until the next fold: none once :data:`FOLD_ROWS` events wait (their rows, the
    batch's Arrow table and DuckDB's buffers are held until then)."""
    if len(store._unfolded) >= FOLD_ROWS:
        return 0.0
    return store._table.next_at() - time.monotonic()


def _loop(ref: weakref.ref[Foldable], wake: threading.Event, stop: threading.Event) -> None:
    """Holds the store only weakly, so an abandoned store can still be collected."""
    while True:
        wake.wait()
        store = ref()
        if store is None or stop.is_set():
            return
        # wait out the fold's interval, in steps, unless the backlog grows past FOLD_ROWS
        while (delay := _fold_delay(store)) > 0:
            del store
            if stop.wait(min(delay, FOLD_INTERVAL_S)):
                return
            store = ref()
            if store is None:
                return
        del store
        wake.clear()
        # stop() sets ``stop`` before ``wake``: a stop that came before the clear is seen here,
        # one after it leaves ``wake`` set, so the wait above never outlives a stop().
        store = ref()
        if store is None or stop.is_set():
            return
        if not store._fold(0.0, background=True):
            wake.set()  # busy or failed: the events wait in the tail; try again next interval
        del store


class FoldThread:
    """Folds ``store`` in the background at most every :meth:`TableWriter.next_at`."""

    def __init__(self, store: Foldable, name: str) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = threading.Thread(
            target=_loop, args=(weakref.ref(store), self._wake, self._stop), name=name, daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        if not self._wake.is_set():  # (a commit per trial: skip the Condition when it is set)
            self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None
