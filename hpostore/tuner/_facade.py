"""``HPOTuner``: the textbook's tuner as a facade over the recorder, driver, loop and supervisor."""

from __future__ import annotations

import concurrent.futures as cf
import os
import time
from collections.abc import Callable
from typing import Any

from .._hyper import HyperParameters
from ..callbacks import Callback, Dispatch, check_callbacks
from ..errors import InvalidArgument, StudyInterrupted, TooManyFailures
from ..executors import (
    InlineExecutor,
    RayExecutor,
    TrialExecutor,
    as_trial_executor,
    local_pool,
)
from ..log.trial import TrialStatus
from ..schedulers.base import HPOScheduler
from ..store.base import EventLog, open_store
from ..study import StudyState
from ._asktell import AskTell
from ._checkpoints import Checkpoints
from ._driver import SchedulerDriver
from ._loop import TrialLoop
from ._objective import ObjectiveCall, check_multi_objective, check_objectives
from ._progress import Progress
from ._recorder import Clock, Recorder
from ._resume import catch_up, check_spec, new_study_spec
from ._supervisor import PoolSupervisor
from ._transport import KeywordReports, for_workers


def _check_args(
    scheduler: Any, max_failures: Any, study: Any, n_workers: Any, executor: Any
) -> None:
    if not (
        callable(getattr(scheduler, "suggest", None))
        and callable(getattr(scheduler, "update", None))
    ):
        raise InvalidArgument(
            "scheduler must have suggest() and update(config, error) methods (an HPOScheduler), "
            f"got {type(scheduler).__name__}"
        )
    if max_failures is not None and (not isinstance(max_failures, int) or max_failures < 1):
        raise InvalidArgument(f"max_failures must be a positive int or None, got {max_failures!r}")
    if study is not None and (not isinstance(study, str) or not study):
        raise InvalidArgument(f"study must be a non-empty string, got {study!r}")
    if not isinstance(n_workers, int) or isinstance(n_workers, bool) or n_workers < 1:
        raise InvalidArgument(f"n_workers must be a positive int, got {n_workers!r}")
    if executor is not None and not isinstance(executor, cf.Executor):
        raise InvalidArgument(
            f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}"
        )


def ask_tell_only(**config: Any) -> Any:
    """The objective of a tuner built without one (never called: run() refuses)."""
    raise InvalidArgument("this tuner has no objective: drive it with ask()/tell()")


class HPOTuner(AskTell, HyperParameters):
    """Runs ``objective(**config)`` on the configurations a scheduler suggests, logging each step.

    >>> from scipy import stats
    >>> from hpostore import BasicScheduler, RandomSearcher
    >>> searcher = RandomSearcher({"x": stats.uniform(-1, 2)}, seed=0)
    >>> tuner = HPOTuner(BasicScheduler(searcher), lambda x: x * x, verbose=False)
    >>> tuner.run(number_of_trials=3).incumbent_error < 1
    True
    >>> len(tuner.records)
    3

    Args:
        scheduler: an :class:`HPOScheduler` (textbook) or a trial-aware scheduler (ASHA...).
        objective: None for a tuner driven only by ``ask()``/``tell()``; else called as
            ``objective(**config)``; returns the error to minimize (a finite
            number, or a dict with an ``"error"`` entry). Anything else it returns, and anything
            it raises but Ctrl-C, is a failed trial (a ``fail`` event), and the study goes on.
            With a ``report`` parameter it gets ``report(resource, error) -> stop?``; with a
            ``checkpoint_dir`` parameter, a directory of its own per trial, the same for every
            attempt and promotion of the trial (:meth:`checkpoint_dir`).
        store: an :class:`~hpostore.store.EventLog` or a path for :func:`open_store` (default:
            an in-memory DuckDB); ``study``: the study's name in it.
        max_failures: stop the run (:class:`TooManyFailures`) after that many failures in a row.
        trust_log: continue with the logged configs when a re-executed user searcher proposes
            different ones, instead of raising :class:`ReplayDivergence`.
        clock: the study clock (a simulator passes its own).
        n_workers: trials in flight; k > 1 runs them on a local process pool (forkserver or
            spawn; the objective must be picklable). 1 and no executor: the sequential loop.
        executor: any :class:`concurrent.futures.Executor` (a process or thread pool,
            :class:`hpostore.executors.RayExecutor`, Dask's); one that declares
            :class:`~hpostore.executors.TrialExecutor` sets the number of trials in flight.
        checkpoint_root: where checkpoint directories go (default ``<store>.checkpoints``).
        delete_checkpoints: delete a trial's checkpoints once no one will read them (kept: the
            incumbent's, unfinished trials', paused trials' a scheduler may resume).
        metric, mode: the metric to optimize and "min" or "max" (Ray Tune / Syne Tune names;
            default: minimize ``"error"``). The objective returns its value, or a dict of
            metrics holding it (every metric is logged). Lists of names and modes make a
            multi-objective study (:attr:`pareto_front`; the objective returns a dict with
            each); ``incumbent_error`` is the first metric's best value as measured.
        resource_attr: the keyword of the resource in the objective's reports (Syne Tune's
            ``report(epoch=e, validation_error=v)`` with ``resource_attr="epoch"`` and
            ``metric="validation_error"``); default: the scheduler's (``max_epochs``).
        callbacks: :class:`~hpostore.Callback` objects, told of each trial's start, report,
            result, the scheduler's decisions and the end of a session (MLflow, W&B, ...).

    Besides ``run()``: ``ask()``/``tell()``, ``enqueue()``, ``set_trial_attr()`` and
    ``set_study_attr()`` (:mod:`._asktell`); a session they open ends at :meth:`close`.
    """

    def __init__(
        self,
        scheduler: HPOScheduler,
        objective: Callable[..., Any] | None = None,
        *,
        store: EventLog | str | os.PathLike[str] | None = None,
        study: str | None = None,
        verbose: bool = True,
        max_failures: int | None = 10,
        trust_log: bool = False,
        clock: Clock = time.monotonic,
        n_workers: int = 1,
        executor: cf.Executor | None = None,
        checkpoint_root: str | os.PathLike[str] | None = None,
        delete_checkpoints: bool = False,
        callbacks: list[Callback] | None = None,
        metric: str | list[str] = "error",
        mode: str | list[str] = "min",
        resource_attr: str | None = None,
    ) -> None:
        _check_args(scheduler, max_failures, study, n_workers, executor)
        self.callbacks = check_callbacks(callbacks)
        if resource_attr is not None and not (isinstance(resource_attr, str) and resource_attr):
            raise InvalidArgument(f"resource_attr must be a name, got {resource_attr!r}")
        self.resource_attr = resource_attr
        self._asked: dict[int, list[Any]] = {}
        #: no objective: ask()/tell() only (the user runs the trials)
        self.ask_tell_only = objective is None
        if objective is None:
            objective = ask_tell_only
        self.call = ObjectiveCall(objective)
        self.call.objectives = check_objectives(metric, mode)
        check_multi_objective(scheduler, self.call.objectives[0])
        executor_clock = getattr(executor, "clock", None)  # a simulator's public clock
        if executor_clock is not None and clock is not executor_clock:
            if clock is not time.monotonic:
                raise InvalidArgument(
                    f"the executor {type(executor).__name__} keeps its own clock; pass "
                    "clock=executor.clock to HPOTuner (or leave clock out)"
                )
            clock = executor_clock  # simulated time: the executor's clock is the study's
        self.n_workers, self.executor, self.scheduler = n_workers, executor, scheduler
        self.objective, self.verbose, self.max_failures = objective, verbose, max_failures
        self.trust_log, self.clock = trust_log, clock
        self.delete_checkpoints = delete_checkpoints
        self.study: str = study or "default"
        self._owns_store = not isinstance(store, EventLog)
        opened: EventLog | None = None
        try:
            if store is None:
                store = opened = open_store(":memory:")
            elif not isinstance(store, EventLog):
                # a simulated study's objective costs nothing to redo: commit in batches
                durability = "batched" if executor_clock is not None else "durable"
                store = opened = open_store(os.fspath(store), durability=durability)
            self.store: EventLog = store
            self._recorder = Recorder(store, self.study, clock)
            self.worker = self._recorder.worker
            self._driver = SchedulerDriver(scheduler, self._recorder, self.call)
            self._hooks = Dispatch(self, self.callbacks)
            self._driver.hooks = self._hooks
            self._checkpoints = Checkpoints(checkpoint_root, str(store.path), self.study)
            self._caught_up = not self._recorder.state.trials
            if self._recorder.state.spec is not None:
                check_spec(self._recorder.state.spec, scheduler, self.call.name, self.study,
                           str(store.path), self.call.objectives)  # fmt: skip
        except BaseException:
            if opened is not None:  # a failed constructor releases what it opened
                opened.close()
            raise

    # --- the textbook's bookkeeping, as views of the log -----------------------------------
    @property
    def state(self) -> StudyState:
        """The live fold of the study's events."""
        return self._recorder.state

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.state.records()

    @property
    def incumbent(self) -> dict[str, Any] | None:
        return self.state.incumbent

    @property
    def incumbent_error(self) -> float | None:
        return self.state.incumbent_error

    @property
    def pareto_front(self) -> list[dict[str, Any]]:
        """The non-dominated results (multi-objective; under one objective, the best ones):
        ``{"trial", "config", "metrics"}`` of each, in trial order, metrics as measured."""
        state = self.state
        return [
            {
                "trial": t.trial,
                "config": t.config,
                "metrics": t.metrics(state.sign, state.metric[0]),
            }
            for t in state.pareto_front()
        ]

    @property
    def incumbent_trajectory(self) -> list[float]:
        return list(self.state.trajectory)

    @property
    def cumulative_runtime(self) -> list[float]:
        """Study time (seconds, summed over sessions) at which each finished trial was logged."""
        return list(self.state.finished_elapsed)

    @property
    def current_runtime(self) -> float:
        finished = self.state.finished_elapsed
        return finished[-1] if finished else 0.0

    def checkpoint_dir(self, trial: int) -> str:
        """The directory of ``trial``'s checkpoints (created): the same for every attempt and
        promotion of the trial. Under ``checkpoint_root`` if given, else
        ``<store path>.checkpoints/<study>`` (the study name encoded: never a path); a temporary
        directory, removed at :meth:`close`, for an in-memory store."""
        return self._checkpoints.dir(trial)

    # --- running ----------------------------------------------------------------------------
    def run(self, number_of_trials: int, *, time_budget_s: float | None = None) -> HPOTuner:
        """Run until the study holds ``number_of_trials`` results (resuming if it has some).

        A result is an ``evaluate`` event: a trial that a multi-fidelity scheduler resumed with
        more resource counts once per rung it finished. Unlike the textbook's loop, the count is
        the study's total, so running the same script again after a crash finishes the job
        instead of starting it over. ``time_budget_s``: start no trial once this call has run
        that long (by the tuner's clock); trials already running finish and are logged.
        """
        if time_budget_s is not None and not (
            isinstance(time_budget_s, (int, float))
            and not isinstance(time_budget_s, bool)
            and time_budget_s >= 0
        ):
            raise InvalidArgument(
                f"time_budget_s must be a non-negative number of seconds or None, got {time_budget_s!r}"
            )
        if not isinstance(number_of_trials, int) or isinstance(number_of_trials, bool) or number_of_trials < 0:  # fmt: skip
            raise InvalidArgument(
                f"number_of_trials must be a non-negative int, got {number_of_trials!r}"
            )
        if self.ask_tell_only:
            raise InvalidArgument(
                "this tuner has no objective: drive it with ask()/tell(), or pass "
                "HPOTuner(scheduler, objective) to run()"
            )
        state = self.state
        if (
            state.spec is not None
            and state.n_finished >= number_of_trials
            and not state.not_updated()
        ):
            Progress(target=0, done=0, verbose=self.verbose, budget_s=None, clock=None).say(
                f"Study {self.study!r} already holds {state.n_finished} finished trials "
                f"(incumbent error {state.incumbent_error}); nothing to run."
            )
            return self
        if self._asked:
            raise InvalidArgument(
                f"study {self.study!r}: trials {sorted(self._asked)} were asked and not told; "
                "tell them before run()"
            )
        loop = self._loop(time_budget_s)
        if self._recorder.session is None:
            self._recorder.begin(
                lambda: new_study_spec(self.scheduler, self.call.name, self.call.objectives)
            )
        reason = "completed"
        interrupted: int | None = None
        progress = Progress(target=number_of_trials, done=state.n_finished, verbose=self.verbose,
                            budget_s=time_budget_s, clock=self._recorder.session_s)  # fmt: skip
        if not progress.silent():  # a silent one would only cost time on every trial
            self._hooks.listeners.append(progress)
        try:
            catch_up(self._driver.protocol, state, caught_up=self._caught_up,
                     trust_log=self.trust_log, study=self.study)  # fmt: skip
            self._caught_up = True
            self._driver.pending_updates()
            loop.run(number_of_trials)
        except TooManyFailures:
            reason = "max_failures"
            raise
        except KeyboardInterrupt:
            reason = "interrupted"
            session = self._recorder.session
            interrupted = sum(
                1
                for t in state.trials.values()
                if t.session == session and t.status is TrialStatus.INTERRUPTED
            )
        except BaseException as exc:
            reason = f"error: {type(exc).__name__}"
            raise
        finally:
            if progress in self._hooks.listeners:
                self._hooks.listeners.remove(progress)
            progress.close()
            self._end(reason)
        if interrupted is not None:
            raise StudyInterrupted(
                f"interrupted {interrupted} running trial{'s' if interrupted != 1 else ''} of "
                f"study {self.study!r}; run the same command again to resume"
            )
        return self

    def _end(self, reason: str) -> None:
        """End the session (the ``end`` event), then tell the callbacks."""
        self._asked.clear()
        self._recorder.end(reason)
        self._hooks.study_end(reason)

    def _checkpoints_cleanup(self) -> None:
        self._checkpoints.cleanup(self.state)

    def _loop(self, budget_s: float | None) -> TrialLoop:
        executor: TrialExecutor
        rebuild: Callable[[], TrialExecutor] | None = None
        if self.executor is not None:
            executor = as_trial_executor(
                self.executor, self.n_workers if self.n_workers > 1 else None
            )
        elif self.n_workers > 1:
            n = self.n_workers
            rebuild = lambda: local_pool(n)  # noqa: E731
            executor = rebuild()
        else:
            executor = InlineExecutor()
        objective = self.objective
        if executor.remote and not isinstance(self.executor, RayExecutor):  # Ray: by value
            try:
                objective = for_workers(self.objective)
            except Exception:  # not even cloudpickle can: check_picklable says why
                objective = self.objective
        if self.call.wants_report:  # report(epoch=e, validation_error=v) too
            resource_attr = self.resource_attr or self._driver.protocol.resource_attr
            objective = KeywordReports(objective, resource_attr, self.call.objectives[0][0])
        self.call.objective = objective
        if executor.remote:
            self.call.check_picklable()
        return TrialLoop(
            recorder=self._recorder, driver=self._driver, call=self.call,
            supervisor=PoolSupervisor(executor, rebuild, self.study), checkpoints=self._checkpoints,
            delete_checkpoints=self.delete_checkpoints, max_failures=self.max_failures,
            verbose=False, budget_s=budget_s,  # the lines are Progress's (a listener)
        )  # fmt: skip

    # --- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """End a session that ask()/tell() opened (asked trials not told are handed out again
        after resume), and close the store if the tuner opened it (a path or the default
        in-memory store)."""
        if self._recorder.session is not None:
            self._end("interrupted" if self._asked else "completed")
        if self._owns_store:
            self.store.close()
        self._checkpoints.close()

    def __enter__(self) -> HPOTuner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
