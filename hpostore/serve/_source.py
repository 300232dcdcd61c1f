"""Where the dashboard reads a log from: a DuckDB file, a Parquet directory or an open store.

The dashboard keeps a *mirror*: an in-memory DuckDB copy of the events with the analysis
views (:func:`analysis.views`) created on it, its configuration locked down. The log is
append-only, so a refresh fetches only the events past the seq the mirror holds per study
(through the store's own read-only reader, which applies the log's integrity rules), and the
DuckDB file is opened only for that fetch: a writer in another process is never kept waiting
by the dashboard's queries. A refresh happens when a cheap *fingerprint* of the source (file
sizes and modification times, the names of the Parquet segments) changes; results computed
on the mirror are cached under it, so polls of an unchanged log cost a few ``stat`` calls.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import duckdb

import analysis

from ..errors import HPOStoreError
from ..store.base import EventLog, open_store
from ._mirror import Mirror

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
    """The writer this process has open on ``path`` (hpostore.store.duckdb.live_writer)."""
    from ..store.duckdb import live_writer

    return live_writer(path)


class LogSource:
    """A read-only view of one event log for the dashboard, with a fingerprint-keyed cache.

    >>> source = LogSource("runs.duckdb")                        # doctest: +SKIP
    >>> source.read(("n",), lambda con: con.execute("SELECT count(*) FROM events").fetchall())
    ... # doctest: +SKIP
    """

    def __init__(self, source: str | os.PathLike[str] | EventLog) -> None:
        self._store: EventLog | None = None
        self._path = Path()
        if isinstance(source, EventLog):
            self._store = source
            self.label = repr(source)
        elif isinstance(source, (str, os.PathLike)):
            self._path = Path(os.fspath(source))
            if not (self._path.is_file() or self._path.is_dir()):
                raise HPOStoreError(
                    f"no event log at {self._path}: give a DuckDB file or a Parquet log directory"
                )
            self.label = str(self._path)
        else:
            raise HPOStoreError(
                "serve() takes a DuckDB file, a Parquet log directory or an open hpostore store, "
                f"got {type(source).__name__}"
            )
        self._lock = threading.Lock()
        self._cache: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._mirror: Mirror | None = None
        self._mirrored: Hashable = None  # the fingerprint the mirror was synced at
        self._parquet: EventLog | None = None  # kept open: it caches verified segments
        self._studies: dict[str, tuple[int, duckdb.DuckDBPyConnection]] = {}

    def fingerprint(self) -> Hashable:
        """Changes whenever the log may have changed (a new event, a fold, a new segment)."""
        if self._store is not None:
            rows = self._store.sql("SELECT count(*), max(seq), max(ts) FROM events")
            return tuple(rows.to_pylist()[0].values()) if rows.num_rows else ()
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

    def read(
        self,
        key: Hashable,
        compute: Callable[[duckdb.DuckDBPyConnection], T],
        *,
        study: str | None = None,
    ) -> Reading[T]:
        """``compute`` run on a connection with the analysis views, or its cached result when
        the log has not changed since; when the log is busy, the last result (stale) if any.

        With ``study``, the connection holds that study's events only and the result is
        reused until that study's last seq changes, whatever other studies do."""
        with self._lock:  # one read at a time: the writer is disturbed as little as possible
            cached = self._cache.get(key)
            try:
                mirror = self._synced(self.fingerprint())
            except StoreBusy:
                if cached is None:
                    raise
                log.debug("%s is busy; serving the previous reading", self.label)
                return Reading(cached[1], stale=True)
            known = study if study is not None and study in mirror.last else None
            version = (known, mirror.last[known]) if known is not None else (None, mirror.total())
            if cached is not None and cached[0] == version:
                self._cache.move_to_end(key)
                return Reading(cached[1], stale=False)
            # an unknown study is computed on the whole log (where it is found missing)
            value = compute(self._study_con(mirror, known) if known is not None else mirror.con)
            self._cache[key] = (version, value)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
            return Reading(value, stale=False)

    def check(self) -> None:
        """Open the log's reader once: :class:`HPOStoreError` if it is no event log."""
        deadline = time.monotonic() + BUSY_RETRY_S
        while True:
            try:
                with self._reader():
                    return
            except (HPOStoreError, duckdb.Error) as exc:
                if time.monotonic() >= deadline:
                    raise HPOStoreError(f"cannot serve {self.label}: {exc}") from exc
                time.sleep(0.05)

    def warm(self) -> None:
        """Bring the mirror up to date now (the first page then finds it ready)."""
        try:
            with self._lock:
                self._synced(self.fingerprint())
        except HPOStoreError as exc:
            log.warning("%s", exc)

    def read_each(
        self,
        kind: str,
        compute_one: Callable[[duckdb.DuckDBPyConnection, str], T],
        compute_all: Callable[[duckdb.DuckDBPyConnection], dict[str, T]],
    ) -> Reading[list[T]]:
        """One result per study, each cached under ``(kind, study)`` until that study
        changes: one study that changed is computed alone (:meth:`read` with ``study``),
        several at once by ``compute_all`` over the whole log (cheaper than one by one)."""
        with self._lock:
            try:
                mirror = self._synced(self.fingerprint())
            except StoreBusy:
                old = [
                    v
                    for k, (_, v) in self._cache.items()
                    if isinstance(k, tuple) and len(k) == 2 and k[0] == kind
                ]
                if not old:
                    raise
                return Reading(old, stale=True)
            names = list(mirror.last)
            versions = {n: (n, mirror.last[n]) for n in names}
            missing = [n for n in names if self._cache.get((kind, n), (None,))[0] != versions[n]]
            if len(missing) > 1:
                computed = compute_all(mirror.con)
            else:
                computed = {n: compute_one(self._study_con(mirror, n), n) for n in missing}
            for n in missing:
                self._cache[(kind, n)] = (versions[n], computed[n])
            values = [self._cache[(kind, n)][1] for n in names]
            while len(self._cache) > max(CACHE_ENTRIES, 2 * len(names)):
                self._cache.popitem(last=False)
            return Reading(values, stale=False)

    def _study_con(self, mirror: Mirror, study: str) -> duckdb.DuckDBPyConnection:
        """A connection with the views over ``study``'s events alone (kept while current)."""
        version = mirror.last[study]
        held = self._studies.get(study)
        if held is not None and held[0] == version:
            return held[1]
        if held is not None:
            # a cursor with the views on it keeps seeing the mirror as it was (DuckDB 2.0):
            # a new one is made for the study's new events
            held[1].close()
        # a cursor is a connection of its own to the mirror's database (a new database
        # would cost ~0.3 s): its TEMP table ``events`` shadows the mirror's, and the views
        # created on it read that
        con = mirror.con.cursor()
        con.execute(
            "CREATE TEMP TABLE events AS SELECT * FROM main.events WHERE study = ? ORDER BY seq",
            [study],
        )
        analysis.views(con)
        self._studies[study] = (version, con)
        return con

    def _synced(self, fingerprint: Hashable) -> Mirror:
        """The mirror, with every event the log held when ``fingerprint`` was taken."""
        if self._mirror is not None and self._mirrored == fingerprint:
            return self._mirror
        deadline = time.monotonic() + BUSY_RETRY_S
        while True:
            try:
                with self._reader() as reader:
                    if self._mirror is None or not self._mirror.sync(reader):
                        if self._mirror is not None:
                            self._mirror.close()
                        self._mirror = None
                        for _version, con in self._studies.values():
                            con.close()
                        self._studies.clear()
                        self._cache.clear()
                        fresh = Mirror()
                        fresh.sync(reader)
                        self._mirror = fresh
                self._mirrored = fingerprint
                return self._mirror
            except (HPOStoreError, duckdb.Error) as exc:
                # a writer in another process holds the DuckDB file while it folds (a
                # fraction of a second): try again for a moment before calling it busy
                if time.monotonic() >= deadline:
                    raise StoreBusy(f"cannot read {self.label} now: {exc}") from exc
                time.sleep(0.05)

    @contextlib.contextmanager
    def _reader(self) -> Iterator[EventLog]:
        """The store's own read-only reader of the log, open for one refresh."""
        if self._store is not None:
            yield self._store
            return
        if self._path.is_dir():
            if self._parquet is None:
                self._parquet = open_store(f"{self._path}{os.sep}", read_only=True)
            yield self._parquet
            return
        writer = _live_writer(str(self._path))
        if writer is not None:  # this process writes the file: read through the writer
            yield writer
            return
        store = open_store(str(self._path), read_only=True)
        try:
            yield store
        finally:
            store.close()
