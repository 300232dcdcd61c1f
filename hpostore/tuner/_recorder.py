"""The recorder: session, study clock, append-then-apply into the live fold, commit policy."""

from __future__ import annotations

import os
import platform
import socket
import sys
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from .._processes import worker_name
from .._version import __version__
from ..errors import CorruptLogError, InvalidArgument
from ..log.events import Kind, dumps
from ..store.base import EventLog
from ..study import StudyState
from ._snapshots import SnapshotWriter, load_state


class Clock(Protocol):
    """Seconds from an arbitrary origin (``time.monotonic`` by default; a simulator may drive it)."""

    def __call__(self) -> float: ...


class Recorder:
    """Appends a study's events and folds each one into the live :class:`StudyState` at once.

    Everything the tuner knows about trials is ``state``: an event is appended, then applied,
    and only then does anyone (scheduler, searcher, loop) hear of it.

    Commit policy (durable mode: each commit is an fdatasync; batched mode: at most every
    fraction of a second): :meth:`commit_ahead` before an objective runs (write-ahead of its
    ``suggest``/``start``), :meth:`commit_result` after an ``evaluate``/``fail`` before anything
    acts on it, :meth:`commit_decision` after a stop or pause a running trial will obey, and a
    forced commit at session start and end.
    """

    def __init__(self, store: EventLog, study: str, clock: Clock) -> None:
        self.store = store
        self.study = study
        self.clock = clock
        self.worker = worker_name()
        # the newest valid snapshot of the fold plus the events after it (else a full replay)
        self.state: StudyState
        self.state, covered = load_state(store, study)
        self._snapshots = SnapshotWriter(store, study, covered)
        self._last_row: Any = None
        if self.state.seq and self.state.spec is None:
            raise CorruptLogError(
                f"study {study!r} in {store.path} does not start with a study event"
            )
        self.session: str | None = None
        self._elapsed0 = self.state.elapsed
        self._t0 = clock()

    # --- the study clock ----------------------------------------------------------------------
    def elapsed(self) -> float:
        """Study time: the log's elapsed at session start plus this session's clock (the clock
        itself when it reads study time, as a resumed simulator's does: no rounding)."""
        if self._t0 == self._elapsed0:
            return self.clock()
        return self._elapsed0 + (self.clock() - self._t0)

    def session_s(self) -> float:
        """Seconds this session has run (by the tuner's clock)."""
        return self.clock() - self._t0

    # --- events -------------------------------------------------------------------------------
    def append(
        self,
        kind: Kind,
        *,
        trial: int | None = None,
        config: str | None = None,
        resource: float | None = None,
        error: float | None = None,
        runtime: float | None = None,
        worker: str | None = None,
        payload: str | None = None,
    ) -> None:
        """Append an event and fold it into ``state`` (before anyone acts on it)."""
        if self.session is None:
            raise InvalidArgument(
                f"study {self.study!r}: a {kind.value} event outside a session (call run())"
            )
        # :meth:`elapsed` inline, and ``_value_`` (the member's value without the enum's
        # descriptor): this runs for every event
        now = self.clock()
        t0 = self._t0
        elapsed = now if t0 == self._elapsed0 else self._elapsed0 + (now - t0)
        # explicit keywords, not ``**fields`` forwarded: ~1 µs less per event
        row = self.store.append(self.study, kind._value_, elapsed=elapsed, session=self.session,
                                trial=trial, config=config, resource=resource, error=error,
                                runtime=runtime, worker=worker, payload=payload)  # fmt: skip
        state = self.state
        state.apply_row(row)
        self._last_row = row
        if state.seq >= self._snapshots.next_due:
            self._snapshots.write(state, row)

    def begin(self, spec: Callable[[], dict[str, Any]]) -> None:
        """Open a session (logging the ``study`` event first, from ``spec()``, in a new study)."""
        self.session = uuid.uuid4().hex[:16]
        self._elapsed0 = self.state.elapsed
        self._t0 = self.clock()
        if self.state.spec is None:
            self.append(Kind.STUDY, payload=dumps(spec()))
        info = {
            "reason": "resume" if self.state.sessions else "new",
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "python": platform.python_version(),
            "hpostore_version": __version__,
            "argv": " ".join(sys.argv)[:200],
        }
        self.append(Kind.SESSION, payload=dumps(info))
        self.store.commit(force=True)

    def end(self, reason: str) -> None:
        """Log the ``end`` of the session with ``reason`` and commit everything."""
        try:
            self.append(Kind.END, payload=dumps({"reason": reason}))
        finally:
            self.session = None
            self.store.commit(force=True)
        if self._last_row is not None:
            self._snapshots.session_end(self.state, self._last_row)  # after the commit

    # --- the commit policy ------------------------------------------------------------------
    def commit_ahead(self) -> None:
        """Write-ahead: a trial's ``suggest``/``start`` are committed before its objective runs."""
        self.store.commit()

    def commit_result(self) -> None:
        """An ``evaluate``/``fail`` is committed before the scheduler or the loop acts on it."""
        self.store.commit()

    def commit_decision(self) -> None:
        """A stop/pause that a running trial obeys is committed before the trial hears of it."""
        self.store.commit()
