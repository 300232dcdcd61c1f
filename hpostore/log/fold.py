"""Replay: the state of a study is a pure fold over its events, one handler per event kind.

``StudyState`` is built only by :meth:`StudyState.apply` (one event at a time, live in the tuner)
or :func:`replay` / :func:`replay_table` (a whole log, on resume or for analysis). Both run the
same handlers: no I/O, no randomness, so the same events give the same state bit for bit. The
handlers validate each trial's transitions (see :class:`~hpostore.log.trial.TrialStatus`).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable
from typing import Any, NoReturn

import pyarrow as pa

from ..errors import CorruptLogError
from ._coldfold import Prefix, TrialMap
from .events import KINDS, Event, Kind, objectives_of, upcast_spec
from .queries import StudyQueries
from .trial import (
    _AFTER_DECISION,
    _CAN_START,
    _SUGGEST,
    _UPDATE,
    WITH_RESULT,
    TrialState,
    TrialStatus,
)

#: the ``suggest`` payload of an enqueued config (payloads are canonical JSON: sorted, compact)
_ENQUEUED = '"origin":"enqueued"'


class StudyState(StudyQueries):
    """What a study's events say: trials, incumbent, trajectory, elapsed time."""

    def __init__(self, study: str) -> None:
        self.study = study
        self.seq = 0
        self.elapsed = 0.0
        self.spec: dict[str, Any] | None = None
        self.trials = TrialMap()
        #: the six result/call lists (``calls``, ``finished``, ``evaluations``, ``trajectory``,
        #: ``finished_elapsed``, ``decisions``: see :class:`StudyQueries`) live here; the fold
        #: appends to them, and a snapshot's items wait in ``_cold_lists`` until first read
        self._calls: list[tuple[int, int]] = []
        self._finished: list[int] = []
        self._evaluations: list[tuple[int, str, float, float | None, float | None]] = []
        self._trajectory: list[float] = []
        self._finished_elapsed: list[float] = []
        self._decisions: list[tuple[int, str, int | None, str | None]] = []
        self._cold_lists: dict[str, Prefix[Any]] | None = None
        self.incumbent_trial: int | None = None
        self._incumbent: tuple[str, float] | None = None  # (config JSON, error) of the best result
        # kept by the fold so the tuner's per-trial questions are O(1), not a scan of all trials
        self._open: dict[int, None] = {}  # unfinished trial ids, in suggest order
        self._next_trial = 0
        self.n_failed = 0
        self.sessions = 0
        self.session_open = False
        self.last_kind: str | None = None
        #: configs queued by ``enqueue`` events (JSON text) not yet suggested, in queue order
        self.enqueued: list[str] = []
        #: user attributes of ``attr`` events: ``{trial or None (the study): {key: value}}``
        self.attributes: dict[int | None, dict[str, Any]] = {}
        #: the objectives (metric names) and their modes, from the spec (v1: error, min)
        self.metric: tuple[str, ...] = ("error",)
        self.mode: tuple[str, ...] = ("min",)
        #: +1.0 (mode min) or -1.0 (max): the fold's ``error`` values (``TrialState.error``,
        #: ``curve``, ``results``, ``evaluations``) are losses, ``sign`` x the measured value,
        #: so every decision maker minimizes; user-facing queries give measured values
        self.sign = 1.0

    def bind_spec(self, spec: dict[str, Any]) -> None:
        """Adopt a study spec (any format version): its objectives, modes and sign."""
        self.spec = spec
        self.metric, self.mode = objectives_of(upcast_spec(spec, self.study))
        self.sign = -1.0 if self.mode[0] == "max" else 1.0

    # --- the fold ---------------------------------------------------------------------------
    def apply(self, event: Event) -> StudyState:
        self.apply_row((
            self.study, event.seq, None, event.elapsed, event.session, event.kind, event.trial,
            event.config, event.resource, event.error, event.runtime, event.worker, event.payload,
        ))  # fmt: skip
        return self

    def apply_row(self, row: tuple[Any, ...]) -> None:
        """Apply a row in the events column order (as returned by ``EventLog.append``): check
        the seq, run the kind's handler (before the state moves: a refused event changes
        nothing), move the seq. The tuner's path for every event (one frame for all of it)."""
        seq, kind, elapsed = row[1], row[5], row[3]
        if seq != self.seq + 1:
            self._gap(self.seq, seq)
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, seq, row[6], row[7], row[8], row[9], row[10], elapsed, row[4], row[11],
                    row[12])  # fmt: skip
        self.seq = seq
        self.elapsed = elapsed
        self.last_kind = kind

    # --- one handler per kind (arguments: seq, trial, config, resource, error, runtime,
    # elapsed, session, worker, payload) ------------------------------------------------------
    def _apply_study(self, seq: int, trial: Any, config: Any, resource: Any, error: Any,
                     runtime: Any, elapsed: Any, session: Any, worker: Any,
                     payload: str | None) -> None:  # fmt: skip
        if seq != 1 or payload is None:
            raise CorruptLogError(
                f"study {self.study!r}: the study event must come first (seq 1) with a spec"
            )
        self.bind_spec(json.loads(payload))

    def _apply_session(self, *_: Any) -> None:
        self.sessions += 1
        self.session_open = True
        self._interrupt_running()

    def _apply_end(self, *_: Any) -> None:
        self.session_open = False
        self._interrupt_running()

    def _interrupt_running(self) -> None:
        trials = self.trials
        for i in self._open:
            t = trials[i]
            if t.status is TrialStatus.RUNNING:
                t.status = TrialStatus.INTERRUPTED

    def _apply_suggest(self, seq: int, trial: int | None, config: str | None, resource: Any,
                       error: Any, runtime: Any, elapsed: float, session: str, worker: Any,
                       payload: str | None) -> None:  # fmt: skip
        if trial is None or config is None or trial in self.trials:
            raise CorruptLogError(
                f"study {self.study!r} seq {seq}: suggest needs a new trial id and a config"
                + (f" (trial {trial} was suggested before)" if trial in self.trials else "")
            )
        # built from its two required fields, then set: keyword arguments to a class cost
        # ~2.5k instructions more (Python 3.11 passes them to ``__init__`` as a dict)
        t = TrialState(trial, config)
        t.suggested_at, t.session, t.payload_json = elapsed, session, payload
        self.trials[trial] = t
        if payload is not None and _ENQUEUED in payload and self.enqueued:
            # the user's queued config, not a scheduler's suggest() (not replayed as a call)
            self.enqueued.pop(0)
        else:
            self._calls.append((_SUGGEST, trial))
        self._open[trial] = None
        if trial >= self._next_trial:
            self._next_trial = trial + 1

    def _apply_start(self, seq: int, trial: int | None, config: str | None, resource: Any,
                     error: Any, runtime: Any, elapsed: float, session: str,
                     worker: str | None, payload: Any) -> None:  # fmt: skip
        t = self.trials.get(trial)  # type: ignore[arg-type]
        if t is None:
            self._missing(seq, "start", trial)
        if t.status not in _CAN_START:
            self._refuse(seq, "start", t, "a trial can start again only when it is not running "
                         "and has not failed")  # fmt: skip
        t.status = TrialStatus.RUNNING
        t.decision = None
        self._open[t.trial] = None  # a promoted trial runs again
        t.attempts += 1
        if config is not None:  # resumed with more resource: the config it runs with now
            t.config_json, t._config = config, None
            t.updated = False
        t.worker = worker
        t.session = session
        t.started_at = elapsed

    def _apply_report(self, seq: int, trial: int | None, config: Any, resource: float | None,
                      error: float | None, *_: Any) -> None:  # fmt: skip
        if error is not None and self.sign < 0:
            error = -error
        t = self.trials.get(trial)  # type: ignore[arg-type]
        if t is None:
            self._missing(seq, "report", trial)
        if t.status is not TrialStatus.RUNNING:
            self._refuse(seq, "report", t, "only a running trial reports")
        if resource is not None:
            t.resource = resource if t.resource is None else max(t.resource, resource)
            if error is not None:
                t.curve.append((resource, error))

    def _apply_evaluate(self, seq: int, trial: int | None, config: Any, resource: float | None,
                        error: float | None, runtime: float | None, elapsed: float,
                        session: Any, worker: Any, payload: str | None) -> None:  # fmt: skip
        t = self.trials.get(trial)  # type: ignore[arg-type]
        if t is None:
            self._missing(seq, "evaluate", trial)
        if t.status is not TrialStatus.RUNNING:
            self._refuse(seq, "evaluate", t, "only a running trial returns a result")
        if error is None:
            raise CorruptLogError(f"study {self.study!r} seq {seq}: evaluate without an error")
        if self.sign < 0:
            error = -error
        t.metrics_json = None if payload is None else _metrics_json(payload)
        d = t.decision
        t.status = TrialStatus.FINISHED if d is None else _AFTER_DECISION[d]
        self._open.pop(t.trial, None)
        t.error, t.runtime, t.finished_at = error, runtime, elapsed
        if resource is not None:
            t.resource = resource
        t.results.append((resource, error))
        self._finished.append(t.trial)
        self._evaluations.append((t.trial, t.config_json, error, runtime, resource))
        incumbent = self._incumbent
        if incumbent is None or error < incumbent[1]:
            self.incumbent_trial = t.trial
            incumbent = self._incumbent = (t.config_json, error)
        self._trajectory.append(incumbent[1] * self.sign)
        self._finished_elapsed.append(elapsed)

    def _apply_fail(self, seq: int, trial: int | None, config: Any, resource: Any, error: Any,
                    runtime: float | None, elapsed: float, session: Any, worker: Any,
                    payload: str | None) -> None:  # fmt: skip
        t = self.trials.get(trial)  # type: ignore[arg-type]
        if t is None:
            self._missing(seq, "fail", trial)
        if t.status is not TrialStatus.RUNNING:
            self._refuse(seq, "fail", t, "only a running trial fails")
        t.status = TrialStatus.FAILED
        self._open.pop(t.trial, None)
        t.runtime, t.finished_at = runtime, elapsed
        t.message = json.loads(payload).get("message") if payload else None
        self.n_failed += 1

    def _apply_interrupt(self, seq: int, trial: int | None, *_: Any) -> None:
        t = self.trials.get(trial)  # type: ignore[arg-type]
        if t is None:
            self._missing(seq, "interrupt", trial)
        if t.status is not TrialStatus.RUNNING:
            self._refuse(seq, "interrupt", t, "only a running trial is interrupted")
        t.status = TrialStatus.INTERRUPTED

    def _apply_stop(self, seq: int, trial: int | None, *args: Any) -> None:
        self._decide(seq, Kind.STOP.value, trial, args[-1])

    def _apply_pause(self, seq: int, trial: int | None, *args: Any) -> None:
        self._decide(seq, Kind.PAUSE.value, trial, args[-1])

    def _apply_promote(self, seq: int, trial: int | None, *args: Any) -> None:
        self._decide(seq, Kind.PROMOTE.value, trial, args[-1])

    def _decide(self, seq: int, kind: str, trial: int | None, payload: str | None) -> None:
        t = self.trials.get(trial)  # type: ignore[arg-type]
        if t is None:
            self._missing(seq, kind, trial)
        if not t.attempts:
            self._refuse(seq, kind, t, "a scheduler decides only on a trial that has started")
        self._decisions.append((seq, kind, t.trial, payload))
        t.decision = kind
        if kind == "stop":
            t.stopped = True
        if t.status in WITH_RESULT:
            t.status = _AFTER_DECISION[kind]

    def _apply_update(self, seq: int, trial: int | None, *_: Any) -> None:
        t = self.trials.get(trial)  # type: ignore[arg-type]
        if t is None:
            self._missing(seq, "update", trial)
        if not t.results:
            self._refuse(seq, "update", t, "an update follows a result")
        t.updated = True
        self._calls.append((_UPDATE, t.trial))

    def _apply_enqueue(self, seq: int, trial: Any, config: str | None, *_: Any) -> None:
        if config is None:
            raise CorruptLogError(f"study {self.study!r} seq {seq}: enqueue without a config")
        self.enqueued.append(config)

    def _apply_attr(self, seq: int, trial: int | None, *args: Any) -> None:
        payload = args[-1]
        value = json.loads(payload) if payload else None
        if not isinstance(value, dict) or not isinstance(value.get("key"), str):
            raise CorruptLogError(f"study {self.study!r} seq {seq}: attr without a key")
        if trial is not None and trial not in self.trials:
            self._missing(seq, "attr", trial)
        self.attributes.setdefault(trial, {})[value["key"]] = value.get("value")

    def _gap(self, last: int, seq: int) -> NoReturn:
        raise CorruptLogError(
            f"study {self.study!r}: expected seq {last + 1} after {last}, got {seq}. The log "
            "has a gap or is out of order: restore it from a copy"
        )

    def _missing(self, seq: int, kind: str, trial: int | None) -> NoReturn:
        raise CorruptLogError(
            f"study {self.study!r} seq {seq}: {kind} of trial {trial}, which was never "
            "suggested. The log is damaged: restore it from a copy, or export the events "
            "before this seq to a new store"
        )

    def _refuse(self, seq: int, kind: str, t: TrialState, rule: str) -> NoReturn:
        raise CorruptLogError(
            f"study {self.study!r} seq {seq}: {kind} of trial {t.trial}, which is "
            f"{t.status.value} (attempts {t.attempts}); {rule}. The log is damaged: restore it "
            "from a copy, or export the events before this seq to a new store"
        )


#: one handler per event kind (``Kind`` values), called as ``handler(state, seq, trial, config,
#: resource, error, runtime, elapsed, session, worker, payload)``; a kind this version does not
#: know is skipped (kinds are extended, never repurposed)
_HANDLERS: dict[str, Any] = {
    Kind.STUDY.value: StudyState._apply_study,
    Kind.SESSION.value: StudyState._apply_session,
    Kind.SUGGEST.value: StudyState._apply_suggest,
    Kind.START.value: StudyState._apply_start,
    Kind.REPORT.value: StudyState._apply_report,
    Kind.EVALUATE.value: StudyState._apply_evaluate,
    Kind.FAIL.value: StudyState._apply_fail,
    Kind.INTERRUPT.value: StudyState._apply_interrupt,
    Kind.STOP.value: StudyState._apply_stop,
    Kind.PAUSE.value: StudyState._apply_pause,
    Kind.PROMOTE.value: StudyState._apply_promote,
    Kind.UPDATE.value: StudyState._apply_update,
    Kind.END.value: StudyState._apply_end,
    Kind.ENQUEUE.value: StudyState._apply_enqueue,
    Kind.ATTR.value: StudyState._apply_attr,
}
assert set(_HANDLERS) == KINDS, "every kind has a handler"


def _metrics_json(payload: str) -> str | None:
    """The ``metrics`` entry of a result's payload as JSON text (None when it has none)."""
    metrics = json.loads(payload).get("metrics")
    return None if metrics is None else json.dumps(metrics, separators=(",", ":"))


def replay(study: str, events: Iterable[Event]) -> StudyState:
    """``fold(apply, events)``: the state of ``study`` after ``events`` (ordered by seq)."""
    state = StudyState(study)
    for event in events:
        state.apply(event)
    return state


#: the event columns replay reads (a store may return just these)
REPLAY_COLUMNS = [
    "seq",
    "kind",
    "trial",
    "config",
    "resource",
    "error",
    "runtime",
    "elapsed",
    "session",
    "worker",
    "payload",
]


def replay_table(study: str, table: pa.Table, into: StudyState | None = None) -> StudyState:
    """:func:`replay` straight from an Arrow table of events (no Event objects: fast resume);
    ``into``: a state to continue (a snapshot's), whose events end just before the table's."""
    state = StudyState(study) if into is None else into
    if not table.num_rows:
        return state
    cols = [table.column(c).to_pylist() for c in REPLAY_COLUMNS]
    handlers = _HANDLERS
    last = state.seq
    # The fold allocates a record per trial and nothing cyclic: pausing the cyclic GC while it
    # runs halves the time to replay a large study (1.3 s instead of 2.6 s at 400k events).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        # apply_row's three steps (seq check, handler, seq), inlined: this loop is the resume
        # path, and a call less per event is a fifth of the time
        for seq, kind, trial, config, resource, error, runtime, elapsed, session, worker, payload in zip(*cols):  # fmt: skip
            if seq != last + 1:
                state._gap(last, seq)
            handler = handlers.get(kind)
            if handler is not None:
                handler(state, seq, trial, config, resource, error, runtime, elapsed, session,
                        worker, payload)  # fmt: skip
            last = seq
    finally:
        if was_enabled:
            gc.enable()
    state.seq, state.elapsed, state.last_kind = last, cols[7][-1], cols[1][-1]
    return state
