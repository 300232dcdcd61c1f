"""The tuner: the textbook's loop, every step appended to the event log.

``HPOTuner(scheduler, objective).run(n)`` behaves like the textbook's; with ``store=`` and
``study=`` the same loop is durable: each trial's ``suggest``/``start`` events are on disk
before the objective runs, the bookkeeping attributes are views of the replayed log, and
running the same script again continues the study where it stopped.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import platform
import socket
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from . import __version__
from ._hyper import HyperParameters
from .errors import (
    ConfigSpaceError,
    CorruptLogError,
    InvalidArgument,
    ObjectiveSignatureError,
    ReplayDivergence,
    StudyMismatch,
    TooManyFailures,
)
from .events import FORMAT_VERSION, dumps
from .schedulers.base import HPOScheduler
from .space import ConfigSpace, to_native
from .store.base import EventLog, open_store
from .study import UNFINISHED, StudyState, TrialState, replay_table

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
            store = open_store(os.fspath(store))
        self.store: EventLog = store
        self.study: str = study or "default"
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._state: StudyState = replay_table(self.study, self.store.events(self.study))
        if self._state.seq and self._state.spec is None:
            raise CorruptLogError(
                f"study {self.study!r} in {self.store.path} does not start with a study event"
            )
        self._configs: dict[int, Any] = {}  # trial -> the config object the scheduler returned
        self._caught_up = not self._state.trials
        self._session: str | None = None
        self._signature: inspect.Signature | None = None
        with contextlib.suppress(TypeError, ValueError):
            self._signature = inspect.signature(objective)
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

    def run(self, number_of_trials: int) -> HPOTuner:
        """Run until the study holds ``number_of_trials`` finished trials (resuming if it has some).

        Unlike the textbook's loop, which runs ``number_of_trials`` *more* trials per call, the
        count is the study's total, so running the same script again after a crash finishes
        the job instead of starting it over.
        """
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
            failures_in_a_row = 0
            while state.n_finished < number_of_trials:
                if self._run_next():
                    failures_in_a_row = 0
                    continue
                failures_in_a_row += 1
                if self.max_failures is not None and failures_in_a_row >= self.max_failures:
                    last = state.trials[max(state.trials)].message
                    reason = "max_failures"
                    raise TooManyFailures(
                        f"study {self.study!r}: {failures_in_a_row} trials in a row failed "
                        f"(max_failures={self.max_failures}); the last one: {last}. The run was "
                        "stopped; fix the objective and run again to continue (failed trials stay in the log)."
                    )
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
        if self._signature is None:
            return
        try:
            self._signature.bind(**config)
        except TypeError as exc:
            name = getattr(self.objective, "__qualname__", "objective")
            raise ObjectiveSignatureError(
                f"trial {trial}: the objective {name}{self._signature} cannot be called with the "
                f"config {config}: {exc}. The config space's names must match the objective's parameters."
            ) from None

    def _run_next(self) -> bool:
        """Run one trial (a re-run of an unfinished one first); True if it finished."""
        state = self._state
        pending: TrialState | None = next(
            (t for t in state.trials.values() if t.status in UNFINISHED), None
        )
        if pending is not None:
            trial, config = pending.trial, pending.config
            obj = self._configs.get(trial, config)
        else:
            trial = state.next_trial
            obj = self.scheduler.suggest()
            config = native_config(obj, trial=trial)
            self._check_signature(config, trial)
            self._append(
                "suggest",
                trial=trial,
                config=json.dumps(config, separators=(",", ":"), allow_nan=False),
            )
            self._configs[trial] = obj
        attempt = state.trials[trial].attempts + 1
        self._append("start", trial=trial, worker=self.worker, payload=dumps({"attempt": attempt}))
        self.store.commit()  # write-ahead: suggest/start are durable before the objective runs
        if self.verbose:
            print(f"Trial {trial}: config = {config}")
        t0 = self.clock()
        message: str | None
        try:
            value = self.objective(**config)
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
        if error is None:
            self._append("fail", trial=trial, runtime=runtime, payload=dumps({"message": message}))
            if self.verbose:
                print(f"    failed: {message}")
            return False
        self._append("evaluate", trial=trial, error=error, runtime=runtime, worker=self.worker)
        self._update(trial, obj, error)
        if self.verbose:
            print(f"    error = {error}, runtime = {runtime}")
        return True

    def _update(self, trial: int, config: Any, error: float | None) -> None:
        assert error is not None
        self.scheduler.update(config, error)
        self._append("update", trial=trial)

    # --- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the store if the tuner opened it (a path or the default in-memory store)."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> HPOTuner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
