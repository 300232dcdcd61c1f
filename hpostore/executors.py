"""Where trials run when the tuner has several workers, and how their reports come back.

The tuner submits :func:`run_trial` to any :class:`concurrent.futures.Executor` (a local
process pool by default, :class:`RayExecutor` for a Ray cluster, Dask's executor, ...). Workers
only evaluate: they never open the log. Intermediate reports travel through the engine's own
machinery — a :mod:`multiprocessing` manager queue for processes and threads
(:class:`ManagerChannel`), a Ray actor for Ray (:class:`RayChannel`) — and the tuner, the single
writer, turns them into ``report`` events. A scheduler's stop decision travels back the same
way. Through the manager, ``report`` waits (up to :data:`REPORT_WAIT_S`) until the tuner has
decided on that report, so a trial stopped at a rung ends right there instead of training one
more epoch; through Ray, ``report`` returns at once and the decision reaches the trial's next
report.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import queue
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import managers
from typing import Any

from .errors import InvalidArgument

__all__ = [
    "ManagerChannel",
    "RayChannel",
    "RayExecutor",
    "ReportChannel",
    "TrialOutcome",
    "exit_when_gone",
    "local_pool",
    "run_trial",
    "worker_context",
]

#: (trial, attempt, resource, error) as a worker reports it
Report = tuple[int, int, float, float]

#: how long a worker's ``report`` waits for the tuner's decision on it (manager channel)
REPORT_WAIT_S = 5.0


def check_report(resource: Any, error: Any) -> tuple[float, float]:
    """``(resource, error)`` as floats; raises :class:`InvalidArgument` for anything else."""
    try:
        r, e = float(resource), float(error)
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"report(resource, error) needs two numbers, got ({resource!r}, {error!r})"
        ) from None
    if not (math.isfinite(r) and math.isfinite(e)):
        raise InvalidArgument(
            f"report(resource, error) needs finite numbers, got ({resource!r}, {error!r})"
        )
    return r, e


def worker_context() -> Any:
    """The multiprocessing context for worker and manager processes.

    ``forkserver`` where it exists, with hpostore preloaded in the fork server: each process
    then starts in milliseconds, without the tuner's threads (DuckDB's, TensorFlow's) or its
    open files (the store's lock), which a plain fork of the tuner would inherit. Else spawn.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["hpostore.executors"])
        return ctx
    return multiprocessing.get_context("spawn")


def exit_when_gone(pid: int) -> None:
    """Process initializer: exit as soon as process ``pid`` (the tuner) is gone.

    A SIGKILLed tuner must not leave workers and a manager behind: their parent is the fork
    server, and a pool worker waits on a queue whose write end its siblings also hold, so
    neither would ever notice on its own.
    """

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # alive, under another user: keep watching
                pass

    threading.Thread(target=watch, name="hpostore-exit-when-gone", daemon=True).start()


def local_pool(n_workers: int) -> ProcessPoolExecutor:
    """The tuner's default executor: ``n_workers`` processes from :func:`worker_context`
    that exit by themselves if the tuner dies."""
    return ProcessPoolExecutor(
        n_workers,
        mp_context=worker_context(),
        initializer=exit_when_gone,
        initargs=(os.getpid(),),
    )


# --- the worker side -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TrialOutcome:
    """What a worker sends back: the error (None if unusable, with ``message``), timings."""

    error: float | None
    message: str | None
    runtime: float
    worker: str


def run_trial(
    objective: Callable[..., Any],
    config: dict[str, Any],
    reporter: Callable[[float, float], bool] | None,
) -> TrialOutcome:
    """Run ``objective(**config)`` in a worker (with ``report=reporter`` when given).

    An exception of the objective is data (a failed trial), so it is caught here and sent back
    as a message: the worker stays healthy and no traceback object has to cross processes.
    """
    from .tuner import as_error  # the same rule as the sequential loop

    kwargs = dict(config)
    if reporter is not None:
        kwargs["report"] = reporter
    t0 = time.monotonic()
    message: str | None
    try:
        value = objective(**kwargs)
    except Exception as exc:  # the objective's failure is data: logged, and the study goes on
        error, message = None, f"{type(exc).__name__}: {exc}"
    else:
        error, message = as_error(value)
    return TrialOutcome(
        error, message, time.monotonic() - t0, f"{socket.gethostname()}:{os.getpid()}"
    )


class _QueueReporter:
    """The ``report`` callable a worker gets: picklable, talks to a manager process.

    Each call waits until the tuner has decided on this report (its count in ``acks``), up to
    ``wait_s``, so it returns the decision on this very report.
    """

    def __init__(
        self, queue: Any, stops: Any, acks: Any, trial: int, attempt: int, wait_s: float
    ) -> None:
        self.queue, self.stops, self.acks = queue, stops, acks
        self.trial, self.attempt, self.wait_s = trial, attempt, wait_s
        self.sent = 0

    def __call__(self, resource: float, error: float) -> bool:
        r, e = check_report(resource, error)
        self.queue.put((self.trial, self.attempt, r, e))
        self.sent += 1
        deadline = time.monotonic() + self.wait_s
        pause = 0.001
        while self.acks.get((self.trial, self.attempt), 0) < self.sent:
            if time.monotonic() > deadline:
                break  # the tuner is busy: go on; the decision reaches the next report
            time.sleep(pause)
            pause = min(2 * pause, 0.02)
        return self.should_stop()

    def should_stop(self) -> bool:
        """True once the scheduler decided to stop this trial."""
        return bool(self.stops.get(self.trial, False))


# --- the tuner side --------------------------------------------------------------------------
class ReportChannel(ABC):
    """How reports reach the tuner and stop decisions reach running trials."""

    @abstractmethod
    def reporter(self, trial: int, attempt: int) -> Callable[[float, float], bool]:
        """The ``report(resource, error) -> stop?`` callable for a trial (sent to its worker)."""

    @abstractmethod
    def drain(self) -> list[Report]:
        """Reports that arrived since the last call, in arrival order (never blocks)."""

    @abstractmethod
    def stop(self, trial: int) -> None:
        """Ask the running ``trial`` to stop (its next report returns True)."""

    @abstractmethod
    def forget(self, trial: int) -> None:
        """The trial ended: drop what the channel holds for it."""

    def decided(self, trial: int, attempt: int) -> None:
        """The tuner has decided on the trial's oldest undecided report (default: nothing)."""
        return None  # for channels whose reporters do not wait for decisions

    def wait_for_report(self, timeout: float) -> None:
        """Block until a report arrives or ``timeout`` seconds pass (default: sleep)."""
        time.sleep(timeout)

    @abstractmethod
    def close(self) -> None: ...


class ManagerChannel(ReportChannel):
    """Reports through a :mod:`multiprocessing` manager (a queue and a dict of stop flags).

    Works for processes and threads on this machine. The manager process comes from
    :func:`worker_context` (never a plain fork of the tuner, which would inherit the store's
    lock) and exits by itself if the tuner dies.
    """

    def __init__(self, wait_s: float = REPORT_WAIT_S) -> None:
        self._manager = managers.SyncManager(ctx=worker_context())
        self._manager.start(exit_when_gone, (os.getpid(),))
        self._queue = self._manager.Queue()
        self._stops = self._manager.dict()
        self._acks = self._manager.dict()  # (trial, attempt) -> reports decided
        self._decided: dict[tuple[int, int], int] = {}
        self._early: list[Report] = []  # taken off the queue by wait_for_report
        self._wait_s = wait_s

    def reporter(self, trial: int, attempt: int) -> Callable[[float, float], bool]:
        return _QueueReporter(self._queue, self._stops, self._acks, trial, attempt, self._wait_s)

    def decided(self, trial: int, attempt: int) -> None:
        key = (trial, attempt)
        self._decided[key] = self._decided.get(key, 0) + 1
        self._acks[key] = self._decided[key]

    def drain(self) -> list[Report]:
        out, self._early = self._early, []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def wait_for_report(self, timeout: float) -> None:
        with contextlib.suppress(queue.Empty):
            self._early.append(self._queue.get(timeout=timeout))

    def stop(self, trial: int) -> None:
        self._stops[trial] = True

    def forget(self, trial: int) -> None:
        self._stops.pop(trial, None)
        for key in [k for k in self._decided if k[0] == trial]:
            del self._decided[key]
            self._acks.pop(key, None)

    def close(self) -> None:
        self._manager.shutdown()


# --- Ray -------------------------------------------------------------------------------------
def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InvalidArgument(
            "RayExecutor needs Ray: pip install 'hpostore[ray]' (or pip install 'ray>=2.9')"
        ) from None
    return ray


class _Board:
    """A Ray actor's class: the report queue and stop flags of one tuner run."""

    def __init__(self) -> None:
        self.reports: list[Report] = []
        self.stops: set[int] = set()

    def put(self, report: Report) -> bool:
        self.reports.append(report)
        return report[0] in self.stops

    def drain(self) -> list[Report]:
        out, self.reports = self.reports, []
        return out

    def stop(self, trial: int) -> None:
        self.stops.add(trial)

    def forget(self, trial: int) -> None:
        self.stops.discard(trial)


class _RayReporter:
    def __init__(self, board: Any, trial: int, attempt: int) -> None:
        self.board, self.trial, self.attempt = board, trial, attempt

    def __call__(self, resource: float, error: float) -> bool:
        r, e = check_report(resource, error)
        ray = _ray()
        return bool(ray.get(self.board.put.remote((self.trial, self.attempt, r, e))))


class RayChannel(ReportChannel):
    """Reports through a Ray actor: one round trip per report, which also returns the stop flag."""

    def __init__(self) -> None:
        ray = _ray()
        self._board = ray.remote(num_cpus=0)(_Board).remote()

    def reporter(self, trial: int, attempt: int) -> Callable[[float, float], bool]:
        return _RayReporter(self._board, trial, attempt)

    def drain(self) -> list[Report]:
        return list(_ray().get(self._board.drain.remote()))

    def stop(self, trial: int) -> None:
        self._board.stop.remote(trial)

    def forget(self, trial: int) -> None:
        self._board.forget.remote(trial)

    def close(self) -> None:
        _ray().kill(self._board)


class RayExecutor(Executor):
    """Runs each submitted call as a Ray task (``num_cpus`` per task) on the connected cluster.

    Connecting is the caller's business (``ray.init(address=...)``, or a local
    ``ray.init(num_cpus=...)``); if Ray is not initialised, the first submit starts a local
    instance as Ray itself does. ``max_workers`` bounds how many trials the tuner keeps in
    flight (default: the cluster's CPUs / ``num_cpus``). Reports go through a Ray actor
    (:meth:`report_channel`).
    """

    def __init__(self, max_workers: int | None = None, num_cpus: float = 1) -> None:
        ray = _ray()
        self._ray = ray
        self._num_cpus = num_cpus
        self._remote: dict[Any, Any] = {}
        if max_workers is None:
            cpus = ray.cluster_resources().get("CPU", 1) if ray.is_initialized() else 1
            max_workers = max(1, int(cpus // max(num_cpus, 1e-9)))
        if not isinstance(max_workers, int) or max_workers < 1:
            raise InvalidArgument(f"max_workers must be a positive int, got {max_workers!r}")
        self._max_workers = max_workers

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._ray.remote(num_cpus=self._num_cpus, max_retries=0)(fn)
            self._remote[fn] = remote
        return remote.remote(*args, **kwargs).future()

    def report_channel(self) -> ReportChannel:
        return RayChannel()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._remote.clear()
