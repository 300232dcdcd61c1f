"""Where the dashboard reads a log from: a DuckDB file, a Parquet directory or an open store.

Every read goes through :func:`analysis.views` (read-only, fixed SQL only) on a connection
opened for that read and closed after it, so a reader never keeps a writer in another process
waiting. What was read is cached under a cheap *fingerprint* of the source (file sizes and
modification times, the names of the Parquet segments): polls of an unchanged log cost a few
``stat`` calls, not a query.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import duckdb

import analysis

from ..errors import HPOStoreError
from ..store.base import EventLog

log = logging.getLogger("hpostore")

T = TypeVar("T")

#: How many computed results (per study and kind) the cache keeps.
CACHE_ENTRIES = 64
#: How long a read retries while the log cannot be opened (a writer folding) before the
#: dashboard is told it is busy (and shows its previous reading).
BUSY_RETRY_S = 1.0


class StoreBusy(HPOStoreError):
    """The log could not be read just now (a writer holds the DuckDB file); try again."""


@dataclass(frozen=True, slots=True)
class Reading(Generic[T]):
    """A computed result and whether it is older than the log (the log was busy)."""

    value: T
    stale: bool


def _live_writer(path: str) -> EventLog | None:
    """The writer this process has open on ``path`` (hpostore.store.duckdb.live_writer), if any."""
    from ..store import duckdb as duckdb_store

    # live_writer is the store's contract for readers in the writer's own process; stores of
    # versions without it have no in-process writer to share, so reading the file is right.
    find = getattr(duckdb_store, "live_writer", None)
    if find is None:
        return None
    writer = find(path)
    return writer if isinstance(writer, EventLog) else None


class LogSource:
    """A read-only view of one event log for the dashboard, with a fingerprint-keyed cache.

    >>> source = LogSource("runs.duckdb")                        # doctest: +SKIP
    >>> source.read(("n",), lambda con: con.execute("SELECT count(*) FROM events").fetchall())
    ... # doctest: +SKIP
    """

    def __init__(self, source: str | os.PathLike[str] | EventLog) -> None:
        self._store: EventLog | None = None
        self._path: Path | None = None
        if isinstance(source, EventLog):
            self._store = source
            self.label = repr(source)
        elif isinstance(source, (str, os.PathLike)):
            path = Path(os.fspath(source))
            if not (path.is_file() or path.is_dir()):
                raise HPOStoreError(
                    f"no event log at {path}: give a DuckDB file or a Parquet log directory"
                )
            self._path = path
            self.label = str(path)
        else:
            raise HPOStoreError(
                "serve() takes a DuckDB file, a Parquet log directory or an open hpostore store, "
                f"got {type(source).__name__}"
            )
        self._lock = threading.Lock()
        self._cache: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()

    def fingerprint(self) -> Hashable:
        """Changes whenever the log may have changed (a new event, a fold, a new segment)."""
        if self._store is not None:
            rows = self._store.sql("SELECT count(*), max(seq), max(ts) FROM events")
            return tuple(rows.to_pylist()[0].values()) if rows.num_rows else ()
        assert self._path is not None
        if self._path.is_dir():
            names = []
            for folder in sorted(os.scandir(self._path), key=lambda e: e.name):
                if folder.is_dir():
                    names.append((folder.name, tuple(sorted(os.listdir(folder.path)))))
            return tuple(names)
        stats: list[tuple[int, int] | None] = []
        for suffix in ("", ".tail", ".wal"):
            try:
                st = os.stat(f"{self._path}{suffix}")
                stats.append((st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                stats.append(None)
        return tuple(stats)

    def read(self, key: Hashable, compute: Callable[[duckdb.DuckDBPyConnection], T]) -> Reading[T]:
        """``compute`` run on a connection with the analysis views, or its cached result when
        the log has not changed since. When the log is busy, the last result (stale) if any."""
        with self._lock:  # one read at a time: the writer is disturbed as little as possible
            fingerprint = self.fingerprint()
            cached = self._cache.get(key)
            if cached is not None and cached[0] == fingerprint:
                self._cache.move_to_end(key)
                return Reading(cached[1], stale=False)
            try:
                value = self._compute(compute)
            except StoreBusy:
                if cached is None:
                    raise
                log.debug("%s is busy; serving the previous reading", self.label)
                return Reading(cached[1], stale=True)
            self._cache[key] = (fingerprint, value)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
            return Reading(value, stale=False)

    def _compute(self, compute: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        target: EventLog | Path | None = self._store
        if target is None:
            assert self._path is not None
            target = _live_writer(str(self._path)) if self._path.is_file() else None
        deadline = time.monotonic() + BUSY_RETRY_S
        while True:
            try:
                con = analysis.views(target if target is not None else self._path)  # type: ignore[arg-type]
                break
            except (analysis.AnalysisError, HPOStoreError, duckdb.Error) as exc:
                # a writer in another process holds the DuckDB file while it folds (a
                # fraction of a second): try again for a moment before calling it busy
                if time.monotonic() >= deadline:
                    raise StoreBusy(f"cannot read {self.label} now: {exc}") from exc
                time.sleep(0.05)
        try:
            return compute(con)
        except duckdb.Error as exc:  # a Parquet segment compacted away under the read
            raise StoreBusy(f"cannot read {self.label} now: {exc}") from exc
        finally:
            con.close()
