"""The SQL views over an event log, on a DuckDB connection whose user SQL cannot escape the log.

The views are plain ``.sql`` files in ``analysis/sql/`` that read a relation named
``events`` (the event-log columns, DESIGN.md "The event log"). This module only finds the
events (a DuckDB file and its write-ahead tail, a Parquet directory, an open store) through
:mod:`hpostore.log` — the one reader of the format, with its checksum, gap and cover rules —
and runs the files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, Union, runtime_checkable

import duckdb
import pyarrow as pa

from hpostore.errors import AnalysisError, FormatVersionError, HPOStoreError
from hpostore.log.events import check_columns, rows_to_table
from hpostore.log.segments import cover, list_segments, read_directory, study_folders
from hpostore.log.sql import arrow, lock_down, run_user_sql
from hpostore.log.tail import fresh_rows, read_tail

#: The views, in the order their files run; each is a stable, documented contract.
VIEW_NAMES: tuple[str, ...] = (
    "studies",
    "trials",
    "anytime",
    "learning_curves",
    "decisions",
    "metrics",
    "attributes",
)  # metrics.sql defines the views objectives, metrics and pareto


@runtime_checkable
class EventSource(Protocol):
    """Anything that answers a SELECT over its ``events`` table with Arrow (an hpostore store)."""

    def sql(self, query: str, params: Any = None) -> pa.Table: ...


Source = Union[duckdb.DuckDBPyConnection, str, "os.PathLike[str]", EventSource]


def sql_file(name: str) -> str:
    """The text of ``analysis/sql/<name>.sql``."""
    return (
        resources.files("analysis")
        .joinpath("sql")
        .joinpath(f"{name}.sql")
        .read_text(encoding="utf-8")
    )


def sql_dir() -> Path:
    """The folder holding the ``.sql`` files (to run them with the plain ``duckdb`` CLI)."""
    return Path(str(resources.files("analysis").joinpath("sql")))


def views(source: Source, *, refresh: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection on which ``events`` and the views ``studies``, ``trials``,
    ``anytime``, ``learning_curves`` and ``decisions`` exist.

    ``source`` is a DuckDB connection that already has an ``events`` relation (the views are
    created on it as TEMP views and it is returned as it is), a DuckDB file (opened read-only;
    events still in its write-ahead ``.tail`` are included; a file this process is writing is
    read through its writer), a Parquet log directory, or an open hpostore store (a snapshot
    of its events, including those not yet folded). On a connection that has the views
    already they are kept unless ``refresh`` (the ``trials`` view's hyperparameter columns are
    fixed when it is created). A connection made here has external access off and its
    configuration locked: SQL run on it reads the log and nothing else.

    >>> con = views("runs.duckdb")                                     # doctest: +SKIP
    >>> con.sql("SELECT * FROM anytime WHERE study = ?", params=["lenet"]).df()  # doctest: +SKIP
    """
    if isinstance(source, duckdb.DuckDBPyConnection):
        con = source
        if not refresh and _has_views(con):
            return con
        _create_views(con)
        return con
    con = _connect(source)
    try:
        _create_views(con)
        lock_down(con)
    except BaseException:
        con.close()
        raise
    return con


def _create_views(con: duckdb.DuckDBPyConnection) -> None:
    try:
        for name in VIEW_NAMES:
            con.execute(sql_file(name))
    except duckdb.Error as exc:
        raise AnalysisError(f"cannot create the analysis views: {exc}") from exc


def _has_views(con: duckdb.DuckDBPyConnection) -> bool:
    names = {
        r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall()
    }
    return names.issuperset(VIEW_NAMES)


def query(source: Source, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
    """Run one SELECT ``sql`` (with ``?`` parameters) over the views of ``source``.

    Anything else (writes, ATTACH, several statements) and any reach outside the log
    (``read_csv``, ``COPY``) is refused with :class:`hpostore.errors.SQLNotAllowed`.
    """
    con = views(source)
    return run_user_sql(
        con, sql, list(params) if params is not None else None, where="analysis.query()"
    )


def _table(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> pa.Table:
    """The result of our own ``sql`` (with ``?`` parameters) as an Arrow table."""
    return arrow(con, sql, list(params) if params is not None else None)


def _connect(source: Any) -> duckdb.DuckDBPyConnection:
    if isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source))
        if path.is_dir():
            return _snapshot(_read(lambda: read_directory(path)), str(path))
        if path.is_file():
            writer = _live_writer(path)
            if writer is not None:  # this process writes it: read through the writer
                return _snapshot(_read(lambda: writer.sql("SELECT * FROM events")), str(path))
            return _attach_duckdb(path)
        raise AnalysisError(f"no event log at {path}: neither a DuckDB file nor a directory")
    if isinstance(source, EventSource):
        return _snapshot(_read(lambda: source.sql("SELECT * FROM events")), str(source))
    raise AnalysisError(
        "expected a DuckDB connection, a DuckDB file, a Parquet log directory or an "
        f"hpostore store, got {type(source).__name__}"
    )


def _live_writer(path: Path) -> EventSource | None:
    """The store this process has open for writing on ``path`` (a second DuckDB instance on
    the same file would fail)."""
    from hpostore.store.duckdb import live_writer  # the store, only for a DuckDB file

    return live_writer(os.fspath(path))


def _read(fn: Any) -> pa.Table:
    try:
        table: pa.Table = fn()
    except FormatVersionError as exc:
        raise AnalysisError(str(exc)) from exc
    except HPOStoreError:
        raise  # CorruptLogError names the file; it is one of the errors users catch
    return table


def _new_connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    return con


def _snapshot(table: pa.Table, where: str) -> duckdb.DuckDBPyConnection:
    _check_columns(table.column_names, where)
    con = _new_connection()
    con.register("_hpostore_events", table)
    con.execute("CREATE TEMP VIEW events AS SELECT * FROM _hpostore_events")
    return con


def _check_columns(columns: Sequence[str], where: str) -> None:
    try:
        check_columns(columns, where)
    except FormatVersionError as exc:
        raise AnalysisError(str(exc)) from exc


def _attach_duckdb(path: Path) -> duckdb.DuckDBPyConnection:
    con = _new_connection()
    try:
        _attach_into(con, path)
    except BaseException:
        con.close()
        raise
    return con


def _attach_into(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    # the store's retry: a writer holds DuckDB's file lock while it folds (tens of ms)
    from hpostore.store._duckdb_io import DUCKDB_LOCK_WAIT_S, retry_locked

    literal = str(path).replace("'", "''")  # a path, quoted; study names are never spliced
    try:
        retry_locked(
            lambda: con.execute(f"ATTACH '{literal}' AS hpostore_log (READ_ONLY)"),
            DUCKDB_LOCK_WAIT_S,
        )
    except duckdb.Error as exc:
        raise AnalysisError(f"cannot open {path} as a DuckDB file: {exc}") from exc
    try:
        columns = [r[0] for r in con.execute("DESCRIBE hpostore_log.events").fetchall()]
    except duckdb.Error as exc:
        raise AnalysisError(f"{path} holds no hpostore events table: {exc}") from exc
    _check_columns(columns, str(path))
    tail = read_tail(f"{path}.tail")  # checksums, torn last line: the store's own rules
    next_seq = dict(
        con.execute("SELECT study, max(seq) + 1 FROM hpostore_log.events GROUP BY study").fetchall()
    )
    rows = fresh_rows(tail.rows, next_seq, f"{path}.tail")
    if not rows:
        con.execute("CREATE TEMP VIEW events AS SELECT * FROM hpostore_log.events")
        return
    # Events durable in the write-ahead tail but not yet folded into the table (a live or
    # crashed writer), checked to continue each study gaplessly.
    con.register("_hpostore_tail", rows_to_table(rows))
    con.execute(
        "CREATE TEMP VIEW events AS SELECT * FROM hpostore_log.events "
        "UNION ALL SELECT * FROM _hpostore_tail"
    )


def parquet_segments(directory: Path) -> list[Path]:
    """The segment files readers use, per study folder in seq order (the shared cover rules:
    a gap or two writers' segments for the same events is a ``CorruptLogError``).

    Their hashes are checked only when read through :func:`views`; to read them with another
    tool as-is, these are the files.
    """
    out: list[Path] = []
    for _, folder in study_folders(Path(directory)):
        out += [s.path for s in cover(list_segments(folder), where=str(folder)).chosen]
    return out


__all__ = [
    "VIEW_NAMES",
    "AnalysisError",
    "EventSource",
    "Source",
    "parquet_segments",
    "query",
    "sql_dir",
    "sql_file",
    "views",
]
