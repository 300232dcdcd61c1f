"""Folding a DuckDB store's tail into its table: the short-lived writer connection and the thread.

The writer opens the DuckDB file only to insert a batch and closes it right after, so DuckDB's
own file lock is free between folds and other processes can read the file.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from typing import Protocol

import duckdb

from ..errors import HPOStoreError, StoreLocked
from ..log.events import Row, rows_to_table
from ._duckdb_io import connect_writer, create_events_table, new_rows
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
        self.con: duckdb.DuckDBPyConnection | None = None
        self.mu = threading.RLock()  # one connection to the file in this store at a time
        self.last = time.monotonic()
        self.cost = 0.0
        self._failing = False

    def connect(self, wait_s: float) -> duckdb.DuckDBPyConnection:
        with self.mu:
            if self.con is None:
                self.con = connect_writer(self.path, wait_s)
            return self.con

    def disconnect(self) -> None:
        with self.mu:
            if self.con is not None:
                con, self.con = self.con, None
                try:
                    con.close()  # checkpoints; if that fails the WAL keeps the rows
                except duckdb.Error as exc:
                    log.warning("%s: closing DuckDB failed (%s)", self.path, exc)

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
        store = ref()
        if store is None:
            return
        wake.clear()
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
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None
