"""The EventLog interface every backend implements (append, commit, read)."""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from typing import Any

import pyarrow as pa

from ..errors import HPOStoreError, InvalidArgument, ReadOnlyStoreError
from ..log.events import KINDS, Row, check_study_name

#: Durability modes: ``durable`` (fdatasync before every objective call) or ``batched``.
DURABILITY = ("durable", "batched")
#: The longest that committed events wait before they are folded into the queryable table.
FOLD_INTERVAL_S = 0.25


def _check_texts(**texts: object) -> None:
    """Raise :class:`InvalidArgument` for a text column's value that is not a str of valid
    UTF-8 (None is a null)."""
    for name, text in texts.items():
        if text is None and name != "session":
            continue
        if not isinstance(text, str):
            raise InvalidArgument(f"an event's {name} must be a str, got {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgument(
                f"an event's {name} is not valid UTF-8 text ({exc.reason} at position "
                f"{exc.start}: {text[exc.start : exc.end]!r}); nothing was logged. Encode it "
                "as JSON text with ASCII escapes, or remove the character"
            ) from None


class EventLog(ABC):
    """An append-only log of events for many studies.

    The store assigns ``seq`` (gapless per study) and ``ts``. ``append`` buffers; ``commit``
    makes what was appended durable according to the store's durability mode; reads see every
    appended event of this process.
    """

    path: str
    read_only: bool
    durability: str

    def __init__(self) -> None:
        self._next_seq: dict[str, int] = {}

    # --- write path -------------------------------------------------------------------------
    def append(
        self,
        study: str,
        kind: str,
        *,
        elapsed: float,
        session: str,
        trial: int | None = None,
        config: str | None = None,
        resource: float | None = None,
        error: float | None = None,
        runtime: float | None = None,
        worker: str | None = None,
        payload: str | None = None,
    ) -> Row:
        """Buffer one event; returns its row (with the assigned ``seq`` and ``ts``)."""
        if self.read_only:
            raise ReadOnlyStoreError(
                f"{self.path} was opened read-only; open it without read_only=True to write"
            )
        if kind not in KINDS:
            raise HPOStoreError(f"unknown event kind {kind!r}; expected one of {sorted(KINDS)}")
        seq = self._next_seq.get(study)
        if seq is None:
            check_study_name(study)  # once per study: names are data, of plain text
            seq = self.last_seq(study) + 1
        # the texts must be UTF-8 (DuckDB, Parquet and Arrow hold nothing else): a lone surrogate
        # that got into the tail would stop every later fold and open. ASCII is the tuner's own
        # case (its JSON is ASCII-escaped), tested first in C; anything else is looked at closely
        try:
            plain = (
                session.isascii()
                and (config is None or config.isascii())
                and (worker is None or worker.isascii())
                and (payload is None or payload.isascii())
            )
        except AttributeError:  # not a str
            plain = False
        if not plain:
            _check_texts(session=session, config=config, worker=worker, payload=payload)
        self._next_seq[study] = seq + 1
        row: Row = (
            study, seq, time.time_ns() // 1000, elapsed, session, kind, trial, config,
            resource, error, runtime, worker, payload,
        )  # fmt: skip
        self._buffer(row)
        return row

    def note_last_seq(self, study: str, seq: int) -> None:
        """The caller has just read ``study``'s events from this store up to its last, ``seq``
        (a resume's replay): the next append takes ``seq + 1`` without asking the file again.
        Ignored once this store has appended to the study (its own counter is the truth)."""
        if study not in self._next_seq and not self.read_only:
            self._next_seq[study] = seq + 1

    @abstractmethod
    def _buffer(self, row: Row) -> None: ...

    @abstractmethod
    def commit(self, *, force: bool = False) -> None:
        """Durable mode: appended events reach the disk (fdatasync) now.
        Batched mode: they do when ``force`` or when the last commit is older than 0.25 s."""

    @abstractmethod
    def flush(self) -> None:
        """Commit everything and fold it into the table other readers query."""

    @abstractmethod
    def close(self) -> None: ...

    # --- read path --------------------------------------------------------------------------
    @abstractmethod
    def last_seq(self, study: str) -> int:
        """The largest seq of ``study`` (0 when the study has no events)."""

    @abstractmethod
    def studies(self) -> list[str]: ...

    @abstractmethod
    def events(self, study: str, *, columns: list[str] | None = None) -> pa.Table:
        """The study's events ordered by seq, as an Arrow table with the events schema."""

    @abstractmethod
    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pa.Table:
        """Run one read-only SELECT over the ``events`` table; returns an Arrow table."""

    def trials(self, study: str) -> pa.Table:
        """One row per trial of ``study`` (replayed from its events), as an Arrow table."""
        from ..study import replay_table

        return replay_table(study, self.events(study)).trials_table()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # last resort; explicit close() is the contract
        with contextlib.suppress(Exception):  # never raise from a finalizer
            self.close()


def open_store(
    path: str = "hpostore.duckdb", *, durability: str = "durable", read_only: bool = False
) -> EventLog:
    """Open (or create) an event store.

    ``path`` is a DuckDB file (``runs.duckdb``), a directory for a Parquet log (``runs/``:
    an existing directory, or a path ending in ``/``), or ``":memory:"``. ``durability="durable"``
    (default) makes each trial's events durable before the next objective call;
    ``"batched"`` commits at most every 0.25 s and at close (a crash loses at most that window).

    >>> store = open_store(":memory:")
    >>> store.studies()
    []
    """
    from pathlib import Path

    from .duckdb import DuckDBStore

    if durability not in DURABILITY:
        raise HPOStoreError(f"durability must be one of {DURABILITY}, got {durability!r}")
    path = str(path)
    if path == ":memory:":
        if read_only:
            raise HPOStoreError("an in-memory store cannot be opened read-only")
        return DuckDBStore(path, durability=durability)
    p = Path(path)
    if path.endswith(("/", "\\")) or p.is_dir():
        from .parquet import ParquetStore  # a directory: the Parquet segment log

        return ParquetStore(path, durability=durability, read_only=read_only)
    if p.suffix.lower() not in (".duckdb", ".db", ".ddb"):
        raise HPOStoreError(
            f"open_store expects a DuckDB file path ending in .duckdb (or .db/.ddb) or ':memory:', got {path!r}"
        )
    if read_only and not p.exists():
        raise HPOStoreError(f"no store at {path}: the file does not exist")
    return DuckDBStore(path, durability=durability, read_only=read_only)
