"""The base of the built-in trial schedulers: they read trials from the study's fold.

A built-in :class:`~hpostore.schedulers.TrialScheduler` keeps no record of its own per trial.
The tuner calls :meth:`FoldScheduler.restore` once per session with the **live**
:class:`~hpostore.study.StudyState` (the object its recorder folds every appended event into)
and applies each event before the scheduler hears of it, so config, ``suggest`` payload,
status, result, learning curve and decisions are read from that state. What a scheduler keeps
is derived from it: indexes (sorted errors per rung, running medians) rebuilt by ``restore``
and brought up to date from the state's append-only lists, so that a decision costs
``O(log n)`` in the number of trials, not a scan.

Driven by hand (no tuner, no ``restore``), the scheduler folds its own calls: each
``suggest_trial``, ``on_report`` and ``on_result`` appends the events the tuner would log to a
private state first, so by-hand use and the tuner go through the same code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument, ReplayDivergence
from ..log.events import FORMAT_VERSION, dumps, dumps_config
from ..log.trial import WITH_RESULT, TrialStatus
from ..searchers.base import HPOSearcher
from ..space import native_values, to_native
from .base import CONTINUE, Action, Decision, Suggestion, TrialScheduler

if TYPE_CHECKING:
    from ..study import StudyState, TrialState


def has_result(t: TrialState) -> bool:
    """The trial's latest run ended with a result (finished, paused at a rung or stopped)."""
    return t.status in WITH_RESULT  # a tuple of the fold's members: a test by identity


def settled(t: TrialState) -> bool:
    """The trial's latest run ended (a result or a failure)."""
    status = t.status
    return status in WITH_RESULT or status is TrialStatus.FAILED


_NO_PAYLOAD: Mapping[str, Any] = {}


@lru_cache(maxsize=1024)
def _parse_payload(text: str) -> Mapping[str, Any]:
    parsed: Mapping[str, Any] = json.loads(text)
    return parsed


def payload_of(t: TrialState) -> Mapping[str, Any]:
    """The trial's ``suggest`` payload, read-only (``t.payload`` parses the JSON into a new dict
    on every call). Schedulers write a handful of distinct payloads (``{"bracket": 0}``...), so
    parsing each text once serves every trial; the cache is bounded for the unique ones."""
    text = t.payload_json
    return _NO_PAYLOAD if text is None else _parse_payload(text)


class FoldScheduler(TrialScheduler):
    """Shared machinery: the bound fold, by-hand events, searcher calls, restore, snapshot."""

    resource_attr: str | None
    _state: StudyState | None
    _own_fold: bool
    _seed: int

    def _init_fold(self) -> None:
        if not isinstance(self.searcher, HPOSearcher) and not callable(
            getattr(self.searcher, "sample_configuration", None)
        ):
            raise InvalidArgument(
                f"searcher must have a sample_configuration() method, got {type(self.searcher).__name__}"
            )
        self._state = None
        self._own_fold = False
        self._seed = 0
        self._reset_index()

    def bind_seed(self, seed: int) -> None:
        self._seed = seed

    @property
    def state(self) -> StudyState:
        """The fold this scheduler reads (a private one when it is driven by hand)."""
        if self._state is None:
            from ..study import StudyState

            state = StudyState("by-hand")
            self._state, self._own_fold = state, True
            spec = {"format_version": FORMAT_VERSION, "seed": self._seed, "by_hand": True}
            self._log("study", payload=dumps(spec))
            self._log("session", payload=dumps({"reason": "new"}))
            self._catch_up()  # an empty fold: the indexes are up to date
        return self._state

    def _log(self, kind: str, trial: int | None = None, **fields: Any) -> None:
        """Append what the tuner would log, to the private fold (by hand only)."""
        state = self.state
        if not self._own_fold:
            return
        get = fields.get
        state.apply_row((state.study, state.seq + 1, 0, state.elapsed, "by-hand", kind, trial,
                         get("config"), get("resource"), get("error"), None, None, get("payload")))  # fmt: skip

    def _log_decisions(self, decisions: list[tuple[int, Decision]]) -> None:
        for trial, decision in decisions:
            if decision.kind is not None:
                self._log(decision.kind, trial)  # its reason goes back to the caller

    # --- what the tuner calls ---------------------------------------------------------------
    def restore(self, state: StudyState) -> None:
        """Bind the live fold and rebuild the indexes and the searcher from it (one pass)."""
        self._state, self._own_fold = state, False
        self._reset_index()
        self._catch_up()
        self._restore_searcher(state)

    def on_report(self, trial: int, resource: float, error: float) -> Decision:
        state = self._state if self._state is not None else self.state  # (a call less)
        t = state.trials.get(trial)
        if t is None:
            return CONTINUE  # not a trial of this study
        if self._own_fold:  # by hand (the tuner logged the report already)
            self._log("report", trial, resource=float(resource), error=float(error))
        decision = self._decide_report(t, float(resource), float(error))
        if decision.action is Action.STOP and not t.stopped and self._own_fold:
            self._log_decisions([(trial, decision)])
        return decision

    def on_result(
        self, trial: int, error: float | None, resource: float | None
    ) -> list[tuple[int, Decision]]:
        state = self.state
        t = state.trials[trial]
        level = resource if resource is not None else self._target(t)
        if error is None:
            self._log("fail", trial, payload=dumps({"message": "by hand"}))
        else:
            self._log("evaluate", trial, error=float(error), resource=level)
            self.searcher.update(
                t.config, error, additional_info={"trial": trial, "resource": level}
            )
        decisions = self._decide_result(t)
        if self._own_fold:  # by hand: the tuner logs the decisions and the update itself
            self._log_decisions(decisions)
            if error is not None:
                self._log("update", trial)
        return decisions

    def result_decisions(self, trial: int) -> list[tuple[int, Decision]]:
        """What :meth:`on_result` decides on trial ``trial``'s result (a function of the fold)."""
        return self._decide_result(self.state.trials[trial])

    def snapshot(self) -> dict[str, Any]:
        """The indexes, and the trials as the fold holds them (equal live and restored)."""
        self._catch_up()
        state = self.state
        trials = {
            str(t.trial): [t.config_json, t.payload_json, t.status.value, t.error, list(t.curve),
                           t.stopped, sorted((r, e) for r, e in t.results if r is not None)]
            for t in state.trials.values()
        }  # fmt: skip
        return {"trials": trials, "index": self._index_snapshot()}

    # --- for subclasses ---------------------------------------------------------------------
    def _reset_index(self) -> None:
        """Forget the indexes (restore rebuilds them from the fold with :meth:`_catch_up`)."""

    def _catch_up(self) -> None:
        """Bring the indexes up to date with the fold's append-only lists."""

    def _index_snapshot(self) -> Any:
        return None

    def _decide_report(self, t: TrialState, resource: float, error: float) -> Decision:
        return CONTINUE

    def _decide_result(self, t: TrialState) -> list[tuple[int, Decision]]:
        return []

    def _target(self, t: TrialState) -> float | None:
        """The resource trial ``t``'s current run asks for (None: the scheduler sets none)."""
        value = t.config_view().get(self.resource_attr) if self.resource_attr else None
        return value if isinstance(value, (int, float)) else payload_of(t).get("rung")

    def _target_of(
        self, config: Mapping[str, Any], payload: Mapping[str, Any] | None
    ) -> float | None:
        value = config.get(self.resource_attr) if self.resource_attr else None
        if isinstance(value, (int, float)):
            return value
        return payload.get("rung") if payload is not None else None

    def _fresh(self, trial: int, payload: dict[str, Any], resource: float | None) -> Suggestion:
        sampled = self.searcher.sample_configuration()
        config = native_values(sampled, where=f"trial {trial}")
        if self.resource_attr is not None and resource is not None:
            config[self.resource_attr] = resource
        if self._own_fold or self._state is None:  # by hand (the first call binds the fold)
            self._log_new(trial, config, payload)
        return Suggestion(config, payload or None)

    def _promote(
        self, trial: int, source: int, level: float, payload: dict[str, Any], reason: str
    ) -> Suggestion:
        config = self.state.trials[source].config
        if self.resource_attr is not None:
            config[self.resource_attr] = level
        if self._own_fold:  # by hand (the tuner logs what it is given)
            self._log("promote", source, resource=level,
                      payload=dumps({"reason": reason, "to_trial": trial}))  # fmt: skip
            self._log_new(trial, config, payload)
        return Suggestion(config, payload, promoted_from=source, reason=reason)

    def _resume(self, source: int, config: dict[str, Any], level: float, reason: str) -> Suggestion:
        if self._own_fold:  # by hand (the tuner logs what it is given)
            self._log("promote", source, resource=level,
                      payload=dumps({"reason": reason, "resume": True}))  # fmt: skip
            self._log("start", source, config=dumps_config(config), resource=level)
        return Suggestion(config, promoted_from=source, reason=reason, resume=True)

    def _log_new(self, trial: int, config: dict[str, Any], payload: dict[str, Any]) -> None:
        self._log("suggest", trial, config=dumps_config(config),
                  payload=dumps(payload) if payload else None)  # fmt: skip
        self._log("start", trial, resource=self._target_of(config, payload))

    # --- the searcher -------------------------------------------------------------------------
    def _restore_searcher(self, state: StudyState) -> None:
        """Bring the searcher to where the live calls left it: one sample per fresh trial,
        one update per result (in the order the results arrived)."""
        fresh = [i for i, t in state.trials.items() if "promoted_from" not in t.payload]
        fresh.sort()
        results = [
            (json.loads(config), error, {"trial": t, "resource": resource})
            for t, config, error, _, resource in state.evaluations
        ]
        # sampled, never observed: a failed trial stays pending in the live searcher too
        pending = [state.trials[i].config for i in fresh if not state.trials[i].results]
        restorable = getattr(self.searcher, "restorable", None)
        if callable(restorable) and restorable():
            self.searcher.restore_results(len(fresh), results, pending)
            return
        self._reexecute_searcher(state, set(fresh))

    def _reexecute_searcher(self, state: StudyState, fresh: set[int]) -> None:
        # the live calls, in log order: a sample per fresh trial's suggest, an update per result
        # (each ``update`` event follows its ``evaluate``; a crash between them only delays it)
        results: dict[int, list[tuple[str, float, float | None]]] = {}
        for i, config, error, _, resource in reversed(state.evaluations):
            results.setdefault(i, []).append((config, error, resource))
        for code, trial in state.calls:
            t = state.trials[trial]
            if code == 0 and trial in fresh:
                sampled = self.searcher.sample_configuration()
                redrawn = {k: to_native(v, where=f"trial {trial}") for k, v in sampled.items()}
                logged = {k: v for k, v in t.config.items() if k in redrawn}
                if redrawn != logged:
                    raise ReplayDivergence(
                        f"trial {trial}: re-executing the searcher to resume proposed {redrawn} "
                        f"but the log records {logged}; seed the searcher so that it is "
                        "deterministic given the log",
                        trial=trial,
                    )
            elif code == 1 and results.get(trial):
                config, error, resource = results[trial].pop()
                self.searcher.update(
                    json.loads(config), error, {"trial": trial, "resource": resource}
                )
