"""The scheduler driver: any scheduler through one trial-aware protocol, its decisions logged.

A :class:`~hpostore.schedulers.TrialScheduler` speaks the protocol itself; the textbook
:class:`~hpostore.schedulers.HPOScheduler` (``suggest()``/``update(config, error)``) goes
through :class:`FifoAdapter`. The rest of the tuner sees only :class:`TrialProtocol`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from ..errors import InvalidArgument
from ..log.events import Kind, dumps, dumps_config
from ..schedulers.base import CONTINUE, Action, Decision, HPOScheduler, Suggestion, TrialScheduler
from ..study import WITH_RESULT, StudyState, TrialState
from ._objective import ObjectiveCall, TrialOutcome, native_config, resolve
from ._recorder import Recorder


class Hooks(Protocol):
    """Where the driver tells what it logged (the tuner's callbacks, :mod:`hpostore.callbacks`)."""

    def trial_start(self, trial: int, config: dict[str, Any], attempt: int) -> None: ...

    def report(self, trial: int, resource: float, error: float) -> None: ...

    def result(self, trial: int) -> None: ...

    def decision(self, trial: int, kind: str, reason: str | None) -> None: ...


class TrialProtocol(Protocol):
    """What the tuner asks of a scheduler, whatever its kind."""

    #: the config entry that holds a trial's resource (``max_epochs``), if any
    resource_attr: str | None

    def suggest_trial(self, trial: int) -> Suggestion | Mapping[str, Any] | None:
        """What to run as trial ``trial``: a :class:`Suggestion`, a config alone (a new trial,
        nothing else: what a textbook scheduler's ``suggest()`` returns), or None (wait)."""
        ...

    def logged_config(self, trial: int, config: dict[str, Any]) -> None:
        """``config`` is now ``trial``'s config in the log (its ``suggest``, or a ``start``
        that changed it), as the fold parses it: the driver's own dict, not shared."""
        ...

    def on_report(self, trial: int, resource: float, error: float) -> Decision: ...

    def on_result(
        self, trial: int, error: float | None, resource: float | None
    ) -> list[tuple[int, Decision]]: ...

    def overrides_restore(self) -> bool: ...

    def restore(self, state: StudyState) -> None: ...

    def replay_suggest(self, trial: int) -> Any: ...

    def replay_result(self, t: TrialState) -> None: ...

    def pending_update(self, t: TrialState) -> None: ...

    def result_decisions(self, t: TrialState) -> list[tuple[int, Decision]]: ...


def _restorable(scheduler: Any) -> bool:
    """Whether ``restore`` rebuilds the scheduler: its own answer (``restorable()``, which the
    built-in bases give by override), else whether it overrides ``restore`` at all."""
    if isinstance(scheduler, HPOScheduler):
        return bool(scheduler.restorable())
    method = getattr(type(scheduler), "restore", None)
    return callable(method) and method is not HPOScheduler.restore


class FifoAdapter:
    """The textbook scheduler as a trial-aware one: one suggest per trial, one update per result.

    ``update`` gets the trial's config as the log holds it (the fold's, or the dict this
    session logged, which equals it), so a resumed and an uninterrupted study feed the searcher
    the same values.
    """

    resource_attr: str | None = None

    def __init__(self, scheduler: Any, state: StudyState) -> None:
        self.scheduler, self.state = scheduler, state
        #: configs this session logged, until their result: what ``update`` gets (equal to the
        #: fold's, which would parse the trial's JSON again: ~3 µs a trial)
        self._logged: dict[int, dict[str, Any]] = {}

    def suggest_trial(self, trial: int) -> Mapping[str, Any]:
        # the config alone, not wrapped in a Suggestion: the frozen dataclass costs ~10k
        # instructions a trial, a few % of the loop
        return self.scheduler.suggest()

    def logged_config(self, trial: int, config: dict[str, Any]) -> None:
        self._logged[trial] = config

    def on_report(self, trial: int, resource: float, error: float) -> Decision:
        on_report = getattr(self.scheduler, "on_report", None)  # optional for duck-typed ones
        return on_report(trial, resource, error) if callable(on_report) else CONTINUE

    def on_result(
        self, trial: int, error: float | None, resource: float | None
    ) -> list[tuple[int, Decision]]:
        config = self._logged.pop(trial, None)
        if error is not None:
            if config is None:  # logged by an earlier session (a re-run)
                config = self.state.trials[trial].config
            self.scheduler.update(config, error)
        return []

    def overrides_restore(self) -> bool:
        return _restorable(self.scheduler)

    def restore(self, state: StudyState) -> None:
        self.scheduler.restore(state)

    def replay_suggest(self, trial: int) -> Any:
        return self.scheduler.suggest()

    def replay_result(self, t: TrialState) -> None:
        if t.error is not None:
            self.scheduler.update(t.config, t.error)

    def pending_update(self, t: TrialState) -> None:
        self.replay_result(t)

    def result_decisions(self, t: TrialState) -> list[tuple[int, Decision]]:
        return []  # the textbook scheduler decides nothing on a result


class TrialAware:
    """A :class:`TrialScheduler`, which speaks the protocol itself."""

    def __init__(self, scheduler: TrialScheduler) -> None:
        self.scheduler = scheduler
        attr = getattr(scheduler, "resource_attr", None)
        self.resource_attr: str | None = attr if isinstance(attr, str) else None

    def suggest_trial(self, trial: int) -> Suggestion | None:
        return self.scheduler.suggest_trial(trial)

    def logged_config(self, trial: int, config: dict[str, Any]) -> None:
        return None  # the scheduler reads configs from the fold itself

    def on_report(self, trial: int, resource: float, error: float) -> Decision:
        return self.scheduler.on_report(trial, resource, error)

    def on_result(
        self, trial: int, error: float | None, resource: float | None
    ) -> list[tuple[int, Decision]]:
        return self.scheduler.on_result(trial, error, resource)

    def overrides_restore(self) -> bool:
        return _restorable(self.scheduler)

    def restore(self, state: StudyState) -> None:
        self.scheduler.restore(state)

    def replay_suggest(self, trial: int) -> Any:
        suggestion = self.scheduler.suggest_trial(trial)
        return None if suggestion is None else dict(suggestion.config)

    def replay_result(self, t: TrialState) -> None:
        self.scheduler.on_result(t.trial, t.error, t.resource)

    def pending_update(self, t: TrialState) -> None:
        return None  # on_result saw the result when it was logged (or restore did)

    def result_decisions(self, t: TrialState) -> list[tuple[int, Decision]]:
        return self.scheduler.result_decisions(t.trial)


def adapt(scheduler: Any, state: StudyState) -> TrialProtocol:
    """``scheduler`` behind the trial-aware protocol."""
    if isinstance(scheduler, TrialScheduler):
        return TrialAware(scheduler)
    return FifoAdapter(scheduler, state)


class SchedulerDriver:
    """Asks the scheduler, logs what it proposes and decides, and tells it what happened."""

    def __init__(self, scheduler: Any, recorder: Recorder, call: ObjectiveCall) -> None:
        self.scheduler = scheduler
        self.protocol: TrialProtocol = adapt(scheduler, recorder.state)
        self.recorder = recorder
        self.call = call
        #: the user's callbacks (``HPOTuner(callbacks=...)``), told after each event is logged
        self.hooks: Hooks | None = None
        #: (trial, config) of the last ``suggest`` logged: that config is the trial's logged one
        #: (it is what was logged, or parsed from it), so its ``start`` need not compare them
        self._suggested: tuple[int, dict[str, Any]] | None = None

    @property
    def _name(self) -> str:
        return type(self.scheduler).__name__

    def resource_of(self, config: dict[str, Any]) -> float | None:
        """The resource a config asks for (``config[resource_attr]``), if any."""
        attr = self.protocol.resource_attr
        value = config.get(attr) if attr is not None else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return None

    # --- proposals ----------------------------------------------------------------------------
    def propose(self) -> tuple[int, dict[str, Any]] | None:
        """Log the next trial's ``suggest`` (and any ``promote``); None: nothing to run yet."""
        state = self.recorder.state
        trial = state.next_trial
        if state.enqueued:  # the user's queued configs come before the scheduler's
            text = state.enqueued[0]
            config = native_config(json.loads(text), trial=trial)
            self.call.check(config, trial)
            payload: str | None = dumps({"origin": "enqueued"})
        else:
            suggestion = self.protocol.suggest_trial(trial)
            if suggestion is None:
                return None
            if isinstance(suggestion, Suggestion):
                if suggestion.resume:
                    return self._resume(suggestion)
                raw, source, reason = suggestion.config, suggestion.promoted_from, suggestion.reason
                extra = suggestion.payload
            else:  # a config alone: a new trial, nothing else (a textbook scheduler's suggest())
                raw, source, reason, extra = suggestion, None, None, None
            config = native_config(raw, trial=trial)
            self.call.check(config, trial)
            if source is not None:
                self.recorder.append(
                    Kind.PROMOTE,
                    trial=source,
                    resource=self.resource_of(config),
                    payload=dumps({"reason": reason or "", "to_trial": trial}),
                )
            payload = dumps(dict(extra)) if extra else None
            text = dumps_config(config)
        self.recorder.append(Kind.SUGGEST, trial=trial, config=text, payload=payload)
        self._suggested = (trial, config)
        self.protocol.logged_config(trial, config)
        return trial, config

    def _resume(self, suggestion: Suggestion) -> tuple[int, dict[str, Any]]:
        """Log the promotion of a paused trial that runs again with ``suggestion.config``."""
        source = suggestion.promoted_from
        assert source is not None  # Suggestion checks that a resume names its trial
        t = self.recorder.state.trials.get(source)
        if t is None or t.status not in WITH_RESULT:
            raise InvalidArgument(
                f"{self._name} asked to resume trial {source}, which is "
                f"{'unknown' if t is None else t.status.value}; only a finished (paused) trial "
                "can be resumed"
            )
        config = native_config(dict(suggestion.config), trial=source)
        self.call.check(config, source)
        self.recorder.append(Kind.PROMOTE, trial=source, resource=self.resource_of(config),
                             payload=dumps({"reason": suggestion.reason, "resume": True}))  # fmt: skip
        return source, config

    def start(self, trial: int, config: dict[str, Any], worker: str | None) -> int:
        """Log (and commit: write-ahead) the ``start`` of ``trial``; returns its attempt.

        The event carries the resource target, and the config when it is not the trial's
        logged one (a paused trial resumed with more resource).
        """
        t = self.recorder.state.trials[trial]
        attempt = t.attempts + 1
        suggested, self._suggested = self._suggested, None
        new_config = None
        if (suggested is None or suggested[0] != trial or suggested[1] is not config) and (
            config != t.config_view()
        ):
            new_config = dumps_config(config)
            self.protocol.logged_config(trial, dict(config))
        # ``dumps({"attempt": attempt})`` of an int, byte for byte, without the encoder
        self.recorder.append(Kind.START, trial=trial, worker=worker, config=new_config,
                             resource=self.resource_of(config),
                             payload=f'{{"attempt":{attempt}}}')  # fmt: skip
        self.recorder.commit_ahead()
        if self.hooks is not None:
            self.hooks.trial_start(trial, config, attempt)
        return attempt

    # --- what running trials tell ------------------------------------------------------------
    def report(
        self,
        trial: int,
        resource: float,
        error: float,
        *,
        stopping: bool,
        metrics: dict[str, float] | None = None,
    ) -> bool:
        """Log a report, ask the scheduler, log its decision; True if the trial should stop
        (``stopping``: a stop was already sent to it; ``metrics``: extra metrics, logged in the
        payload with the first objective, format v2)."""
        payload = None
        if metrics:
            payload = dumps({"metrics": {self.recorder.state.metric[0]: error, **metrics}})
        self.recorder.append(Kind.REPORT, trial=trial, resource=resource, error=error,
                             payload=payload)  # fmt: skip
        if self.hooks is not None:
            self.hooks.report(trial, resource, error)
        loss = error * self.recorder.state.sign  # decision makers minimize
        decision = self.protocol.on_report(trial, resource, loss)
        if not isinstance(decision, Decision):
            raise InvalidArgument(
                f"{self._name}.on_report must return a Decision, got {decision!r}"
            )
        if decision.action in (Action.STOP, Action.PAUSE) and not stopping:
            self._log_decisions([(trial, decision)], resource, trial)
            self.recorder.commit_decision()
            return True
        if decision.action is Action.PROMOTE:
            self._log_decisions([(trial, decision)], resource, trial)
        return stopping

    def result(self, trial: int, outcome: TrialOutcome, resource: float | None) -> TrialOutcome:
        """Log the outcome, commit it, then let the scheduler see it. Returns the outcome as
        logged: its error is the study's (first) objective, as measured, or None (failed:
        e.g. a dict of metrics without an objective)."""
        state = self.recorder.state
        outcome = resolve(outcome, state.metric)
        if resource is None and self.protocol.resource_attr is not None:
            resource = self.resource_of(state.trials[trial].config_view())
        if outcome.error is None:
            self.recorder.append(Kind.FAIL, trial=trial, runtime=outcome.runtime,
                                 payload=dumps({"message": outcome.message}))  # fmt: skip
            self.recorder.commit_result()
            if self.hooks is not None:
                self.hooks.result(trial)
            self._log_decisions(self.protocol.on_result(trial, None, resource), resource, trial)
            return outcome
        metrics = outcome.metrics
        self.recorder.append(Kind.EVALUATE, trial=trial, error=outcome.error,
                             runtime=outcome.runtime, worker=outcome.worker,
                             resource=resource, payload=_metrics_payload(metrics, state.metric))  # fmt: skip
        self.recorder.commit_result()
        if self.hooks is not None:
            self.hooks.result(trial)
        # decision makers minimize: they get the fold's loss (negated under mode max)
        decisions = self.protocol.on_result(trial, state.trials[trial].error, resource)
        self._log_decisions(decisions, resource, trial)
        self.recorder.append(Kind.UPDATE, trial=trial)
        return outcome

    def pending_updates(self) -> None:
        """Results logged without their ``update`` (a crash in between): feed them, log the
        scheduler's decisions on them that the crash lost (a result is committed before the
        scheduler hears of it; its decisions are committed with the next commit point), then
        their ``update``."""
        state = self.recorder.state
        for t in state.not_updated():
            self.protocol.pending_update(t)
            lost = [
                (trial, d)
                for trial, d in self.protocol.result_decisions(t)
                if d.kind is None or state.trials[trial].decision != d.kind  # not logged yet
            ]
            self._log_decisions(lost, t.resource, t.trial)
            self.recorder.append(Kind.UPDATE, trial=t.trial)

    def _log_decisions(
        self, decisions: list[tuple[int, Decision]], resource: float | None, about: int
    ) -> None:
        """Log each decision (``resource``: where trial ``about`` stands)."""
        for trial, decision in decisions:
            if not isinstance(decision, Decision):
                raise InvalidArgument(
                    f"{self._name} returned {decision!r} for trial {trial}, not a Decision"
                )
            if decision.kind is not None:
                self.recorder.append(
                    _KINDS[decision.kind],
                    trial=trial,
                    resource=resource if trial == about else None,
                    payload=dumps({"reason": decision.reason}),
                )
                if self.hooks is not None:
                    self.hooks.decision(trial, decision.kind, decision.reason)


#: ``Kind(value)`` without the enum's lookup machinery (a decision per few events); an unknown
#: value still raises (KeyError)
_KINDS = {kind.value: kind for kind in Kind}


def _metrics_payload(metrics: dict[str, float] | None, metric: tuple[str, ...]) -> str | None:
    """An ``evaluate`` payload carrying every metric (format v2), or None when the result is
    its first objective alone (as a v1 log holds it)."""
    if metrics is None or list(metrics) == [metric[0]]:
        return None
    return dumps({"metrics": metrics})
