"""The SQL views over an event log, on a DuckDB connection.

The views are plain ``.sql`` files in ``analysis/sql/`` that read a relation named
``events`` (the event-log columns, DESIGN.md "The event log"). This module only finds the
events (a DuckDB file and its write-ahead tail, a Parquet directory, an open store) and runs
the files; it knows the log format, not hpostore's internals.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, Union, runtime_checkable

import duckdb
import pyarrow as pa

#: The views, in the order their files run; each is a stable, documented contract.
VIEW_NAMES: tuple[str, ...] = ("studies", "trials", "anytime", "learning_curves", "decisions")

#: Columns of the event log, in order (DESIGN.md); the read path checks them, nothing more.
EVENT_COLUMNS: tuple[str, ...] = (
    "study", "seq", "ts", "elapsed", "session", "kind", "trial", "config",
    "resource", "error", "runtime", "worker", "payload",
)  # fmt: skip

#: A Parquet segment's name: ``<first seq>-<last seq>.<writer id>.parquet``.
SEGMENT_NAME = re.compile(r"^(\d{12})-(\d{12})\.([A-Za-z0-9_.-]+)\.parquet$")

_EVENTS_ARROW = pa.schema(
    [
        ("study", pa.string()),
        ("seq", pa.int64()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("elapsed", pa.float64()),
        ("session", pa.string()),
        ("kind", pa.string()),
        ("trial", pa.int64()),
        ("config", pa.string()),
        ("resource", pa.float64()),
        ("error", pa.float64()),
        ("runtime", pa.float64()),
        ("worker", pa.string()),
        ("payload", pa.string()),
    ]
)


@runtime_checkable
class EventSource(Protocol):
    """Anything that answers a SELECT over its ``events`` table with Arrow (an hpostore store)."""

    def sql(self, query: str, params: Any = None) -> pa.Table: ...


Source = Union[duckdb.DuckDBPyConnection, str, "os.PathLike[str]", EventSource]


class AnalysisError(Exception):
    """The source is not an event log the views can read (the message says why)."""


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
    created on it as TEMP views and it is returned), a DuckDB file (opened read-only; events
    still in its write-ahead ``.tail`` are included), a Parquet log directory, or an open
    hpostore store (a snapshot of its events, including those not yet folded). On a
    connection that has the views already they are kept unless ``refresh`` (the ``trials``
    view's hyperparameter columns are fixed when it is created).

    >>> con = views("runs.duckdb")                                     # doctest: +SKIP
    >>> con.sql("SELECT * FROM anytime WHERE study = ?", params=["lenet"]).df()  # doctest: +SKIP
    """
    con = source if isinstance(source, duckdb.DuckDBPyConnection) else _connect(source)
    if not refresh and _has_views(con):
        return con
    try:
        for name in VIEW_NAMES:
            con.execute(sql_file(name))
    except duckdb.Error as exc:
        raise AnalysisError(f"cannot create the analysis views: {exc}") from exc
    return con


def _has_views(con: duckdb.DuckDBPyConnection) -> bool:
    names = {
        r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall()
    }
    return names.issuperset(VIEW_NAMES)


def query(source: Source, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
    """Run ``sql`` (with ``?`` parameters) over the views of ``source``; an Arrow table."""
    return _table(views(source), sql, params)


def _table(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> pa.Table:
    """The result of ``sql`` (with ``?`` parameters) as an Arrow table, across duckdb versions."""
    rel = con.sql(sql, params=list(params)) if params is not None else con.sql(sql)
    for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        method = getattr(rel, name, None)
        if method is not None:
            table = method()
            return table if isinstance(table, pa.Table) else table.read_all()
    raise AnalysisError("this duckdb version cannot return Arrow tables; pip install -U duckdb")


def _connect(source: Any) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source))
        if path.is_dir():
            _parquet_view(con, path)
            return con
        if path.is_file():
            _attach_duckdb(con, path)
            return con
        raise AnalysisError(f"no event log at {path}: neither a DuckDB file nor a directory")
    elif isinstance(source, EventSource):
        table = source.sql("SELECT * FROM events")
    else:
        raise AnalysisError(
            "expected a DuckDB connection, a DuckDB file, a Parquet log directory or an "
            f"hpostore store, got {type(source).__name__}"
        )
    _check_columns(table.column_names, str(source))
    con.register("_hpostore_events", table)
    con.execute("CREATE TEMP VIEW events AS SELECT * FROM _hpostore_events")
    return con


def _check_columns(columns: Sequence[str], where: str) -> None:
    if tuple(columns) != EVENT_COLUMNS:
        raise AnalysisError(
            f"{where}: its events have columns {list(columns)}, not the hpostore event-log "
            f"columns {list(EVENT_COLUMNS)}"
        )


def _attach_duckdb(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    literal = str(path).replace("'", "''")  # a path, quoted; study names are never spliced
    try:
        con.execute(f"ATTACH '{literal}' AS hpostore_log (READ_ONLY)")
    except duckdb.Error as exc:
        raise AnalysisError(f"cannot open {path} as a DuckDB file: {exc}") from exc
    try:
        columns = [r[0] for r in con.execute("DESCRIBE hpostore_log.events").fetchall()]
    except duckdb.Error as exc:
        raise AnalysisError(f"{path} holds no hpostore events table: {exc}") from exc
    _check_columns(columns, str(path))
    tail = read_tail(Path(f"{path}.tail"))
    if tail.num_rows == 0:
        con.execute("CREATE TEMP VIEW events AS SELECT * FROM hpostore_log.events")
        return
    # Events durable in the write-ahead tail but not yet folded into the table (a live or
    # crashed writer): the rows whose (study, seq) the table does not hold yet.
    con.register("_hpostore_tail", tail)
    con.execute(
        """
        CREATE TEMP VIEW events AS
        SELECT * FROM hpostore_log.events
        UNION ALL
        SELECT t.* FROM _hpostore_tail AS t
        WHERE t.seq > coalesce(
            (SELECT max(e.seq) FROM hpostore_log.events AS e WHERE e.study = t.study), 0)
        """
    )


def _parquet_view(con: duckdb.DuckDBPyConnection, directory: Path) -> None:
    files = parquet_segments(directory)
    if not files:
        con.register("_hpostore_events", _EVENTS_ARROW.empty_table())
        con.execute("CREATE TEMP VIEW events AS SELECT * FROM _hpostore_events")
        return
    try:
        rel = con.read_parquet([str(f) for f in files])
    except duckdb.Error as exc:
        raise AnalysisError(f"{directory}: cannot read its segments: {exc}") from exc
    _check_columns(rel.columns, str(directory))
    rel.create_view("events")


def read_tail(path: Path) -> pa.Table:
    """The complete lines of a DuckDB store's write-ahead tail (JSON arrays in column order).

    A torn last line (a write a crash interrupted, never acknowledged) is left out.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _EVENTS_ARROW.empty_table()
    rows = []
    for line in data.split(b"\n")[:-1]:  # what follows the last newline is torn
        try:
            value = json.loads(line)
        except ValueError:
            continue  # an interrupted write; the store itself reports real corruption
        if isinstance(value, list) and len(value) == len(EVENT_COLUMNS):
            rows.append(value)
    columns = list(zip(*rows)) if rows else [()] * len(EVENT_COLUMNS)
    arrays = [pa.array(list(c), type=f.type) for c, f in zip(columns, _EVENTS_ARROW)]
    return pa.Table.from_arrays(arrays, schema=_EVENTS_ARROW)


def parquet_segments(directory: Path) -> list[Path]:
    """The segment files readers use: per study folder, the widest segments covering each seq.

    A compaction writes one segment over the range of several before deleting them; in
    between, the narrow ones are skipped, so readers never see an event twice. Temporary
    files (``.*.tmp``) of writes in progress are not segments.
    """
    chosen: list[Path] = []
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        spans = []
        for f in folder.iterdir():
            m = SEGMENT_NAME.match(f.name)
            if m:
                spans.append((int(m.group(1)), -int(m.group(2)), f))
        covered = 0
        for _first, neg_last, f in sorted(spans):
            if -neg_last <= covered:
                continue  # inside a wider segment
            chosen.append(f)
            covered = -neg_last
    return chosen
