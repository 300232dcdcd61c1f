"""How a running trial's reports reach the tuner and its stop decisions reach the trial.

Inline (the sequential loop), the tuner decides on each report inside the ``report`` call.
Through a :mod:`multiprocessing` manager (:class:`ManagerChannel`, processes and threads on
this machine), ``report`` waits (up to :data:`REPORT_WAIT_S`) until the tuner has decided on
that report, so a trial stopped at a rung ends right there; through a Ray actor
(:class:`RayChannel`) ``report`` returns at once and the decision reaches the next report.
"""

from __future__ import annotations

import contextlib
import math
import queue
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from multiprocessing import managers
from typing import Any

from ._processes import exit_when_gone, lifeline, worker_context
from .errors import InvalidArgument

#: (trial, attempt, resource, error[, metrics]) as a worker reports it; ``metrics``: the
#: extra metrics given to ``report`` as keywords (a dict of floats), absent or None if none
Report = tuple[Any, ...]
#: the tuner's decision on a report ``(trial, attempt, resource, error, metrics)``: True if
#: the trial should stop
Decide = Callable[[int, int, float, float, "dict[str, float] | None"], bool]

#: how long a worker's ``report`` waits for the tuner's decision on it (manager channel)
REPORT_WAIT_S = 5.0


def check_metrics(metrics: dict[str, Any]) -> dict[str, float] | None:
    """Extra metrics given to ``report`` as keywords, as finite floats (None when none)."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            number = math.nan
        if isinstance(value, (bool, str, bytes)) or not math.isfinite(number):
            raise InvalidArgument(
                f"report(..., {name}=...) needs a finite number, got {value!r:.80}"
            )
        out[name] = number
    return out or None


def check_report(resource: Any, error: Any) -> tuple[float, float]:
    """``(resource, error)`` as floats; raises :class:`InvalidArgument` for anything else."""
    try:
        r, e = float(resource), float(error)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgument(
            f"report(resource, error) needs two numbers, got ({resource!r:.80}, {error!r:.80})"
        ) from None
    if not (math.isfinite(r) and math.isfinite(e)):
        raise InvalidArgument(
            f"report(resource, error) needs finite numbers, got ({resource!r}, {error!r})"
        )
    return r, e


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

    def bind(self, decide: Decide) -> None:
        """The tuner's decision function, for channels that decide inside ``report`` (inline)."""
        return None

    def decided(self, trial: int, attempt: int) -> None:
        """The tuner has decided on the trial's oldest undecided report (default: nothing)."""
        return None  # for channels whose reporters do not wait for decisions

    def wait_for_report(self, timeout: float) -> None:
        """Block until a report arrives or ``timeout`` seconds pass (default: sleep)."""
        time.sleep(timeout)

    @abstractmethod
    def close(self) -> None: ...


class _InlineReporter:
    """The ``report`` an inline trial gets: the tuner decides inside the call.

    An error of the tuner itself (the store failing to append) is kept in ``fatal`` and raised
    again after the objective returns: it must not pass for the objective's failure.
    """

    def __init__(self, channel: InlineChannel, trial: int, attempt: int) -> None:
        self.channel, self.trial, self.attempt = channel, trial, attempt

    def __call__(self, resource: float, error: float, **metrics: float) -> bool:
        r, e = check_report(resource, error)
        m = check_metrics(metrics)
        decide = self.channel.decide
        if decide is None:
            raise InvalidArgument("report() was called outside a running trial")
        try:
            return decide(self.trial, self.attempt, r, e, m)
        except BaseException as exc:
            self.channel.fatal = exc
            raise


class InlineChannel(ReportChannel):
    """Reports of trials that run in the tuner's thread: decided inside the ``report`` call."""

    def __init__(self) -> None:
        self.decide: Decide | None = None
        self.fatal: BaseException | None = None

    def bind(self, decide: Decide) -> None:
        self.decide = decide

    def reporter(self, trial: int, attempt: int) -> Callable[[float, float], bool]:
        return _InlineReporter(self, trial, attempt)

    def drain(self) -> list[Report]:
        if self.fatal is not None:  # the tuner failed inside a report: not the objective's fault
            fatal, self.fatal = self.fatal, None
            raise fatal
        return []

    def stop(self, trial: int) -> None:
        return None  # the decision was returned by the report call itself

    def forget(self, trial: int) -> None:
        return None

    def wait_for_report(self, timeout: float) -> None:
        return None

    def close(self) -> None:
        self.decide = None


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

    def __call__(self, resource: float, error: float, **metrics: float) -> bool:
        r, e = check_report(resource, error)
        self.queue.put((self.trial, self.attempt, r, e, check_metrics(metrics)))
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


class ManagerChannel(ReportChannel):
    """Reports through a :mod:`multiprocessing` manager (a queue and a dict of stop flags).

    Works for processes and threads on this machine. The manager process comes from
    :func:`~hpostore.executors.worker_context` (never a plain fork of the tuner, which would
    inherit the store's lock) and exits by itself if the tuner dies.
    """

    def __init__(self, wait_s: float = REPORT_WAIT_S) -> None:
        self._reader, self._writer = lifeline()
        self._manager = managers.SyncManager(ctx=worker_context())
        self._manager.start(exit_when_gone, (self._reader,))
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
        self._writer.close()
        self._reader.close()


# --- Ray -------------------------------------------------------------------------------------
def ray_module() -> Any:
    """The ``ray`` module, or an :class:`InvalidArgument` saying how to install it."""
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

    def __call__(self, resource: float, error: float, **metrics: float) -> bool:
        r, e = check_report(resource, error)
        report = (self.trial, self.attempt, r, e, check_metrics(metrics))
        return bool(ray_module().get(self.board.put.remote(report)))


class RayChannel(ReportChannel):
    """Reports through a Ray actor: one round trip per report, which also returns the stop flag."""

    def __init__(self) -> None:
        self._board = ray_module().remote(num_cpus=0)(_Board).remote()

    def reporter(self, trial: int, attempt: int) -> Callable[[float, float], bool]:
        return _RayReporter(self._board, trial, attempt)

    def drain(self) -> list[Report]:
        return list(ray_module().get(self._board.drain.remote()))

    def stop(self, trial: int) -> None:
        self._board.stop.remote(trial)

    def forget(self, trial: int) -> None:
        self._board.forget.remote(trial)

    def close(self) -> None:
        ray_module().kill(self._board)
