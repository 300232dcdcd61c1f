"""The dashboard's in-memory copy of an event log, grown by seq as the log grows."""

from __future__ import annotations

import duckdb
import pyarrow as pa

import analysis

from ..log.events import SCHEMA
from ..log.sql import lock_down
from ..store.base import EventLog


def _memory_connection(events: pa.Table) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding ``events`` as a table, with the analysis views on it and
    its configuration locked (only this package's fixed SQL runs there, and it reads)."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.register("_events", events)
    con.execute("CREATE TABLE events AS SELECT * FROM _events")
    con.unregister("_events")
    analysis.views(con)
    lock_down(con)
    return con


class Mirror:
    """The events copied into memory, with the analysis views on them."""

    def __init__(self) -> None:
        self.con = _memory_connection(SCHEMA.empty_table())
        self.last: dict[str, int] = {}

    def sync(self, reader: EventLog) -> bool:
        """Append the events ``reader`` has past ours; False when the log is not a growth
        of what we hold (replaced, or a gap): then start a new mirror."""
        per_study = reader.sql("SELECT study, max(seq) AS last FROM events GROUP BY study")
        lasts = dict(
            zip(per_study.column("study").to_pylist(), per_study.column("last").to_pylist())
        )
        if any(lasts.get(study, 0) < last for study, last in self.last.items()):
            return False  # a study lost events: another log is at that path now
        if not self.last:  # the first sync: everything in one query
            return self._append(reader.sql("SELECT * FROM events"))
        for study, last in lasts.items():
            held = self.last.get(study, 0)
            if last > held:
                query = "SELECT * FROM events WHERE study = ? AND seq > ?"
                if not self._append(reader.sql(query, [study, held])):
                    return False
        return True

    def _append(self, new: pa.Table) -> bool:
        """Insert ``new``; False unless it continues each study gaplessly from what we hold."""
        last = dict(self.last)
        self.con.register("_new", new)
        try:
            spans = self.con.execute(
                "SELECT study, min(seq), max(seq), count(*), count(DISTINCT seq) FROM _new "
                "GROUP BY study"
            ).fetchall()
            for study, first, final, n, distinct in spans:
                if first != last.get(study, 0) + 1 or not n == distinct == final - first + 1:
                    return False
                last[study] = final
            self.con.execute("INSERT INTO events SELECT * FROM _new")
        finally:
            self.con.unregister("_new")
        self.last = last
        return True

    def total(self) -> int:
        """How many events the mirror holds (a version of the whole log: it only grows)."""
        return sum(self.last.values())

    def close(self) -> None:
        self.con.close()
