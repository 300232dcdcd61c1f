"""The trial vocabulary: the seven statuses and their transitions, the call codes, TrialState."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

from .events import Kind


class Call(enum.IntEnum):
    """What a live tuner asked of its scheduler, in :attr:`StudyState.calls` (re-execution
    replays these in order). An ``IntEnum``: code written against the plain codes 0/1 works."""

    SUGGEST = 0  # ``suggest()``: a ``suggest`` event
    UPDATE = 1  # ``update(config, error)``: an ``update`` event


class TrialStatus(str, enum.Enum):
    """A trial's status: the one vocabulary of the fold, the SQL views and the CLI.

    Transitions the fold accepts (anything else is a :class:`CorruptLogError` naming the seq):

    - ``suggest`` -> SUGGESTED (a new trial id)
    - ``start``: SUGGESTED, INTERRUPTED (a re-run), PAUSED, FINISHED or STOPPED (resumed with
      more resource, e.g. promotion-type ASHA) -> RUNNING; never from RUNNING or FAILED
    - ``report``: RUNNING only (status unchanged)
    - ``evaluate``: RUNNING -> FINISHED, or STOPPED / PAUSED when the last ``stop`` / ``pause``
      decision on the trial since its last ``start`` says so
    - ``fail``: RUNNING -> FAILED; ``interrupt``: RUNNING -> INTERRUPTED
    - ``session`` / ``end`` (a new session after a crash or Ctrl-C, a clean end): every
      RUNNING trial -> INTERRUPTED (it is re-run on resume)
    - ``stop`` / ``pause`` / ``promote`` on a trial started at least once: recorded as its
      decision; on a trial with a result (FINISHED, PAUSED, STOPPED) the status becomes
      STOPPED / PAUSED / FINISHED (a promoted trial waits no more); a RUNNING or INTERRUPTED
      trial keeps its status until its attempt ends
    - ``update``: only after a result (status unchanged)
    """

    SUGGESTED = "suggested"  # proposed, not yet dispatched
    RUNNING = "running"  # dispatched in the current session
    INTERRUPTED = "interrupted"  # was in flight when its session ended or died; re-run on resume
    PAUSED = "paused"  # has a result and waits at a rung: a scheduler may resume it
    FINISHED = "finished"  # the objective returned an error
    STOPPED = "stopped"  # has a result, and the scheduler stopped it
    FAILED = "failed"  # the objective raised or returned something unusable


#: statuses of trials that must be (re-)run to finish
UNFINISHED = (TrialStatus.SUGGESTED, TrialStatus.RUNNING, TrialStatus.INTERRUPTED)
#: statuses of trials whose latest attempt returned a result (an ``evaluate``)
WITH_RESULT = (TrialStatus.FINISHED, TrialStatus.PAUSED, TrialStatus.STOPPED)
#: the status a decision gives a trial whose attempt has ended with a result
_AFTER_DECISION = {
    Kind.STOP.value: TrialStatus.STOPPED,
    Kind.PAUSE.value: TrialStatus.PAUSED,
    Kind.PROMOTE.value: TrialStatus.FINISHED,
}
_CAN_START = frozenset(
    (TrialStatus.SUGGESTED, TrialStatus.INTERRUPTED, TrialStatus.PAUSED, TrialStatus.FINISHED,
     TrialStatus.STOPPED)
)  # fmt: skip
_SUGGEST, _UPDATE = Call.SUGGEST, Call.UPDATE


@dataclass(slots=True)
class TrialState:
    """One trial as the log tells it (mutated only by the fold)."""

    trial: int
    config_json: str
    status: TrialStatus = TrialStatus.SUGGESTED
    error: float | None = None
    runtime: float | None = None
    resource: float | None = None
    attempts: int = 0
    updated: bool = False
    worker: str | None = None
    session: str | None = None
    suggested_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    message: str | None = None
    #: the ``suggest`` event's payload (JSON text): rung, bracket, origin of a scheduler's trial
    payload_json: str | None = None
    #: the learning curve: (resource, error) of each ``report`` event, in log order (the
    #: fold's errors are losses: negated under mode max, see ``StudyState.sign``)
    curve: list[tuple[float, float]] = field(default_factory=list)
    #: a scheduler logged a ``stop`` decision on this trial
    stopped: bool = False
    #: (resource, error) of each ``evaluate``, in log order: one per rung a promoted trial
    #: reached when promotion resumes the trial (promotion-type ASHA)
    results: list[tuple[float | None, float]] = field(default_factory=list)
    #: the last decision (``stop`` | ``pause`` | ``promote``) since the trial's last ``start``
    decision: str | None = None
    _config: dict[str, Any] | None = None
    #: every metric of the latest result as measured (JSON object text), when the result
    #: logged more than its error (format v2: extra metrics, multi-objective); else None
    metrics_json: str | None = None

    def metrics(self, sign: float = 1.0, metric: str = "error") -> dict[str, float]:
        """Every metric of the latest result as measured: the logged ``metrics`` and the
        first objective ``metric`` (``sign``: the study's, to undo the fold's loss)."""
        out: dict[str, float] = {}
        if self.error is not None:
            out[metric] = self.error * sign
        if self.metrics_json is not None:
            out.update(json.loads(self.metrics_json))
        return out

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.config_view())

    def config_view(self) -> dict[str, Any]:
        """The config itself, parsed once, not a copy: for readers that never change it (the
        tuner's hot path reads it several times a trial)."""
        if self._config is None:
            self._config = json.loads(self.config_json)
        return self._config

    @property
    def payload(self) -> dict[str, Any]:
        """The ``suggest`` payload as a dict (empty when the scheduler logged none)."""
        return {} if self.payload_json is None else dict(json.loads(self.payload_json))

    @property
    def has_result(self) -> bool:
        """Its latest attempt returned a result (FINISHED, PAUSED or STOPPED)."""
        return self.status in WITH_RESULT
