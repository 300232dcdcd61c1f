"""The DuckDB backend: an ``events`` table in a DuckDB file, fed by a write-ahead tail.

A committing INSERT into a DuckDB file costs milliseconds, an append + fdatasync a fraction of
one. So in durable mode each commit point appends the new events as JSON lines to
``<path>.tail`` and fdatasyncs it; the tail is folded into the ``events`` table in one Arrow
batch at least every 0.25 s, at close, and on the next open (which is also crash recovery:
rows already in the table are skipped by (study, seq), a torn last line is cut off).

One process writes a store at a time; ``<path>.lock`` (an flock, released by the kernel when
the process dies) says which. When trials are long, the writer closes its DuckDB connection
between folds so that other processes (the ``duckdb`` CLI, ``hpostore trials``) can read.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from ..errors import (
    CorruptLogError,
    FormatVersionError,
    HPOStoreError,
    ReadOnlyStoreError,
    StoreLocked,
)
from ..log.events import COLUMNS, DUCKDB_DDL, SCHEMA, Row, decode_line, encode_line, rows_to_table
from .base import FOLD_INTERVAL_S, EventLog

#: Close the DuckDB connection after a fold when folds are further apart than this (long trials),
#: so that other processes can open the file; reopening costs ~25 ms.
PARK_AFTER_S = 2.5
#: How long to wait for DuckDB's own file lock (held by a reader) before giving up.
DUCKDB_LOCK_WAIT_S = 5.0

T = TypeVar("T")


def arrow(con: duckdb.DuckDBPyConnection, query: str, params: Any = None) -> pa.Table:
    """The result of ``query`` as an Arrow table, across duckdb versions."""
    rel = con.sql(query, params=params) if params is not None else con.sql(query)
    for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        method = getattr(rel, name, None)
        if method is not None:
            return method()
    raise HPOStoreError("this duckdb version cannot return Arrow tables; pip install -U duckdb")


def execute(con: duckdb.DuckDBPyConnection, query: str, params: Any = None) -> list[Any]:
    """Run ``query`` to completion and return its rows (duckdb 2 wants every result consumed)."""
    return (
        con.execute(query, params).fetchall()
        if params is not None
        else con.execute(query).fetchall()
    )


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def _retry_locked(fn: Callable[[], T], wait_s: float) -> T:
    deadline = time.monotonic() + wait_s
    delay = 0.01
    while True:
        try:
            return fn()
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def read_tail(path: str) -> tuple[list[Row], int]:
    """Rows of a tail file and the byte offset just past the last complete, valid line.

    A torn last line (no newline, or not valid JSON) is where a crash interrupted a write that
    was never acknowledged: it is left out. A bad line followed by good ones is corruption.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return [], 0
    rows: list[Row] = []
    offset = 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        if end < 0:
            break  # torn final write
        try:
            rows.append(decode_line(data[offset:end]))
        except ValueError as exc:
            if data.find(b"\n", end + 1) < 0 and not data[end + 1 :].strip():
                break  # the last line is torn; nothing after it
            raise CorruptLogError(
                f"{path}: the event at byte {offset} is not valid ({exc}); the events before it "
                f"are intact. Move the file aside to open the store (events after byte {offset} "
                "will not be recovered)."
            ) from exc
        offset = end + 1
    return rows, offset


def _select_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise HPOStoreError(f"cannot parse SQL: {exc}") from exc
    if len(statements) != 1:
        raise HPOStoreError(f"store.sql() runs exactly one statement, got {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise ReadOnlyStoreError(
            f"store.sql() is read-only: only SELECT statements run, got {statements[0].type.name}"
        )


class DuckDBStore(EventLog):
    """Event log in a DuckDB file (or ``:memory:``). Use :func:`hpostore.open_store` to open one."""

    def __init__(self, path: str, *, durability: str = "durable", read_only: bool = False) -> None:
        super().__init__()
        self.path = path
        self.durability = durability
        self.read_only = read_only
        self._memory = path == ":memory:"
        self._pending: list[Row] = []  # appended, not yet committed
        self._unfolded: list[Row] = []  # durable in the tail, not yet in the table
        self._con: duckdb.DuckDBPyConnection | None = None
        self._tail_fd: int | None = None
        self._lock_fd: int | None = None
        self._closed = False
        # pyarrow imports pandas (if installed) on its first pa.array() call, ~1 s: pay it at
        # open, not inside the first trial's study time.
        rows_to_table([])
        now = time.monotonic()
        self._last_commit = self._last_fold = now
        if self._memory:
            self._con = duckdb.connect(":memory:")
            execute(self._con, "SET TimeZone = 'UTC'")
            execute(self._con, DUCKDB_DDL)
        elif read_only:
            self._open_reader()
        else:
            self._open_writer()

    # --- opening ----------------------------------------------------------------------------
    @property
    def tail_path(self) -> str:
        return self.path + ".tail"

    @property
    def lock_path(self) -> str:
        return self.path + ".lock"

    def _open_writer(self) -> None:
        self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._lock_holder()
            os.close(self._lock_fd)
            self._lock_fd = None
            raise StoreLocked(
                f"{self.path} is locked for writing by {holder}. One process writes a store at a "
                "time: wait for it to finish, open it with read_only=True to look, or use another file."
            ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "argv": " ".join(sys.argv)[:200],
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, json.dumps(info).encode(), 0)
        try:
            self._connect()
            self._recover()
            self._tail_fd = os.open(self.tail_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except BaseException:
            self._release()
            raise

    def _lock_holder(self) -> str:
        try:
            with open(self.lock_path) as f:
                info = json.load(f)
            return f"pid {info['pid']} on {info['host']} ({info['argv']}) since {info['since']}"
        except (OSError, ValueError, KeyError):
            return "another process"

    def _connect(self, wait_s: float = DUCKDB_LOCK_WAIT_S) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            try:
                con = _retry_locked(lambda: duckdb.connect(self.path), wait_s)
            except duckdb.IOException as exc:
                if _is_lock_error(exc):
                    raise StoreLocked(f"{self.path}: DuckDB cannot lock the file: {exc}") from exc
                raise HPOStoreError(f"cannot open {self.path} as a DuckDB file: {exc}") from exc
            except duckdb.Error as exc:
                raise HPOStoreError(f"cannot open {self.path} as a DuckDB file: {exc}") from exc
            execute(con, "SET TimeZone = 'UTC'")
            execute(con, DUCKDB_DDL)
            self._check_table(con, "events")
            self._con = con
        return self._con

    def _check_table(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        cols = tuple(r[0] for r in execute(con, f"DESCRIBE {table}"))
        if cols != COLUMNS:
            raise FormatVersionError(
                f"{self.path}: its events table has columns {list(cols)}, not the hpostore event "
                f"log columns {list(COLUMNS)}; it was not written by this hpostore format version"
            )

    def _open_reader(self) -> None:
        con = duckdb.connect(":memory:")
        execute(con, "SET TimeZone = 'UTC'")
        quoted = self.path.replace("'", "''")
        try:
            _retry_locked(
                lambda: execute(con, f"ATTACH '{quoted}' AS log (READ_ONLY)"), DUCKDB_LOCK_WAIT_S
            )
        except duckdb.IOException as exc:
            con.close()
            if _is_lock_error(exc):
                raise StoreLocked(
                    f"{self.path} is being written and its DuckDB file is busy ({exc}); the writer "
                    "releases it between long trials: try again in a moment"
                ) from exc
            raise HPOStoreError(f"cannot open {self.path} as a DuckDB file: {exc}") from exc
        except duckdb.Error as exc:
            con.close()
            raise HPOStoreError(f"cannot open {self.path} as a DuckDB file: {exc}") from exc
        tables = {
            r[0]
            for r in execute(
                con, "SELECT table_name FROM duckdb_tables() WHERE database_name = 'log'"
            )
        }
        if "events" not in tables:
            con.close()
            raise FormatVersionError(
                f"{self.path} holds no hpostore events table; is it an hpostore store?"
            )
        self._check_table(con, "log.events")
        rows, _ = read_tail(self.tail_path)
        tail = rows_to_table(self._new_rows(con, "log.events", rows))
        con.register("_hpostore_tail", tail)
        execute(
            con,
            "CREATE TEMP VIEW events AS SELECT * FROM log.events UNION ALL SELECT * FROM _hpostore_tail",
        )
        self._con = con

    def _new_rows(self, con: duckdb.DuckDBPyConnection, table: str, rows: list[Row]) -> list[Row]:
        """The tail rows not yet in ``table``; checks that each study's seq continues gaplessly."""
        if not rows:
            return []
        expected = dict(execute(con, f"SELECT study, max(seq) + 1 FROM {table} GROUP BY study"))
        fresh: list[Row] = []
        for row in rows:
            study, seq = row[0], row[1]
            nxt = expected.get(study, 1)
            if seq < nxt:
                continue  # already folded before a crash cut the tail's truncation short
            if seq > nxt:
                raise CorruptLogError(
                    f"{self.tail_path}: study {study!r} jumps from seq {nxt - 1} to {seq}; "
                    "events are missing between the table and the tail"
                )
            expected[study] = seq + 1
            fresh.append(row)
        return fresh

    def _recover(self) -> None:
        rows, _ = read_tail(self.tail_path)
        con = self._connect()
        fresh = self._new_rows(con, "events", rows)
        if fresh:
            self._insert(fresh)
        if os.path.exists(self.tail_path):
            with open(self.tail_path, "r+b") as f:
                f.truncate(0)  # everything in it is now in the table (or was a torn write)
                os.fsync(f.fileno())

    # --- write path -------------------------------------------------------------------------
    def _buffer(self, row: Row) -> None:
        if self._closed:
            raise HPOStoreError(f"{self.path}: the store is closed")
        self._pending.append(row)

    def _insert(self, rows: list[Row], wait_s: float = DUCKDB_LOCK_WAIT_S) -> None:
        con = self._connect(wait_s)
        con.register("_hpostore_batch", rows_to_table(rows))
        try:
            execute(con, "INSERT INTO events SELECT * FROM _hpostore_batch")
        finally:
            con.unregister("_hpostore_batch")

    def _write_tail(self, rows: list[Row]) -> None:
        assert self._tail_fd is not None
        data = b"".join(encode_line(r) for r in rows)
        while data:
            n = os.write(self._tail_fd, data)
            data = data[n:]
        os.fdatasync(self._tail_fd)
        self._unfolded.extend(rows)

    def commit(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._memory or self.read_only:
            if force or now - self._last_fold >= FOLD_INTERVAL_S:
                self._fold(now)
            return
        if self.durability == "durable":
            if self._pending:
                rows, self._pending = self._pending, []
                self._write_tail(rows)
            if force or now - self._last_fold >= FOLD_INTERVAL_S:
                self._fold(now)
        elif force or now - self._last_commit >= FOLD_INTERVAL_S:
            self._last_commit = now
            self._fold(now)

    def _fold(self, now: float) -> bool:
        """Insert committed rows into the table; False (rows kept) when DuckDB's file is busy."""
        rows = self._unfolded + self._pending
        if rows:
            try:
                self._insert(rows, wait_s=0.0)  # a reader holds the file: retry at the next fold
            except StoreLocked:
                if self._pending:  # batched rows must not live only in memory
                    rows, self._pending = self._pending, []
                    self._write_tail(rows)
                return False
            self._unfolded, self._pending = [], []
            if self._tail_fd is not None:
                os.ftruncate(self._tail_fd, 0)
        if not self._memory and self._con is not None and now - self._last_fold > PARK_AFTER_S:
            self._con.close()  # long trials: let other processes read the file meanwhile
            self._con = None
        self._last_fold = now
        return True

    def flush(self) -> None:
        if self.read_only or self._closed:
            return
        if self._pending and not self._memory and self.durability == "durable":
            rows, self._pending = self._pending, []
            self._write_tail(rows)
        if not self._fold(time.monotonic()):
            raise StoreLocked(
                f"{self.path}: another process holds DuckDB's lock on the file; events are safe in {self.tail_path}"
            )

    def close(self) -> None:
        if self._closed:
            return
        try:
            if not self.read_only and not self._memory:
                deadline = time.monotonic() + DUCKDB_LOCK_WAIT_S
                while True:
                    try:
                        self.flush()
                        break
                    except StoreLocked:
                        if time.monotonic() > deadline:
                            break  # the events are durable in the tail; the next open folds them
                        time.sleep(0.1)
        finally:
            self._closed = True
            self._release()

    def _release(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._tail_fd is not None:
            os.close(self._tail_fd)
            self._tail_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # --- read path --------------------------------------------------------------------------
    def _reading(self) -> duckdb.DuckDBPyConnection:
        if self._closed:
            raise HPOStoreError(f"{self.path}: the store is closed")
        if not self.read_only:
            self.flush()
        return self._connect() if not self.read_only else self._con  # type: ignore[return-value]

    def last_seq(self, study: str) -> int:
        con = self._reading()
        return int(
            execute(con, "SELECT coalesce(max(seq), 0) FROM events WHERE study = ?", [study])[0][0]
        )

    def studies(self) -> list[str]:
        con = self._reading()
        return [
            r[0]
            for r in execute(con, "SELECT study FROM events GROUP BY study ORDER BY min(ts), study")
        ]

    def events(self, study: str, *, columns: list[str] | None = None) -> pa.Table:
        cols = list(COLUMNS) if columns is None else columns
        unknown = set(cols) - set(COLUMNS)
        if unknown:
            raise HPOStoreError(
                f"unknown event columns {sorted(unknown)}; the columns are {list(COLUMNS)}"
            )
        con = self._reading()
        sel = ", ".join(cols)
        table = arrow(con, f"SELECT {sel} FROM events WHERE study = ? ORDER BY seq", [study])
        return table.cast(pa.schema([SCHEMA.field(c) for c in cols]))

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pa.Table:
        con = self._reading()
        _select_only(con, query)
        try:
            return arrow(con, query, params)
        except duckdb.Error as exc:
            raise HPOStoreError(f"SQL failed: {exc}") from exc

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else self.durability
        return f"DuckDBStore({self.path!r}, {mode})"
