"""Event-log backends behind one interface (:class:`EventLog`)."""

from .base import DURABILITY, EventLog, open_store
from .duckdb import DuckDBStore

__all__ = ["DURABILITY", "DuckDBStore", "EventLog", "open_store"]
