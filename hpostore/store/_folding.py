"""Folding a DuckDB store's tail into its table: the short-lived writer connection and the thread.

The writer attaches the DuckDB file only to insert a batch and detaches it right after, so
DuckDB's own file lock is free between folds and other processes can read the file. It attaches
to one in-memory DuckDB instance kept for the store's life: an ATTACH/DETACH costs ~5x less than
opening and closing a DuckDB instance on the file.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import threading
import time
import weakref
from typing import Protocol

import duckdb

from ..errors import HPOStoreError, StoreLocked
from ..log.events import Row, rows_to_table
from ._duckdb_io import create_events_table, execute, new_rows, open_error, retry_locked
from .base import FOLD_INTERVAL_S

log = logging.getLogger("hpostore")

#: The longest time between folds (when folds are slow): readers see events within about 1 s.
MAX_FOLD_INTERVAL_S = 0.9
#: Folds are at least this many fold durations apart, so a fold (DuckDB opened, rows inserted,
#: file checkpointed and closed: 10-50 ms) takes at most ~5% of the time of a fast study.
FOLD_SPACING = 20


def insert_rows(con: duckdb.DuckDBPyConnection, rows: list[Row], where: str) -> None:
    """One Arrow batch into ``events``; a DuckDB failure becomes :class:`HPOStoreError`."""
    con.register("_hpostore_batch", rows_to_table(rows))
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
        self.mu = threading.RLock()  # one connection to the file in this store at a time
        self.last = time.monotonic()
        self.cost = 0.0
        self._failing = False
        _TABLES.add(self)

    def connect(self, wait_s: float) -> duckdb.DuckDBPyConnection:
        """A connection where ``events`` is the file's table (attached read-write as ``log``)."""
        with self.mu:
            if self._instance is None:
                self._instance = duckdb.connect(":memory:")
                execute(self._instance, "SET TimeZone = 'UTC'")
            con = self._instance
            if not self._attached:
                quoted = self.path.replace("'", "''")
                try:
                    retry_locked(lambda: execute(con, f"ATTACH '{quoted}' AS log"), wait_s)
                    execute(con, "USE log")
                except (duckdb.Error, OSError) as exc:
                    self.close()
                    raise open_error(self.path, exc) from exc
                self._attached = True
            return con

    def disconnect(self) -> None:
        """Detach the file (DuckDB checkpoints it; if that fails the WAL keeps the rows)."""
        with self.mu:
            if self._attached and self._instance is not None:
                self._attached = False
                try:
                    execute(self._instance, "USE memory")
                    execute(self._instance, "DETACH log")
                except duckdb.Error as exc:
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
                fresh = new_rows(con, "events", tail, self.tail_path)
                if fresh:
                    insert_rows(con, fresh, self.path)
            finally:
                self.disconnect()

    def fold(self, rows: list[Row], wait_s: float, *, background: bool) -> bool:
        """Insert ``rows``; False when DuckDB's file is busy, or when a background fold failed
        (logged once per run of failures); a foreground failure raises."""
        with self.mu:
            start = time.monotonic()
            try:
                insert_rows(self.connect(wait_s), rows, self.path)
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

    def _fold(self, wait_s: float, *, background: bool = False) -> bool: ...


def _loop(ref: weakref.ref[Foldable], wake: threading.Event, stop: threading.Event) -> None:
    """Holds the store only weakly, so an abandoned store can still be collected."""
    while True:
        wake.wait()
        store = ref()
        if store is None or stop.is_set():
            return
        delay = store._table.next_at() - time.monotonic()
        del store
        if delay > 0 and stop.wait(delay):
            return
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
