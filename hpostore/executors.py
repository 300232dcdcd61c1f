"""Where trials run (inline, a local process pool, Ray) and what each place declares to the tuner.

The tuner submits its trial call to a :class:`TrialExecutor`: an executor that declares, as
typed attributes, how many trials it runs at once, whether it runs them inline (in the tuner's
thread, at submit: the sequential loop), whether the objective travels to other processes, and
how reports come back (:class:`~hpostore.channels.ReportChannel`). :func:`as_trial_executor`
adapts any other :class:`concurrent.futures.Executor` (a thread pool, Dask's). Workers only
evaluate: they never open the log.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ._processes import exit_when_gone, lifeline, worker_context
from .channels import InlineChannel, ManagerChannel, RayChannel, ReportChannel, ray_module
from .errors import InvalidArgument

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "ContinuesRuns",
    "InlineExecutor",
    "LocalPool",
    "ManagerChannel",
    "RayChannel",
    "RayExecutor",
    "ReportChannel",
    "TrialExecutor",
    "as_trial_executor",
    "exit_when_gone",
    "local_pool",
    "poll",
    "worker_context",
]


@runtime_checkable
class TrialExecutor(Protocol):
    """What an executor declares to the tuner (the tuner probes nothing else)."""

    #: how many trials run at once (the tuner keeps that many in flight)
    max_workers: int
    #: runs each trial in the caller's thread, inside ``submit`` (the sequential loop)
    inline: bool
    #: sends the objective to other processes (it must pickle)
    remote: bool
    #: produces reports without the objective's ``report`` parameter (simulated curves)
    reports_curves: bool

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]: ...

    def report_channel(self) -> ReportChannel:
        """How reports reach the tuner and stop decisions reach running trials."""
        ...

    def wait(
        self, futures: Iterable[cf.Future[Any]], channel: ReportChannel | None
    ) -> set[cf.Future[Any]]:
        """The futures done by now; returns early when a report arrives on ``channel``."""
        ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


@runtime_checkable
class ContinuesRuns(Protocol):
    """An executor whose running trials are a function of the log (a simulator), so a resumed
    study continues them instead of restarting them: before each session the tuner hands it
    the study's events (:meth:`resume`); a trial it was running when the log ends goes on from
    where it was when the tuner re-runs it (the re-run's ``start`` is a new attempt, its logged
    reports are not made again). :class:`~hpostore.simulation.SimulatedExecutor` declares it."""

    def resume(self, events: pa.Table) -> dict[int, float | None]:
        """Rebuild from ``events`` (the study's, seq order); per trial it continues, the
        resource of its last logged report (None: none), which its result will carry."""
        ...


def poll(
    futures: Iterable[cf.Future[Any]], channel: ReportChannel | None, timeout: float = 0.02
) -> set[cf.Future[Any]]:
    """The futures done within ``timeout`` s; returns sooner when a report arrives."""
    futures = list(futures)
    if channel is None:
        return cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)[0]
    done = cf.wait(futures, timeout=0, return_when=cf.FIRST_COMPLETED)[0]
    if not done:
        channel.wait_for_report(timeout)
        done = cf.wait(futures, timeout=0, return_when=cf.FIRST_COMPLETED)[0]
    return done


class LocalPool(cf.ProcessPoolExecutor):
    """The tuner's default executor: ``n_workers`` processes from :func:`worker_context` that
    exit when the tuner dies or :meth:`kill_workers` cuts their lifeline."""

    inline = False
    remote = True
    reports_curves = False

    def __init__(self, n_workers: int) -> None:
        self._reader, self._writer = lifeline()
        self._probe: cf.Future[Any] | None = None
        super().__init__(
            n_workers,
            mp_context=worker_context(),
            initializer=exit_when_gone,
            initargs=(self._reader,),
        )
        self.max_workers = n_workers

    def report_channel(self) -> ReportChannel:
        return ManagerChannel()

    def wait(
        self, futures: Iterable[cf.Future[Any]], channel: ReportChannel | None
    ) -> set[cf.Future[Any]]:
        return poll(futures, channel)

    def alive(self) -> bool:
        """False if the pool is found broken (probed by submitting a no-op, at most one at a
        time): a submit that raced the pool's breakdown leaves a future that never completes."""
        if self._probe is not None and not self._probe.done():
            return True
        try:
            self._probe = super().submit(os.getpid)
        except (cf.BrokenExecutor, OSError, EOFError, RuntimeError):
            return False
        return True

    def kill_workers(self) -> None:
        """End every worker now (their trials are lost): for a run that will not log them."""
        self._writer.close()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:
            self._writer.close()
            self._reader.close()


def local_pool(n_workers: int) -> LocalPool:
    """A :class:`LocalPool` of ``n_workers`` processes."""
    return LocalPool(n_workers)


_FINISHED = cf._base.FINISHED


class SharedConditionFuture(cf.Future[Any]):
    """A future created in ``state`` (``RUNNING`` or ``FINISHED``) whose condition variable is
    one lock shared by all of them. ``Future()`` builds a condition (a lock and its lists) per
    trial; these futures are never waited on through themselves (the tuner waits through its
    executor, in one thread), so one serves all. The one place that sets ``Future``'s fields."""

    _SHARED = threading.Condition()

    def __init__(self, state: str, result: Any = None) -> None:
        self._condition = self._SHARED
        self._state = state
        self._result = result
        self._exception = None
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = []


class _Finished(SharedConditionFuture):
    """A future born finished (``_Finished(FINISHED, result)``: the inline executor's, one per
    trial): nothing to build and notify, as ``Future()`` + ``set_result`` do."""

    # what the loop asks of every future, answered without taking the lock
    def done(self) -> bool:
        return True

    def cancelled(self) -> bool:
        return False

    def result(self, timeout: float | None = None) -> Any:
        return self._result

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return None


class InlineExecutor(cf.Executor):
    """Runs each trial in the caller's thread, inside :meth:`submit`: the sequential loop.

    A ``KeyboardInterrupt`` (the user's Ctrl-C) leaves ``submit`` as it came.
    """

    max_workers = 1
    inline = True
    remote = False
    reports_curves = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        return _Finished(_FINISHED, fn(*args, **kwargs))

    def report_channel(self) -> ReportChannel:
        return InlineChannel()

    def wait(
        self, futures: Iterable[cf.Future[Any]], channel: ReportChannel | None
    ) -> set[cf.Future[Any]]:
        return set(futures)  # each one was born finished, in submit


class _Adapted:
    """A plain :class:`concurrent.futures.Executor` with the capabilities the tuner needs."""

    inline = False
    reports_curves = False

    def __init__(self, executor: cf.Executor, max_workers: int) -> None:
        self.executor = executor
        self.max_workers = max_workers
        self.remote = isinstance(executor, cf.ProcessPoolExecutor)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        return self.executor.submit(fn, *args, **kwargs)

    def report_channel(self) -> ReportChannel:
        return ManagerChannel()

    def wait(
        self, futures: Iterable[cf.Future[Any]], channel: ReportChannel | None
    ) -> set[cf.Future[Any]]:
        return poll(futures, channel)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.executor.shutdown(wait=wait, cancel_futures=cancel_futures)


def as_trial_executor(executor: cf.Executor, n_workers: int | None) -> TrialExecutor:
    """``executor`` as a :class:`TrialExecutor` (``n_workers``: trials in flight, for an
    executor that does not declare it; default: the CPUs of this machine)."""
    if isinstance(executor, TrialExecutor):
        return executor
    return _Adapted(executor, n_workers or os.cpu_count() or 1)


# --- Ray -------------------------------------------------------------------------------------
class RayExecutor(cf.Executor):
    """Runs each submitted call as a Ray task (``num_cpus`` per task) on the connected cluster.

    Connecting is the caller's business (``ray.init(address=...)``, or a local
    ``ray.init(num_cpus=...)``); if Ray is not initialised, the first submit starts a local
    instance as Ray itself does. ``max_workers`` bounds how many trials the tuner keeps in
    flight (default: the cluster's CPUs / ``num_cpus``). Reports go through a Ray actor
    (:meth:`report_channel`). ``shutdown(cancel_futures=True)`` cancels the tasks still running.
    """

    inline = False
    remote = True
    reports_curves = False

    def __init__(self, max_workers: int | None = None, num_cpus: float = 1) -> None:
        ray = ray_module()
        self._ray = ray
        self._num_cpus = num_cpus
        self._remote: dict[Any, Any] = {}
        self._tasks: dict[cf.Future[Any], Any] = {}  # future -> ObjectRef of a running task
        self._lock = threading.Lock()
        if max_workers is None:
            cpus = ray.cluster_resources().get("CPU", 1) if ray.is_initialized() else 1
            max_workers = max(1, int(cpus // max(num_cpus, 1e-9)))
        if not isinstance(max_workers, int) or max_workers < 1:
            raise InvalidArgument(f"max_workers must be a positive int, got {max_workers!r}")
        self.max_workers = max_workers

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._ray.remote(num_cpus=self._num_cpus, max_retries=0)(fn)
            self._remote[fn] = remote
        ref = remote.remote(*args, **kwargs)
        future: cf.Future[Any] = ref.future()
        with self._lock:
            self._tasks[future] = ref
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: cf.Future[Any]) -> None:
        with self._lock:
            self._tasks.pop(future, None)

    def report_channel(self) -> ReportChannel:
        return RayChannel()

    def wait(
        self, futures: Iterable[cf.Future[Any]], channel: ReportChannel | None
    ) -> set[cf.Future[Any]]:
        return poll(futures, channel)

    def cancel(self, futures: Iterable[cf.Future[Any]] | None = None) -> None:
        """Cancel the Ray tasks behind ``futures`` (default: every task still running)."""
        with self._lock:
            tasks = dict(self._tasks)
        chosen = tasks if futures is None else {f: tasks[f] for f in futures if f in tasks}
        for future, ref in chosen.items():
            future.cancel()
            with contextlib.suppress(Exception):  # a task that finished meanwhile
                self._ray.cancel(ref, force=True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            self.cancel()
        elif wait:
            with self._lock:
                running = list(self._tasks)
            for future in running:
                with contextlib.suppress(Exception):  # its result or error is the caller's
                    future.result()
        self._remote.clear()
