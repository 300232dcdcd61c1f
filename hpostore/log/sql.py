"""SQL that comes from a user: Arrow results, one SELECT only, no external access, no writes."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from ..errors import HPOStoreError, SQLNotAllowed


def arrow(con: duckdb.DuckDBPyConnection, query: str, params: Any = None) -> pa.Table:
    """The result of ``query`` as an Arrow table, across duckdb versions."""
    rel = con.sql(query, params=params) if params is not None else con.sql(query)
    if rel is None:
        return pa.table({})
    for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        method = getattr(rel, name, None)
        if method is not None:
            table = method()
            return table if isinstance(table, pa.Table) else table.read_all()
    raise HPOStoreError("this duckdb version cannot return Arrow tables; pip install -U duckdb")


def select_only(con: duckdb.DuckDBPyConnection, query: str, *, where: str = "store.sql()") -> None:
    """Refuse anything but exactly one SELECT statement (with :class:`SQLNotAllowed`)."""
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise HPOStoreError(f"cannot parse SQL: {exc}") from exc
    if len(statements) != 1:
        raise SQLNotAllowed(f"{where} runs exactly one statement, got {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise SQLNotAllowed(
            f"{where} is read-only: only SELECT statements run, got {statements[0].type.name}"
        )


def lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """No file, network, extension or Python-variable access from now on, and no setting can
    turn it back."""
    con.execute("SET python_enable_replacements = false")  # no Python variables as tables
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def run_user_sql(
    con: duckdb.DuckDBPyConnection, query: str, params: Any = None, *, where: str = "store.sql()"
) -> pa.Table:
    """One SELECT on a locked-down connection; DuckDB's refusals become :class:`SQLNotAllowed`."""
    select_only(con, query, where=where)
    try:
        return arrow(con, query, params)
    except duckdb.PermissionException as exc:
        raise SQLNotAllowed(
            f"{where}: the query reaches outside the event log (files, settings or "
            f"extensions), which user SQL may not: {exc}"
        ) from exc
    except duckdb.Error as exc:
        text = str(exc)
        if any(s in text for s in ("read-only", "Can only delete from", "Can only update")):
            raise SQLNotAllowed(f"{where} is read-only: {text}") from exc
        raise HPOStoreError(f"SQL failed: {text}") from exc
