"""DuckDB connections for the DuckDB store: writer, read-only snapshot, locked-down user SQL."""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from ..errors import FormatVersionError, HPOStoreError, StoreLocked
from ..log.events import COLUMNS, DUCKDB_DDL, Row, check_columns, rows_to_table
from ..log.sql import arrow, lock_down
from ..log.sql import run_user_sql as _run_user_sql
from ..log.tail import fresh_rows, read_tail

#: The DuckDB storage version new store files are written in: DuckDB 1.1 and later open it
#: (DuckDB 2.0 writes version 69 by default, which CLIs before 1.5 refuse).
STORAGE_VERSION = "v1.1.0"
#: How long to wait for DuckDB's own file lock (held briefly by another process) before giving up.
DUCKDB_LOCK_WAIT_S = 5.0

T = TypeVar("T")


def execute(con: duckdb.DuckDBPyConnection, query: str, params: Any = None) -> list[Any]:
    """Run ``query`` to completion and return its rows (duckdb 2 wants every result consumed)."""
    return (
        con.execute(query, params).fetchall()
        if params is not None
        else con.execute(query).fetchall()
    )


def is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def retry_locked(fn: Callable[[], T], wait_s: float) -> T:
    """``fn()``, retried while DuckDB reports its file lock held by another process."""
    deadline = time.monotonic() + wait_s
    delay = 0.01
    while True:
        try:
            return fn()
        except duckdb.IOException as exc:
            if not is_lock_error(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def open_error(path: str, exc: BaseException) -> HPOStoreError:
    """One clear error for a DuckDB file that cannot be opened, naming it and what to do."""
    text = str(exc)
    if is_lock_error(exc):
        return StoreLocked(
            f"{path}: another process holds DuckDB's lock on the file ({text}); it is released "
            "between folds: try again in a moment"
        )
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left" in text:
        return HPOStoreError(
            f"{path}: the disk is full ({text}). Free some space and open the store again; "
            "events already committed are kept."
        )
    if "Could not read enough bytes" in text or "not a valid DuckDB database" in text:
        return HPOStoreError(
            f"{path} is not a complete DuckDB file (truncated or damaged: {text}). Restore it "
            "from a backup or move it aside to start a new store; do not delete its .tail file, "
            "which holds the most recent events."
        )
    if "Permission denied" in text or "Read-only file system" in text:
        return HPOStoreError(
            f"{path}: the file or its directory is not writable ({text}); choose a writable "
            "path, or open it with read_only=True to read it"
        )
    return HPOStoreError(f"cannot open {path} as a DuckDB file: {text}")


def check_directory(path: str) -> None:
    """Refuse a store path whose directory is missing, saying what to do."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise HPOStoreError(
            f"cannot create {path}: the directory {folder} does not exist; create it first "
            f"(mkdir -p {folder}) or choose another path"
        )


def connect_writer(path: str, wait_s: float) -> duckdb.DuckDBPyConnection:
    """A read-write connection; a new file is written in :data:`STORAGE_VERSION`."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "storage_compatibility_version": STORAGE_VERSION
    }
    try:
        con = retry_locked(lambda: duckdb.connect(path, config=config), wait_s)
        execute(con, "SET TimeZone = 'UTC'")
    except (duckdb.Error, OSError) as exc:
        raise open_error(path, exc) from exc
    return con


def create_events_table(path: str, con: duckdb.DuckDBPyConnection) -> None:
    try:
        execute(con, DUCKDB_DDL)
        cols = [r[0] for r in execute(con, "DESCRIBE events")]
    except (duckdb.Error, OSError) as exc:
        raise open_error(path, exc) from exc
    check_columns(cols, path)


def create_store_file(path: str) -> None:
    """A new DuckDB file with the events table; a failed creation (a full disk) leaves no
    broken file behind, so the next open after freeing space starts afresh."""
    try:
        con = connect_writer(path, DUCKDB_LOCK_WAIT_S)
        try:
            create_events_table(path, con)
        finally:
            try:
                con.close()
            except duckdb.Error as exc:
                raise open_error(path, exc) from exc
    except HPOStoreError:
        for leftover in (path, path + ".wal"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        raise


def attach_read_only(path: str, wait_s: float = DUCKDB_LOCK_WAIT_S) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory connection with ``path`` attached read-only as ``log``."""
    con = duckdb.connect(":memory:")
    quoted = path.replace("'", "''")
    try:
        execute(con, "SET TimeZone = 'UTC'")
        retry_locked(lambda: execute(con, f"ATTACH '{quoted}' AS log (READ_ONLY)"), wait_s)
        tables = execute(
            con,
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'log' "
            "AND table_name = 'events'",
        )
        if not tables:
            raise FormatVersionError(
                f"{path} holds no hpostore events table; is it an hpostore store?"
            )
        check_columns([r[0] for r in execute(con, "DESCRIBE log.events")], path)
    except (duckdb.Error, OSError) as exc:
        con.close()
        raise open_error(path, exc) from exc
    except BaseException:
        con.close()
        raise
    return con


def expose_events(con: duckdb.DuckDBPyConnection, table: str, extra: pa.Table) -> None:
    """Create the ``events`` view: ``table`` plus ``extra`` rows (the unfolded tail)."""
    con.register("_hpostore_tail", extra)
    execute(
        con,
        f"CREATE TEMP VIEW events AS SELECT * FROM {table} UNION ALL SELECT * FROM _hpostore_tail",
    )


def run_user_sql(
    con: duckdb.DuckDBPyConnection, query: str, params: list[Any] | dict[str, Any] | None
) -> pa.Table:
    """One SELECT from a user on a locked-down read-only connection (it may not write)."""
    lock_down(con)
    return _run_user_sql(con, query, params)


def new_rows(
    con: duckdb.DuckDBPyConnection, table: str, rows: list[Row], tail_path: str
) -> list[Row]:
    """The tail rows not yet in ``table``; checks that each study's seq continues gaplessly."""
    if not rows:
        return []
    expected = dict(execute(con, f"SELECT study, max(seq) + 1 FROM {table} GROUP BY study"))
    return fresh_rows(rows, expected, tail_path)


@contextlib.contextmanager
def events_view(
    path: str, tail_path: str, extra: list[Row] | None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to ``path`` whose ``events`` view adds ``extra`` (a writer's rows
    not yet in the table) or, when ``extra`` is None, the tail file's rows not yet in it."""
    con = attach_read_only(path)
    try:
        if extra is None:
            extra = new_rows(con, "log.events", read_tail(tail_path).rows, tail_path)
        expose_events(con, "log.events", rows_to_table(extra))
        yield con
    finally:
        con.close()


def sql_on_table(
    table: pa.Table, query: str, params: list[Any] | dict[str, Any] | None
) -> pa.Table:
    """User SQL over a copy of the events (an in-memory store), in a locked-down sandbox."""
    sandbox = duckdb.connect(":memory:")
    try:
        execute(sandbox, "SET TimeZone = 'UTC'")
        sandbox.register("_hpostore_snapshot", table)
        execute(sandbox, "CREATE TEMP VIEW events AS SELECT * FROM _hpostore_snapshot")
        return run_user_sql(sandbox, query, params)
    finally:
        sandbox.close()


def snapshot_table(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """Every row of ``events`` (an in-memory store's user SQL reads this copy)."""
    return arrow(con, f"SELECT {', '.join(COLUMNS)} FROM events")
