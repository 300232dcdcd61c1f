"""The tuner: the textbook's loop, every step appended to the event log.

``HPOTuner(scheduler, objective).run(n)`` behaves like the textbook's; with ``store=`` and
``study=`` the same loop is durable: each trial's ``suggest``/``start`` events are on disk
before the objective runs, the bookkeeping attributes are views of the replayed log, and
running the same script again continues the study where it stopped.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import inspect
import json
import math
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol

from . import __version__
from ._hyper import HyperParameters
from .errors import (
    ConfigSpaceError,
    CorruptLogError,
    HPOStoreError,
    InvalidArgument,
    ObjectiveSignatureError,
    ReplayDivergence,
    StudyMismatch,
    TooManyFailures,
)
from .log.events import FORMAT_VERSION, dumps, dumps_config
from .schedulers.base import Action, Decision, HPOScheduler, TrialScheduler
from .space import ConfigSpace, to_native
from .store.base import EventLog, open_store
from .study import REPLAY_COLUMNS, StudyState, TrialState, TrialStatus, replay_table

_SUGGEST = 0


class Clock(Protocol):
    """Seconds from an arbitrary origin (``time.monotonic`` by default; a simulator may drive it)."""

    def __call__(self) -> float: ...


def native_config(config: Any, *, trial: int) -> dict[str, Any]:
    """A config as a dict of plain JSON scalars (numpy scalars unwrapped)."""
    if not isinstance(config, Mapping):
        raise ConfigSpaceError(
            f"trial {trial}: the scheduler suggested a {type(config).__name__}, not a dict"
        )
    out = {}
    for name, value in config.items():
        if not isinstance(name, str):
            raise ConfigSpaceError(f"trial {trial}: config keys must be strings, got {name!r}")
        out[name] = to_native(value, where=f"trial {trial} config[{name!r}]")
    return out


def as_error(value: Any) -> tuple[float | None, str | None]:
    """(error, None) for a usable objective value, else (None, why not)."""
    if value is None:
        return (
            None,
            "the objective returned None; it must return the error to minimize (a finite number)",
        )
    if isinstance(value, (str, bytes, bool)):
        return (
            None,
            f"the objective returned a {type(value).__name__} ({value!r:.80}), not a number",
        )
    try:
        error = float(value)
    except (TypeError, ValueError):
        return (
            None,
            f"the objective returned a {type(value).__name__} ({value!r:.80}), not a number",
        )
    if not math.isfinite(error):
        return None, f"the objective returned {error}; errors must be finite"
    return error, None


def _diff(logged: Any, now: Any, path: str = "") -> list[str]:
    if isinstance(logged, dict) and isinstance(now, dict):
        out = []
        for k in sorted(set(logged) | set(now), key=str):
            out += _diff(
                logged.get(k, "(absent)"), now.get(k, "(absent)"), f"{path}.{k}" if path else str(k)
            )
        return out
    return (
        [] if logged == now else [f"  {path}: logged {json.dumps(logged)}, now {json.dumps(now)}"]
    )


def _resource_of(config: Mapping[str, Any], scheduler: Any) -> float | None:
    """The resource a config asks for (``config[scheduler.resource_attr]``), if any."""
    attr = getattr(scheduler, "resource_attr", None)
    value = config.get(attr) if isinstance(attr, str) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


_WORKER_DIED_HINT = (
    " If the worker's output shows ModuleNotFoundError, the objective's module cannot be "
    "imported by worker processes: define the objective in an importable module or in the "
    "script you run."
)


def _succeeded(future: cf.Future[Any]) -> bool:
    """The future finished with a result (it is not lost with a broken worker pool)."""
    return future.done() and not future.cancelled() and future.exception() is None


def _poll(futures: Any, channel: Any, timeout: float) -> set[cf.Future[Any]]:
    """The futures done within ``timeout`` s; returns sooner when a report arrives."""
    if channel is None:
        return cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)[0]
    done = cf.wait(futures, timeout=0, return_when=cf.FIRST_COMPLETED)[0]
    if not done:
        channel.wait_for_report(timeout)
        done = cf.wait(futures, timeout=0, return_when=cf.FIRST_COMPLETED)[0]
    return done


def _check_picklable(objective: Callable[..., Any]) -> None:
    from multiprocessing.reduction import ForkingPickler

    try:  # what the process pool will do with it, tried up front for a clear message
        ForkingPickler.dumps(objective)
    except Exception as exc:
        name = getattr(objective, "__qualname__", type(objective).__name__)
        raise InvalidArgument(
            f"the objective {name} cannot be sent to worker processes ({type(exc).__name__}: "
            f"{exc}); with n_workers > 1 it must be picklable: a module-level function (not a "
            "lambda or a closure), defined in an importable module or under "
            "`if __name__ == '__main__':` guarded scripts"
        ) from None


class HPOTuner(HyperParameters):
    """Runs ``objective(**config)`` on the configurations a scheduler suggests, logging each step.

    >>> from scipy import stats
    >>> from hpostore import BasicScheduler, RandomSearcher
    >>> searcher = RandomSearcher({"x": stats.uniform(-1, 2)}, seed=0)
    >>> tuner = HPOTuner(BasicScheduler(searcher), lambda x: x * x, verbose=False)
    >>> tuner.run(number_of_trials=3).incumbent_error < 1
    True
    >>> len(tuner.records)
    3

    ``store`` is an :class:`~hpostore.store.EventLog` or a path for :func:`open_store`
    (default: an in-memory DuckDB), ``study`` the study's name in it. ``max_failures`` stops
    the run (with :class:`TooManyFailures`) after that many failed trials in a row.
    ``trust_log=True`` continues with the logged configs when a re-executed user searcher
    proposes different ones, instead of raising :class:`ReplayDivergence`.

    **Intermediate results.** An objective with a ``report`` parameter gets a callable
    ``report(resource, error) -> bool``: each call becomes a ``report`` event and goes to the
    scheduler's ``on_report``; it returns True once the scheduler decided to stop the trial,
    which should then end cleanly and return its current error (see
    :class:`hpostore.integrations.keras.ReportCallback`).

    **Parallel workers.** ``n_workers=k`` (k > 1) runs trials on a local process pool of k
    workers (forkserver or spawn, never a fork of the tuner; the objective must be picklable: a module-level function);
    ``executor=`` takes any :class:`concurrent.futures.Executor` instead (a process or thread
    pool, :class:`hpostore.executors.RayExecutor`, Dask's), with ``n_workers`` (default: the
    executor's worker count) trials in flight. A free worker gets a new suggestion at once;
    results are logged as they arrive, by this process only. ``elapsed`` is this process's
    wall clock, so any-time curves of 1 and k workers compare honestly. ``n_workers=1`` and no
    executor is the sequential loop.

    **Checkpoints.** An objective with a ``checkpoint_dir`` parameter gets a directory of its
    own per trial (:meth:`checkpoint_dir`), the same for every attempt and promotion of the
    trial: a paused trial that promotion-type ASHA resumes with more resource, or a trial
    re-run after a crash, can continue from what it saved there (see
    :func:`hpostore.integrations.keras.restore_checkpoint`). ``checkpoint_root`` moves the
    directories (e.g. to storage that all Ray workers see).
    """

    def __init__(
        self,
        scheduler: HPOScheduler,
        objective: Callable[..., Any],
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
    ) -> None:
        if not (
            callable(getattr(scheduler, "suggest", None))
            and callable(getattr(scheduler, "update", None))
        ):
            raise InvalidArgument(
                f"scheduler must have suggest() and update(config, error) methods (an HPOScheduler), "
                f"got {type(scheduler).__name__}"
            )
        if not callable(objective):
            raise InvalidArgument(
                f"objective must be callable as objective(**config), got {type(objective).__name__}"
            )
        if max_failures is not None and (not isinstance(max_failures, int) or max_failures < 1):
            raise InvalidArgument(
                f"max_failures must be a positive int or None, got {max_failures!r}"
            )
        if study is not None and (not isinstance(study, str) or not study):
            raise InvalidArgument(f"study must be a non-empty string, got {study!r}")
        if not isinstance(n_workers, int) or isinstance(n_workers, bool) or n_workers < 1:
            raise InvalidArgument(f"n_workers must be a positive int, got {n_workers!r}")
        if executor is not None and not isinstance(executor, cf.Executor):
            raise InvalidArgument(
                f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}"
            )
        executor_clock = getattr(executor, "clock", None)
        if executor_clock is not None and clock is not executor_clock:
            if clock is not time.monotonic:
                raise InvalidArgument(
                    f"the executor {type(executor).__name__} keeps its own clock; pass "
                    "clock=executor.clock to HPOTuner (or leave clock out)"
                )
            clock = executor_clock  # simulated time: the executor's clock is the study's
        self.n_workers = n_workers
        self.executor = executor
        self.scheduler = scheduler
        self.objective = objective
        self.verbose = verbose
        self.max_failures = max_failures
        self.trust_log = trust_log
        self.clock = clock
        self._owns_store = not isinstance(store, EventLog)
        if store is None:
            store = open_store(":memory:")
        elif not isinstance(store, EventLog):
            # a simulated study's objective costs nothing to redo: commit in batches
            simulated = getattr(executor, "clock", None) is not None
            store = open_store(os.fspath(store), durability="batched" if simulated else "durable")
        self.store: EventLog = store
        self.study: str = study or "default"
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._state: StudyState = replay_table(
            self.study, self.store.events(self.study, columns=REPLAY_COLUMNS)
        )
        if self._state.seq and self._state.spec is None:
            raise CorruptLogError(
                f"study {self.study!r} in {self.store.path} does not start with a study event"
            )
        self._configs: dict[int, Any] = {}  # trial -> the config object the scheduler returned
        self._caught_up = not self._state.trials
        self._session: str | None = None
        self._signature: inspect.Signature | None = None
        self._signature_ok: set[frozenset[str]] = set()
        with contextlib.suppress(TypeError, ValueError):
            self._signature = inspect.signature(objective)
        #: the objective takes a ``report`` callable (intermediate results)
        self._wants_report = self._signature is not None and "report" in self._signature.parameters
        #: the objective takes a ``checkpoint_dir`` (a directory per trial, kept across resumes)
        self._wants_checkpoint = (
            self._signature is not None and "checkpoint_dir" in self._signature.parameters
        )
        self._checkpoint_root = checkpoint_root
        self._checkpoint_tmp: str | None = None
        self._trial_aware = isinstance(scheduler, TrialScheduler)
        self._stop_sent: set[int] = set()
        self._last_resource: dict[int, float] = {}
        if self._state.spec is not None:
            self._check_spec(self._state.spec)

    # --- the textbook's bookkeeping, as views of the log -----------------------------------
    @property
    def state(self) -> StudyState:
        return self._state

    @property
    def records(self) -> list[dict[str, Any]]:
        return self._state.records()

    @property
    def incumbent(self) -> dict[str, Any] | None:
        return self._state.incumbent

    @property
    def incumbent_error(self) -> float | None:
        return self._state.incumbent_error

    @property
    def incumbent_trajectory(self) -> list[float]:
        return list(self._state.trajectory)

    @property
    def cumulative_runtime(self) -> list[float]:
        """Study time (seconds, summed over sessions) at which each finished trial was logged."""
        return list(self._state.finished_elapsed)

    @property
    def current_runtime(self) -> float:
        return self._state.finished_elapsed[-1] if self._state.finished_elapsed else 0.0

    # --- spec -------------------------------------------------------------------------------
    def _searcher(self) -> Any:
        return getattr(self.scheduler, "searcher", None)

    def _bind_seed(self, seed: int) -> None:
        for obj in (self.scheduler, self._searcher()):
            bind = getattr(obj, "bind_seed", None)
            if callable(bind):
                bind(seed)

    def _spec(self, seed: int) -> dict[str, Any]:
        searcher = self._searcher()
        space = getattr(searcher, "space", None) or getattr(searcher, "config_space", None)
        space_json = None
        if space is not None:
            space_json = ConfigSpace(space).to_json()
        scheduler_spec = (
            self.scheduler.spec()
            if isinstance(self.scheduler, HyperParameters)
            else {"class": f"{type(self.scheduler).__module__}.{type(self.scheduler).__qualname__}"}
        )
        return {
            "format_version": FORMAT_VERSION,
            "hpostore_version": __version__,
            "metric": "error",
            "mode": "min",
            "seed": seed,
            "space": space_json,
            "scheduler": scheduler_spec,
            "objective": getattr(self.objective, "__qualname__", type(self.objective).__qualname__),
        }

    def _check_spec(self, logged: dict[str, Any]) -> None:
        seed = logged.get("seed")
        if isinstance(seed, int):
            self._bind_seed(seed)
        now = self._spec(seed if isinstance(seed, int) else 0)
        for key, what in (("space", "config space"), ("scheduler", "searcher/scheduler")):
            if logged.get(key) != now[key]:
                detail = "\n".join(_diff(logged.get(key), now[key])[:8])
                raise StudyMismatch(
                    f"study {self.study!r} in {self.store.path} was created with a different {what}:\n"
                    f"{detail}\nResume it with the original setup, or give this one a new study name."
                )

    # --- the loop ---------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return self._elapsed0 + (self.clock() - self._t0)

    def _append(self, kind: str, **fields: Any) -> None:
        assert self._session is not None
        row = self.store.append(
            self.study, kind, elapsed=self._elapsed(), session=self._session, **fields
        )
        self._state.apply_row(row)

    def run(self, number_of_trials: int, *, time_budget_s: float | None = None) -> HPOTuner:
        """Run until the study holds ``number_of_trials`` results (resuming if it has some).

        A result is an ``evaluate`` event: a trial that a multi-fidelity scheduler resumed with
        more resource counts once per rung it finished, as a promotion re-run as a new trial does.

        Unlike the textbook's loop, which runs ``number_of_trials`` *more* trials per call, the
        count is the study's total, so running the same script again after a crash finishes
        the job instead of starting it over. ``time_budget_s``: start no trial once this call
        has run that long (by the tuner's clock); trials already running finish and are logged.
        """
        if time_budget_s is not None and not (
            isinstance(time_budget_s, (int, float))
            and not isinstance(time_budget_s, bool)
            and time_budget_s >= 0
        ):
            raise InvalidArgument(
                f"time_budget_s must be a non-negative number of seconds or None, got {time_budget_s!r}"
            )
        self._budget_s = time_budget_s
        if (
            not isinstance(number_of_trials, int)
            or isinstance(number_of_trials, bool)
            or number_of_trials < 0
        ):
            raise InvalidArgument(
                f"number_of_trials must be a non-negative int, got {number_of_trials!r}"
            )
        state = self._state
        if (
            state.spec is not None
            and state.n_finished >= number_of_trials
            and not state.not_updated()
        ):
            if self.verbose:
                print(
                    f"Study {self.study!r} already holds {state.n_finished} finished trials "
                    f"(incumbent error {state.incumbent_error}); nothing to run."
                )
            return self
        self._begin_session()
        reason = "completed"
        try:
            self._catch_up()
            for t in state.not_updated():
                self._update(t.trial, self._configs.get(t.trial, t.config), t.error)
            self._stop_sent = {t.trial for t in state.trials.values() if t.stopped}
            if self.n_workers > 1 or self.executor is not None:
                self._run_parallel(number_of_trials)
                return self
            failures_in_a_row = 0
            while state.n_finished < number_of_trials and self._within_budget():
                if self._run_next():
                    failures_in_a_row = 0
                    continue
                failures_in_a_row += 1
                if self.max_failures is not None and failures_in_a_row >= self.max_failures:
                    reason = "max_failures"
                self._check_failures(failures_in_a_row, state.trials[max(state.trials)].message)
        except BaseException as exc:
            if reason == "completed":
                reason = (
                    "interrupted"
                    if isinstance(exc, KeyboardInterrupt)
                    else f"error: {type(exc).__name__}"
                )
            raise
        finally:
            self._append("end", payload=dumps({"reason": reason}))
            self._session = None
            self.store.commit(force=True)
        return self

    def _check_failures(self, in_a_row: int, last: str | None) -> None:
        if self.max_failures is not None and in_a_row >= self.max_failures:
            raise TooManyFailures(
                f"study {self.study!r}: {in_a_row} trials in a row failed "
                f"(max_failures={self.max_failures}); the last one: {last}. The run was "
                "stopped; fix the objective and run again to continue (failed trials stay in "
                "the log)."
            )

    def _within_budget(self) -> bool:
        budget = getattr(self, "_budget_s", None)
        return budget is None or self.clock() - self._t0 < budget

    def _begin_session(self) -> None:
        state = self._state
        self._session = uuid.uuid4().hex[:16]
        self._elapsed0 = state.elapsed
        self._t0 = self.clock()
        if state.spec is None:
            seed = getattr(self._searcher(), "seed", None)
            if not isinstance(seed, int):
                seed = int.from_bytes(os.urandom(8), "little") >> 1
            self._bind_seed(seed)
            self._append("study", payload=dumps(self._spec(seed)))
        info = {
            "reason": "resume" if state.sessions else "new",
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "python": platform.python_version(),
            "hpostore_version": __version__,
            "argv": " ".join(sys.argv)[:200],
        }
        self._append("session", payload=dumps(info))
        self.store.commit(force=True)

    def _catch_up(self) -> None:
        """Bring a fresh scheduler to the log's state: one-pass restore, or re-execution."""
        if self._caught_up:
            return
        restore = getattr(self.scheduler, "restore", None)
        try:
            if not callable(restore):
                raise NotImplementedError
            restore(self._state)
        except NotImplementedError:
            self._reexecute()
        self._caught_up = True

    def _reexecute(self) -> None:
        state = self._state
        warned = False
        for code, trial in state.calls:
            t = state.trials[trial]
            if code == _SUGGEST:
                obj = self.scheduler.suggest()
                try:
                    redrawn: Any = native_config(obj, trial=trial)
                except ConfigSpaceError as exc:
                    redrawn = f"<{exc}>"
                if redrawn != t.config:
                    if not self.trust_log:
                        raise ReplayDivergence(
                            f"study {self.study!r}, trial {trial}: re-executing the scheduler to resume "
                            f"proposed {redrawn} but the log records {t.config}. The searcher is not "
                            "deterministic given the log (e.g. it draws from numpy's global RNG without a "
                            "seed). Seed it (np.random.seed(...) before building it, or use "
                            "RandomSearcher(..., seed=...)), or pass trust_log=True to HPOTuner to continue "
                            "with the logged configurations.",
                            trial=trial,
                        )
                    if not warned:
                        warnings.warn(
                            f"study {self.study!r}: trial {trial} re-drew a different config; continuing "
                            "with the logged configs (trust_log=True)",
                            stacklevel=3,
                        )
                        warned = True
                    obj = t.config
                self._configs[trial] = obj
            else:
                assert t.error is not None
                self.scheduler.update(self._configs[trial], t.error)

    def _check_signature(self, config: dict[str, Any], trial: int) -> None:
        keys = frozenset(config)
        if self._signature is None or keys in self._signature_ok:
            return  # binding depends on the keys only: check each key set once
        extra = self._extra_kwargs(None, None)
        clash = sorted(set(extra) & set(config))
        if clash:
            raise ObjectiveSignatureError(
                f"trial {trial}: the config has a {clash[0]!r} entry, but the objective's "
                f"`{clash[0]}` parameter receives what the tuner passes; rename the hyperparameter"
            )
        try:
            self._signature.bind(**config, **extra)
        except TypeError as exc:
            name = getattr(self.objective, "__qualname__", "objective")
            raise ObjectiveSignatureError(
                f"trial {trial}: the objective {name}{self._signature} cannot be called with the "
                f"config {config}: {exc}. The config space's names must match the objective's parameters."
            ) from None
        self._signature_ok.add(keys)

    def _run_next(self) -> bool:
        """Run one trial (a re-run of an unfinished one first); True if it finished."""
        state = self._state
        pending: TrialState | None = state.first_unfinished()
        if pending is not None:
            trial, config = pending.trial, pending.config
            obj = self._configs.get(trial, config)
        else:
            suggested = self._suggest()
            if suggested is None:
                raise InvalidArgument(
                    f"{type(self.scheduler).__name__} has nothing to suggest while no trial is "
                    "running (it waits for results that will never come)"
                )
            trial, config, obj = suggested
        attempt = self._start(trial, config, self.worker)
        if self.verbose:
            print(f"Trial {trial}: config = {config}")
        t0 = self.clock()
        message: str | None
        report = self._sequential_reporter(trial, attempt) if self._wants_report else None
        kwargs = {**config, **self._extra_kwargs(report, trial)}
        try:
            value = self.objective(**kwargs)
        except KeyboardInterrupt:
            self._append(
                "interrupt",
                trial=trial,
                runtime=self.clock() - t0,
                payload=dumps({"reason": "KeyboardInterrupt"}),
            )
            raise
        except Exception as exc:  # the objective's failure is data: logged, and the study goes on
            error, message = None, f"{type(exc).__name__}: {exc}"
        else:
            error, message = as_error(value)
        runtime = self.clock() - t0
        return self._finish(trial, obj, error, message, runtime, self.worker)

    def _start(self, trial: int, config: dict[str, Any], worker: str | None = None) -> int:
        """Log the ``start`` of ``trial`` (durably: before the objective runs); its attempt.

        For a trial-aware scheduler it carries the resource target, and the config when it is
        not the trial's logged one (a paused trial resumed with more resource).
        """
        t = self._state.trials[trial]
        attempt = t.attempts + 1
        new_config: str | None = None
        resource: float | None = None
        if self._trial_aware:
            resource = _resource_of(config, self.scheduler)
            if config != t.config:
                new_config = dumps_config(config)
        self._append("start", trial=trial, worker=worker, config=new_config, resource=resource,
                     payload=dumps({"attempt": attempt}))  # fmt: skip
        self.store.commit()  # write-ahead: suggest/start are durable before the objective runs
        return attempt

    def _extra_kwargs(self, report: Any, trial: int | None) -> dict[str, Any]:
        """What the tuner passes besides the config: ``report``, ``checkpoint_dir`` (for
        ``trial``; None: placeholders, to check the objective's signature)."""
        extra: dict[str, Any] = {}
        if self._wants_report:
            extra["report"] = report
        if self._wants_checkpoint:
            extra["checkpoint_dir"] = None if trial is None else self.checkpoint_dir(trial)
        return extra

    def checkpoint_dir(self, trial: int) -> str:
        """The directory of ``trial``'s checkpoints (created): the same for every attempt and
        promotion of the trial, so a resumed or re-run trial can continue where it stopped.

        Under ``checkpoint_root`` if given, else ``<store path>.checkpoints`` (a temporary
        directory, removed at :meth:`close`, for an in-memory store).
        """
        root = self._checkpoint_root
        if root is None:
            path = str(getattr(self.store, "path", ":memory:"))
            if path == ":memory:":
                if self._checkpoint_tmp is None:
                    self._checkpoint_tmp = tempfile.mkdtemp(prefix="hpostore-checkpoints-")
                root = self._checkpoint_tmp
            else:
                root = path.rstrip("/\\") + ".checkpoints"
        directory = os.path.join(os.fspath(root), self.study, f"trial-{trial}")
        os.makedirs(directory, exist_ok=True)
        return directory

    def _suggest(self) -> tuple[int, dict[str, Any], Any] | None:
        """Ask the scheduler for the next trial and log its ``suggest`` (and any ``promote``).

        None: a :class:`TrialScheduler` has nothing to run until a running trial finishes.
        A resumed trial (``Suggestion.resume``) logs ``promote`` only; its ``start`` follows.
        """
        trial = self._state.next_trial
        payload: str | None = None
        promote: tuple[int, str] | None = None
        if self._trial_aware:
            assert isinstance(self.scheduler, TrialScheduler)
            suggestion = self.scheduler.suggest_trial(trial)
            if suggestion is None:
                return None
            if suggestion.resume:
                return self._resume(suggestion)
            obj: Any = dict(suggestion.config)
            if suggestion.payload:
                payload = dumps(dict(suggestion.payload))
            if suggestion.promoted_from is not None:
                promote = (suggestion.promoted_from, suggestion.reason or "")
        else:
            obj = self.scheduler.suggest()
        config = native_config(obj, trial=trial)
        self._check_signature(config, trial)
        if promote is not None:
            source, reason = promote
            self._append(
                "promote",
                trial=source,
                resource=_resource_of(config, self.scheduler),
                payload=dumps({"reason": reason, "to_trial": trial}),
            )
        self._append(
            "suggest",
            trial=trial,
            config=dumps_config(config),
            payload=payload,
        )
        self._configs[trial] = obj
        return trial, config, obj

    def _resume(self, suggestion: Any) -> tuple[int, dict[str, Any], Any]:
        """Log the promotion of a paused trial that runs again with ``suggestion.config``."""
        source = suggestion.promoted_from
        t = self._state.trials.get(source)
        if t is None or not t.has_result:
            raise InvalidArgument(
                f"{type(self.scheduler).__name__} asked to resume trial {source}, which is "
                f"{'unknown' if t is None else t.status.value}; only a finished (paused) trial "
                "can be resumed"
            )
        config = native_config(dict(suggestion.config), trial=source)
        self._check_signature(config, source)
        self._append("promote", trial=source, resource=_resource_of(config, self.scheduler),
                     payload=dumps({"reason": suggestion.reason, "resume": True}))  # fmt: skip
        self._configs[source] = config
        return source, config, config

    def _finish(
        self,
        trial: int,
        obj: Any,
        error: float | None,
        message: str | None,
        runtime: float,
        worker: str,
    ) -> bool:
        """Log a trial's outcome and let the scheduler observe it; True if it finished."""
        resource = self._last_resource.pop(trial, None)
        if resource is None and self._trial_aware:
            resource = _resource_of(self._state.trials[trial].config, self.scheduler)
        if error is None:
            self._append("fail", trial=trial, runtime=runtime, payload=dumps({"message": message}))
            if self._trial_aware:
                assert isinstance(self.scheduler, TrialScheduler)
                self._log_decisions(
                    self.scheduler.on_result(trial, None, resource), resource, trial
                )
            if self.verbose:
                print(f"    failed: {message}")
            return False
        self._append(
            "evaluate", trial=trial, error=error, runtime=runtime, worker=worker, resource=resource
        )
        if self._trial_aware:
            assert isinstance(self.scheduler, TrialScheduler)
            self._log_decisions(self.scheduler.on_result(trial, error, resource), resource, trial)
            self._append("update", trial=trial)
        else:
            self._update(trial, obj, error)
        if self.verbose:
            print(f"    error = {error}, runtime = {runtime}")
        return True

    def _update(self, trial: int, config: Any, error: float | None) -> None:
        assert error is not None
        if not self._trial_aware:  # a TrialScheduler saw the result in on_result (or restore)
            self.scheduler.update(config, error)
        self._append("update", trial=trial)

    # --- intermediate results and decisions -------------------------------------------------
    def _on_report(self, trial: int, resource: float, error: float) -> bool:
        """Log a report, ask the scheduler, log its decision; True if the trial should stop."""
        self._append("report", trial=trial, resource=resource, error=error)
        self._last_resource[trial] = resource
        on_report = getattr(self.scheduler, "on_report", None)
        if callable(on_report):
            decision = on_report(trial, resource, error)
            if not isinstance(decision, Decision):
                raise InvalidArgument(
                    f"{type(self.scheduler).__name__}.on_report must return a Decision, "
                    f"got {decision!r}"
                )
            if decision.action in (Action.STOP, Action.PAUSE) and trial not in self._stop_sent:
                self._stop_sent.add(trial)
                self._log_decisions([(trial, decision)], resource, trial)
                self.store.commit()
            elif decision.action is Action.PROMOTE:
                self._log_decisions([(trial, decision)], resource, trial)
        return trial in self._stop_sent

    def _log_decisions(
        self, decisions: list[tuple[int, Decision]], resource: float | None, about: int
    ) -> None:
        """Log each decision but CONTINUE (``resource``: where trial ``about`` stands)."""
        for trial, decision in decisions:
            if not isinstance(decision, Decision):
                raise InvalidArgument(
                    f"{type(self.scheduler).__name__} returned {decision!r} for trial {trial}, "
                    "not a Decision"
                )
            if decision.kind is not None:
                self._append(
                    decision.kind,
                    trial=trial,
                    resource=resource if trial == about else None,
                    payload=dumps({"reason": decision.reason}),
                )

    def _sequential_reporter(self, trial: int, attempt: int) -> Callable[[float, float], bool]:
        from .executors import check_report

        def report(resource: float, error: float) -> bool:
            """Report ``error`` at ``resource``; True if the scheduler asks the trial to stop."""
            r, e = check_report(resource, error)
            return self._on_report(trial, r, e)

        return report

    # --- parallel workers -------------------------------------------------------------------
    def _run_parallel(self, number_of_trials: int) -> None:
        from .executors import ManagerChannel, RayExecutor, ReportChannel, local_pool, run_trial

        owned = self.executor is None
        executor: cf.Executor = self.executor or local_pool(self.n_workers)
        slots = self.n_workers
        if self.executor is not None and self.n_workers == 1:
            slots = int(getattr(self.executor, "_max_workers", 0) or os.cpu_count() or 1)
        if isinstance(executor, (cf.ProcessPoolExecutor, RayExecutor)):
            _check_picklable(self.objective)
        make_channel = getattr(executor, "report_channel", None)
        channel: ReportChannel | None = None
        if self._wants_report or getattr(executor, "reports_curves", False):
            channel = make_channel() if callable(make_channel) else ManagerChannel()
        # a simulated executor moves its clock to the next report or finish; others are polled,
        # waking up early for a report (a worker may be waiting for the decision on it)
        wait = getattr(executor, "wait", None)
        if not callable(wait):
            wait = partial(_poll, channel=channel, timeout=0.02)
        state = self._state
        running: dict[cf.Future[Any], tuple[int, int, Any]] = {}
        reruns = [t.trial for t in state.unfinished()]
        # trials that were running when a worker process died: each re-runs alone, so that the
        # one that kills its worker is found (and failed) without failing the others
        suspects: set[int] = set()
        failures_in_a_row = 0
        clean = False
        try:
            while True:
                while (
                    len(running) < slots
                    and state.n_finished + len(running) < number_of_trials
                    and self._within_budget()
                    and not any(t in suspects for t, _, _ in running.values())
                ):
                    if reruns:
                        if reruns[0] in suspects and running:
                            break  # a suspect runs alone
                        trial = reruns.pop(0)
                        config = state.trials[trial].config
                        obj = self._configs.get(trial, config)
                    else:
                        suggested = self._suggest()
                        if suggested is None:
                            break
                        trial, config, obj = suggested
                    attempt = self._start(trial, config)
                    if self.verbose:
                        print(f"Trial {trial}: config = {config}")
                    reporter = channel.reporter(trial, attempt) if channel is not None else None
                    kwargs = {**config, **self._extra_kwargs(reporter, trial)}
                    kwargs.pop("report", None)  # run_trial passes the reporter
                    running[executor.submit(run_trial, self.objective, kwargs, reporter)] = (
                        trial,
                        attempt,
                        obj,
                    )
                if not running:
                    if state.n_finished >= number_of_trials or not self._within_budget():
                        break
                    raise InvalidArgument(
                        f"{type(self.scheduler).__name__} has nothing to suggest while no trial "
                        "is running (it waits for results that will never come)"
                    )
                done = wait(running)
                if channel is not None:
                    self._drain(channel, running)
                for future in done:
                    if future not in running:
                        continue  # lost with a dead worker pool (below)
                    trial, attempt, obj = running.pop(future)
                    try:
                        outcome = future.result()
                    except cf.BrokenExecutor as exc:
                        if not owned:
                            raise HPOStoreError(
                                f"study {self.study!r}: the executor broke while running trial "
                                f"{trial} ({exc}). Run again to resume; the running trials are "
                                f"re-run.{_WORKER_DIED_HINT}"
                            ) from exc
                        executor.shutdown(wait=False, cancel_futures=True)
                        executor = local_pool(self.n_workers)  # a fresh pool, and go on
                        message = self._worker_died(
                            trial, obj, exc, running, reruns, suspects, channel
                        )
                        if message is not None:
                            failures_in_a_row += 1
                            self._check_failures(failures_in_a_row, message)
                        continue
                    suspects.discard(trial)
                    if channel is not None:
                        channel.forget(trial)
                    self._stop_sent.discard(trial)
                    if self.verbose:
                        print(f"Trial {trial} done on {outcome.worker}")
                    if self._finish(
                        trial, obj, outcome.error, outcome.message, outcome.runtime, outcome.worker
                    ):
                        failures_in_a_row = 0
                        continue
                    failures_in_a_row += 1
                    self._check_failures(failures_in_a_row, outcome.message)
            clean = True
        except BaseException as exc:
            for trial, _, _ in running.values():
                self._append(
                    "interrupt",
                    trial=trial,
                    payload=dumps({"reason": type(exc).__name__}),
                )
            raise
        finally:
            if channel is not None:
                with contextlib.suppress(Exception):
                    channel.close()
            if owned:
                if not clean:  # do not wait for trials whose results nobody will log
                    for process in list(getattr(executor, "_processes", {}).values()):
                        process.terminate()
                executor.shutdown(wait=clean, cancel_futures=True)

    def _worker_died(
        self,
        trial: int,
        obj: Any,
        exc: BaseException,
        running: dict[cf.Future[Any], tuple[int, int, Any]],
        reruns: list[int],
        suspects: set[int],
        channel: Any,
    ) -> str | None:
        """A worker process died and took the pool with it while ``trial`` ran.

        If ``trial`` ran alone it killed its worker: it is failed (the message is returned).
        Else every trial lost with the pool is logged as interrupted and becomes a suspect,
        re-run alone before anything else, so the culprit is found without failing the others.
        """
        lost = [(trial, obj)] + [(t, o) for f, (t, _, o) in running.items() if not _succeeded(f)]
        for f in [f for f in running if not _succeeded(f)]:
            del running[f]  # trials that finished before the pool broke are logged as usual
        if len(lost) == 1:
            suspects.discard(trial)
            message = (
                f"the worker process died while running this trial alone ({exc}): the "
                "objective ends its process (a crash in native code, the OOM killer, "
                f"os._exit).{_WORKER_DIED_HINT}"
            )
            runtime = self._elapsed() - (self._state.trials[trial].started_at or 0.0)
            self._finish(trial, obj, None, message, runtime, "(died)")
            return message
        for t, _ in lost:
            self._append("interrupt", trial=t, payload=dumps({"reason": "worker died"}))
            suspects.add(t)
            if channel is not None:
                channel.forget(t)
        reruns[:0] = sorted(t for t, _ in lost)
        return None

    def _drain(self, channel: Any, running: Mapping[cf.Future[Any], tuple[int, int, Any]]) -> None:
        live = {(trial, attempt) for trial, attempt, _ in running.values()}
        for trial, attempt, resource, error in channel.drain():
            if (trial, attempt) not in live:
                continue  # from a trial that already ended (or an earlier attempt)
            if self._on_report(trial, resource, error):
                channel.stop(trial)
            channel.decided(trial, attempt)  # the worker waiting on this report goes on

    # --- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the store if the tuner opened it (a path or the default in-memory store)."""
        if self._owns_store:
            self.store.close()
        if self._checkpoint_tmp is not None:
            shutil.rmtree(self._checkpoint_tmp, ignore_errors=True)
            self._checkpoint_tmp = None

    def __enter__(self) -> HPOTuner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
