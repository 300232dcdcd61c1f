"""Ask/tell: the loop driven by the user (Optuna's interface), on the log like ``run()``.

``trial = tuner.ask()`` logs the trial's ``suggest`` and ``start`` (committed before it is
handed out), ``trial.report(resource, error, **metrics)`` its intermediate results (extra
metrics logged too, as in ``run()``), ``tuner.tell(trial, value)`` its result (or
``failed="why"``). A trial asked and never told (the process died, or :meth:`close` came first)
is handed out again, same id and config, by the next ``ask()`` after resume;
``tuner.release(trial, reason=...)`` hands one back at once (an ``interrupt`` event; the next
``ask()`` returns it, next attempt). ``tuner.pending_trials`` are the trials asked and not told.
``enqueue(config)`` queues a chosen config ahead of the scheduler; user attributes are ``attr``
events. ``run()`` goes through the same driver calls (``propose``/``start``/``result``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..channels import check_metrics
from ..errors import HPOStoreError, InvalidArgument
from ..log.events import Kind, dumps, dumps_config
from ..log.trial import UNFINISHED
from ..space import ConfigSpace
from ._objective import TrialOutcome, classify, native_config
from ._resume import catch_up, new_study_spec

if TYPE_CHECKING:
    from ..study import StudyState
    from ._driver import SchedulerDriver
    from ._recorder import Recorder


@dataclass(frozen=True, slots=True)
class Trial:
    """A trial handed out by :meth:`HPOTuner.ask` (one attempt of it).

    ``id`` and ``config`` are the log's; ``attempt`` counts from 1 (a trial handed out again
    after a crash has the next one); ``checkpoint_dir`` is the trial's own directory, the same
    for every attempt.
    """

    id: int
    config: dict[str, Any]
    attempt: int
    checkpoint_dir: str | None = None
    _report: Callable[..., bool] | None = field(default=None, repr=False, compare=False)

    def report(self, resource: float | None = None, error: float | None = None, **metrics: Any) -> bool:  # fmt: skip
        """Log an intermediate result; returns True when the scheduler wants the trial stopped
        (then :meth:`HPOTuner.tell` it with its last value). Keyword form too:
        ``report(epoch=3, validation_error=0.2)`` with ``resource_attr``/``metric`` names."""
        if self._report is None:
            raise InvalidArgument(f"trial {self.id} was not handed out by ask(); it cannot report")
        return self._report(self, resource, error, metrics)


class AskTell:
    """The ask/tell half of :class:`HPOTuner` (a mixin: it uses the tuner's parts)."""

    _recorder: Recorder
    _driver: SchedulerDriver
    study: str
    trust_log: bool
    _caught_up: bool
    delete_checkpoints: bool
    #: trials handed out by ask() in this session and not yet told: id -> [attempt, resource,
    #: stop sent, worker]
    _asked: dict[int, list[Any]]

    @property
    def state(self) -> StudyState:
        return self._recorder.state

    def checkpoint_dir(self, trial: int) -> str:
        raise NotImplementedError  # HPOTuner's

    def _with_checkpoints(self) -> bool:
        return bool(getattr(self._driver.call, "wants_checkpoint", False))

    # --- the session --------------------------------------------------------------------------
    def _session(self) -> None:
        """Open a session if none is (the ``study``/``session`` events, catch-up), as run() does."""
        if self._recorder.session is not None:
            return
        self._recorder.begin(
            lambda: new_study_spec(
                self._driver.scheduler, self._driver.call.name, self._driver.call.objectives
            )
        )
        catch_up(self._driver.protocol, self.state, caught_up=self._caught_up,
                 trust_log=self.trust_log, study=self.study)  # fmt: skip
        self._caught_up = True
        self._driver.pending_updates()

    def _trial(self, trial: int, config: dict[str, Any], attempt: int) -> Trial:
        directory = self.checkpoint_dir(trial) if self._with_checkpoints() else None
        return Trial(trial, dict(config), attempt, directory, self._report_of)

    # --- ask / tell ---------------------------------------------------------------------------
    def ask(
        self,
        *,
        trial: int | None = None,
        worker: str | None = None,
        exclude: Collection[int] = (),
    ) -> Trial:
        """The next trial to run: one asked before and never told (after a crash, or handed
        back by :meth:`release`), else an enqueued config, else the scheduler's suggestion.
        Its ``start`` is committed first.

        ``trial``: hand out that unfinished trial again (next attempt, same config) instead;
        ``worker``: who runs it, logged on its ``start`` and result (default: this process,
        ``host:pid``); ``exclude``: unfinished trials not to hand out again now (e.g. kept for
        the worker that ran them)."""
        self._session()
        state = self.state
        if trial is not None:
            t = state.trials.get(trial) if isinstance(trial, int) else None
            if t is None or t.status not in UNFINISHED or trial in self._asked:
                raise InvalidArgument(
                    f"study {self.study!r}: ask(trial={trial!r}) hands out again an unfinished "
                    "trial not held by ask(); this one is "
                    + ("unknown" if t is None else
                       "held (asked and not told)" if trial in self._asked else t.status.value)
                )  # fmt: skip
            tid, config = t.trial, t.config
        else:
            again = [t for t in state.unfinished() if t.trial not in self._asked
                     and t.trial not in exclude]  # fmt: skip
            if again:
                tid, config = again[0].trial, again[0].config
            else:
                proposed = self._driver.propose()
                if proposed is None:
                    raise InvalidArgument(
                        f"{type(self._driver.scheduler).__name__} has nothing to suggest now "
                        "(it waits for results of trials asked before: tell them first)"
                    )
                tid, config = proposed
        worker = self._recorder.worker if worker is None else str(worker)
        attempt = self._driver.start(tid, config, worker)
        self._asked[tid] = [attempt, None, False, worker]
        return self._trial(tid, config, attempt)

    def release(self, trial: Trial | int, *, reason: str, worker: str | None = None) -> None:
        """Hand back an asked trial that will not be told (its worker died, lost its lease,
        gave up): an ``interrupt`` event with ``reason`` (and ``worker``), committed; the next
        :meth:`ask` returns it again, same id and config, as its next attempt."""
        tid, _ = self._held(trial, "release")
        info = {"reason": str(reason)} if worker is None else {"reason": str(reason),
                                                               "worker": str(worker)}  # fmt: skip
        del self._asked[tid]
        self._recorder.append(Kind.INTERRUPT, trial=tid, payload=dumps(info))
        self._recorder.commit_ahead()

    @property
    def pending_trials(self) -> list[Trial]:
        """The trials asked in this session and not yet told (nor released), by id."""
        return [self._trial(tid, self.state.trials[tid].config, held[0])
                for tid, held in sorted(self._asked.items())]  # fmt: skip

    def _held(self, trial: Trial | int, verb: str) -> tuple[int, list[Any]]:
        tid = trial.id if isinstance(trial, Trial) else trial
        held = self._asked.get(tid) if isinstance(tid, int) else None
        attempt = trial.attempt if isinstance(trial, Trial) else None
        if held is None or (attempt is not None and attempt != held[0]):
            raise HPOStoreError(
                f"study {self.study!r}: cannot {verb} trial {tid!r}: it was not handed out by "
                "ask() in this session, or it was already told (each asked trial is told once); "
                "nothing was logged"
            )
        return tid, held

    def _report_of(
        self, trial: Trial, resource: float | None, error: float | None, metrics: dict[str, Any]
    ) -> bool:
        tid, held = self._held(trial, "report")
        attr = getattr(self, "resource_attr", None) or self._driver.protocol.resource_attr
        metric = self._driver.call.objectives[0][0]
        if resource is None and attr is not None:
            resource = metrics.get(attr)
        if error is None:
            error = metrics.get(metric)
        # the rest are extra metrics, logged with the report (as run()'s report does)
        extra = check_metrics({k: v for k, v in metrics.items() if k not in (attr, metric)})
        if not (isinstance(resource, (int, float)) and isinstance(error, (int, float))
                and math.isfinite(resource) and math.isfinite(error)):  # fmt: skip
            raise InvalidArgument(
                f"trial {tid}: report(resource, error) needs two finite numbers, got "
                f"{resource!r}, {error!r}"
            )
        held[1] = float(resource)
        stop = self._driver.report(tid, float(resource), float(error), stopping=held[2],
                                   metrics=extra)  # fmt: skip
        held[2] = held[2] or stop
        return bool(stop)

    def tell(self, trial: Trial | int, value: Any = None, *, failed: str | None = None) -> None:
        """Log the result of an asked trial: ``value`` (the error, or a dict of metrics), or
        ``failed="why"`` for a failed one. A value the objective could not return (None, NaN,
        not a number) fails the trial, as in ``run()``."""
        tid, held = self._held(trial, "tell")
        if failed is not None and value is not None:
            raise InvalidArgument(f"trial {tid}: tell() takes a value or failed=..., not both")
        metrics = None
        message: str | None
        if failed is not None:
            error, message = None, str(failed) or "failed"
        else:
            error, metrics, message = classify(value)
        t = self.state.trials[tid]
        runtime = self._recorder.elapsed() - (t.started_at or 0.0)
        outcome = TrialOutcome(error, message, runtime, held[3], metrics)
        del self._asked[tid]
        self._driver.result(tid, outcome, held[1])
        if self.delete_checkpoints:
            self._checkpoints_cleanup()

    def _checkpoints_cleanup(self) -> None:
        raise NotImplementedError  # HPOTuner's

    # --- enqueue and attributes ---------------------------------------------------------------
    def enqueue(self, config: Mapping[str, Any]) -> None:
        """Queue ``config`` to run before the scheduler's next suggestions (logged: a resumed
        study still runs it). Checked against the config space when the searcher has one."""
        config = native_config(config, trial=self.state.next_trial)
        space = getattr(getattr(self._driver.scheduler, "searcher", None), "config_space", None)
        if space is not None:  # the scheduler's resource (max_epochs) may come on top
            attr = self._driver.protocol.resource_attr
            rest = {k: v for k, v in config.items() if k != attr}
            checked = ConfigSpace(space).check_config(rest, what=f"enqueue({config})")
            config = {**checked, **{k: v for k, v in config.items() if k == attr}}
        self._session()
        self._recorder.append(Kind.ENQUEUE, config=dumps_config(config))
        self._recorder.commit_ahead()

    def set_trial_attr(self, trial: Trial | int, key: str, value: Any) -> None:
        """Attach ``key = value`` (any JSON value) to a trial of the study (an ``attr`` event)."""
        tid = trial.id if isinstance(trial, Trial) else trial
        if tid not in self.state.trials:
            raise InvalidArgument(f"study {self.study!r} has no trial {tid!r}")
        self._attr(tid, key, value)

    def set_study_attr(self, key: str, value: Any) -> None:
        """Attach ``key = value`` (any JSON value) to the study (an ``attr`` event)."""
        self._attr(None, key, value)

    def _attr(self, trial: int | None, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"an attribute key must be a non-empty string, got {key!r}")
        try:
            payload = dumps({"key": key, "value": value})
            json.loads(payload)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(
                f"attribute {key!r}: the value must be plain JSON (numbers, strings, lists, "
                f"dicts, no NaN), got {type(value).__name__}: {exc}"
            ) from None
        self._session()
        self._recorder.append(Kind.ATTR, trial=trial, payload=payload)
        self._recorder.commit_ahead()

    @property
    def study_attrs(self) -> dict[str, Any]:
        """The study's user attributes (from the log)."""
        return dict(self.state.attributes.get(None, {}))

    def trial_attrs(self, trial: Trial | int) -> dict[str, Any]:
        """A trial's user attributes (from the log)."""
        tid = trial.id if isinstance(trial, Trial) else trial
        return dict(self.state.attributes.get(tid, {}))
