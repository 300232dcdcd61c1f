"""Event-log backends behind one interface (:class:`EventLog`)."""

from .base import DURABILITY, EventLog, open_store
from .duckdb import DuckDBStore, live_writer
from .parquet import ParquetStore

__all__ = ["DURABILITY", "DuckDBStore", "EventLog", "ParquetStore", "live_writer", "open_store"]
