"""Simulated time: a clock the tuner reads, and benchmark objectives that advance it.

A simulated study runs the real tuner loop and writes a real event log, but an evaluation
costs no wall-clock time: the objective computes its value and moves the
:class:`SimulatedClock` forward by the simulated cost of training. The events' ``elapsed``
is then simulated study time, identical for a seed on every machine, so any-time curves and
time-to-target of searchers compare in seconds of (simulated) training, not of CPU noise.

>>> import math
>>> from hpostore import BasicScheduler, HPOTuner, RandomSearcher
>>> clock = SimulatedClock()
>>> bench = Branin()
>>> tuner = HPOTuner(BasicScheduler(RandomSearcher(bench.config_space, seed=0)),
...                  bench.objective(clock), clock=clock, verbose=False)
>>> records = tuner.run(3).records
>>> math.isclose(clock(), sum(bench.cost(r["config"]) for r in records))
True
>>> tuner.cumulative_runtime[-1] == clock()  # events carry simulated time
True
"""

from __future__ import annotations

import heapq
import inspect
import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import stats

from ._simtimeline import InFlight, initial_free, rebuild
from .channels import Report, ReportChannel
from .errors import InvalidArgument
from .tuner import TrialOutcome, run_trial


class SimulatedClock:
    """Seconds of simulated time; moves only by :meth:`advance` (pass it as ``HPOTuner(clock=)``).

    >>> clock = SimulatedClock()
    >>> clock.advance(2.5)
    >>> clock()
    2.5
    """

    __slots__ = ("now",)

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (a finite number >= 0)."""
        if not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
            raise InvalidArgument(f"a clock advances by a finite number >= 0, got {seconds!r}")
        self.now += seconds

    sleep = advance


@dataclass(frozen=True, slots=True)
class LearningCurve:
    """What a simulated objective returns instead of training: the error after each epoch
    and the seconds each epoch took (equal lengths, at least one epoch).

    >>> LearningCurve([0.5, 0.3], [2.0, 2.0]).final_error
    0.3
    """

    errors: Sequence[float]
    seconds: Sequence[float]

    def __post_init__(self) -> None:
        if len(self.errors) != len(self.seconds) or not self.errors:
            raise InvalidArgument(
                "a LearningCurve needs one error and one epoch time per epoch (at least one), "
                f"got {len(self.errors)} errors and {len(self.seconds)} epoch times"
            )

    @property
    def final_error(self) -> float:
        return float(self.errors[-1])


class Benchmark(ABC):
    """A multi-fidelity benchmark: a config space, a learning curve and an epoch cost per config.

    Subclasses give :attr:`config_space`, :attr:`max_resource` and :meth:`learning_curve`;
    everything a simulated study needs is derived from those: :meth:`error`, :meth:`cost`, the
    objectives for the sequential tuner (:meth:`objective`, which advances a
    :class:`SimulatedClock`) and for simulated workers (:meth:`curve_objective`, whose
    :class:`LearningCurve` a :class:`~hpostore.executors.SimulatedExecutor` plays out).
    """

    #: name of the benchmark (also the objective's ``__qualname__`` in the study spec)
    name: str
    #: the largest resource (epochs) a config can be trained for
    max_resource: int
    #: the smallest error at full fidelity (known optimum or best tabulated value)
    optimum: float

    @property
    @abstractmethod
    def config_space(self) -> dict[str, Any]:
        """The search space (a dict of scipy.stats domains, lists and constants)."""

    @abstractmethod
    def learning_curve(
        self, config: Mapping[str, Any], resource: int | None = None
    ) -> tuple[list[float], list[float]]:
        """(error after each epoch 1..resource, seconds of each epoch): what an objective that
        reports per epoch would report, and when (default resource: ``max_resource``)."""

    def _resource(self, resource: float | None) -> float:
        r = self.max_resource if resource is None else min(float(resource), self.max_resource)
        if not r > 0:
            raise InvalidArgument(f"resource must be > 0, got {resource!r}")
        return r

    def error(self, config: Mapping[str, Any], resource: float | None = None) -> float:
        """The error of ``config`` after ``resource`` epochs (default: ``max_resource``)."""
        errors, _ = self.learning_curve(config, math.ceil(self._resource(resource)))
        return float(errors[-1])

    def cost(self, config: Mapping[str, Any], resource: float | None = None) -> float:
        """Simulated seconds to train ``config`` for ``resource`` epochs (default: all)."""
        _, seconds = self.learning_curve(config, math.ceil(self._resource(resource)))
        return float(sum(seconds))

    def _signature(self) -> inspect.Signature:
        params = [
            inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY)
            for p in self.config_space
            if p != "max_epochs"
        ]
        params.append(inspect.Parameter("max_epochs", inspect.Parameter.KEYWORD_ONLY, default=None))
        return inspect.Signature(params)

    def objective(self, clock: SimulatedClock) -> Callable[..., float]:
        """An objective ``f(**config, max_epochs=None)`` that returns the error after
        ``max_epochs`` epochs (default: all) and advances ``clock`` by their cost."""

        def objective(**kwargs: Any) -> float:
            max_epochs = kwargs.pop("max_epochs", None)
            clock.advance(self.cost(kwargs, max_epochs))
            return self.error(kwargs, max_epochs)

        objective.__signature__ = self._signature()  # type: ignore[attr-defined]
        objective.__qualname__ = objective.__name__ = self.name
        return objective

    def curve_objective(self) -> Callable[..., LearningCurve]:
        """An objective ``f(**config, max_epochs=None)`` that returns the :class:`LearningCurve`
        up to ``max_epochs`` (default: all): for a :class:`~hpostore.executors.SimulatedExecutor`,
        which plays it out on simulated workers (reports per epoch, stops, resumes)."""

        def objective(**kwargs: Any) -> LearningCurve:
            max_epochs = kwargs.pop("max_epochs", None)
            r = math.ceil(self._resource(max_epochs))
            return LearningCurve(*self.learning_curve(kwargs, r))

        objective.__signature__ = self._signature()  # type: ignore[attr-defined]
        objective.__qualname__ = objective.__name__ = self.name
        return objective

    @property
    def reference_error(self) -> float:
        """The scale of normalized regret: the median full-fidelity error of random configs."""
        raise NotImplementedError

    def normalized_regret(self, error: float) -> float:
        """``(error - optimum) / (reference_error - optimum)``: 0 at the optimum, 1 at the median."""
        return (error - self.optimum) / (self.reference_error - self.optimum)


class SyntheticBenchmark(Benchmark):
    """A multi-fidelity test function with a known optimum, a learning curve and a cost.

    The error of ``config`` after ``resource`` epochs (1 .. ``max_resource``) is the function
    at fidelity ``z = resource / max_resource``: at ``z = 1`` the textbook function, below it a
    biased version of it (the optimum moves and the values are worse, as a model trained
    for fewer epochs is). Training costs :meth:`epoch_seconds` per epoch, which depends on
    the config (as a larger model trains slower).
    """

    def __init__(self, max_resource: int = 81) -> None:
        if not isinstance(max_resource, int) or max_resource < 1:
            raise InvalidArgument(f"max_resource must be a positive int, got {max_resource!r}")
        self.max_resource = max_resource

    @property
    @abstractmethod
    def bounds(self) -> list[tuple[str, float, float]]:
        """(name, low, high) of each input."""

    @abstractmethod
    def values(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The function at inputs ``x`` and each fidelity in ``z`` (values in (0, 1])."""

    def value(self, x: np.ndarray, z: float) -> float:
        """The function at inputs ``x`` and fidelity ``z`` in (0, 1]."""
        return float(self.values(x, np.array([z]))[0])

    @abstractmethod
    def epoch_seconds(self, config: Mapping[str, Any]) -> float:
        """Simulated seconds one epoch of ``config`` takes."""

    @property
    def config_space(self) -> dict[str, Any]:
        """The search space: one ``stats.uniform`` per input."""
        return {name: stats.uniform(lo, hi - lo) for name, lo, hi in self.bounds}

    def error(self, config: Mapping[str, Any], resource: float | None = None) -> float:
        x = np.array([float(config[name]) for name, _, _ in self.bounds])
        return self.value(x, self._resource(resource) / self.max_resource)

    def cost(self, config: Mapping[str, Any], resource: float | None = None) -> float:
        return self.epoch_seconds(config) * self._resource(resource)

    def learning_curve(
        self, config: Mapping[str, Any], resource: int | None = None
    ) -> tuple[list[float], list[float]]:
        n = self.max_resource if resource is None else min(int(resource), self.max_resource)
        x = np.array([float(config[name]) for name, _, _ in self.bounds])
        z = np.arange(1, n + 1) / self.max_resource  # the same z as error(config, r)
        return self.values(x, z).tolist(), [self.epoch_seconds(config)] * n

    @cached_property
    def reference_error(self) -> float:
        """The median full-fidelity error of uniform random configs (10,000, a fixed seed): the
        scale of normalized regret ``(best - optimum) / (reference_error - optimum)``."""
        rng = np.random.default_rng(0)
        lows = np.array([lo for _, lo, _ in self.bounds])
        highs = np.array([hi for _, _, hi in self.bounds])
        xs = lows + rng.random((10_000, len(lows))) * (highs - lows)
        return float(np.median([self.value(x, 1.0) for x in xs]))


class Branin(SyntheticBenchmark):
    """Branin-Hoo on [-5, 10] x [0, 15]; optimum 0.397887 at three points, e.g. (pi, 2.275).

    Fidelity bias as in BOCA (Kandasamy et al. 2017): b(z) = b - 0.01 (1 - z),
    c(z) = c - 0.1 (1 - z), t(z) = t + 0.05 (1 - z), plus 10 (1 - z) for a learning curve
    that improves with epochs. An epoch costs 0.5 to 1.5 s, growing with ``x1``.
    """

    name = "branin"
    optimum = 0.39788735772973816

    @property
    def bounds(self) -> list[tuple[str, float, float]]:
        return [("x1", -5.0, 10.0), ("x2", 0.0, 15.0)]

    def values(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        x1, x2 = float(x[0]), float(x[1])
        b = 5.1 / (4 * math.pi**2) - 0.01 * (1 - z)
        c = 5 / math.pi - 0.1 * (1 - z)
        t = 1 / (8 * math.pi) + 0.05 * (1 - z)
        return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10 + 10 * (1 - z)

    def epoch_seconds(self, config: Mapping[str, Any]) -> float:
        return 0.5 + (float(config["x1"]) + 5.0) / 15.0


_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


class Hartmann6(SyntheticBenchmark):
    """Hartmann-6 on [0, 1]^6; optimum -3.32237 at (0.20169, 0.150011, 0.476874, 0.275332,
    0.311652, 0.6573).

    Fidelity bias as in BOCA: alpha(z) = alpha - 0.1 (1 - z), plus 0.5 (1 - z). An epoch costs
    0.5 to 1.5 s, growing with the mean of the inputs.
    """

    name = "hartmann6"
    optimum = -3.3223680114155147

    @property
    def bounds(self) -> list[tuple[str, float, float]]:
        return [(f"x{i + 1}", 0.0, 1.0) for i in range(6)]

    def values(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        alpha = _H6_ALPHA[None, :] - 0.1 * (1 - z)[:, None]
        inner = (_H6_A * (np.asarray(x, dtype=float)[None, :] - _H6_P) ** 2).sum(1)
        return -(alpha * np.exp(-inner)[None, :]).sum(1) + 0.5 * (1 - z)

    def epoch_seconds(self, config: Mapping[str, Any]) -> float:
        return 0.5 + sum(float(config[f"x{i + 1}"]) for i in range(6)) / 6.0


BENCHMARKS: dict[str, type[SyntheticBenchmark]] = {"branin": Branin, "hartmann6": Hartmann6}


# --- simulated workers -----------------------------------------------------------------------
@dataclass(slots=True)
class _Job:
    """A trial on a simulated worker: its curve, how far it got, when its next epoch ends."""

    trial: int
    attempt: int
    future: Future[Any]
    worker: str
    curve: LearningCurve
    epoch: int  # epochs done (resumed trials start where they paused)
    started: float
    reports: bool
    stopped: bool = False
    generation: int = 0


class _SimulatedReporter:
    """The reporter a simulated trial is given: it carries the trial id, nothing else."""

    __slots__ = ("attempt", "trial")

    def __init__(self, trial: int, attempt: int) -> None:
        self.trial, self.attempt = trial, attempt

    def __call__(self, resource: float, error: float) -> bool:  # pragma: no cover - not called
        raise InvalidArgument("a simulated trial reports from its LearningCurve, not by calls")


class _SimulatedChannel(ReportChannel):
    def __init__(self, executor: SimulatedExecutor) -> None:
        self._executor = executor
        self.pending: list[Report] = []

    def reporter(self, trial: int, attempt: int) -> Callable[[float, float], bool]:
        return _SimulatedReporter(trial, attempt)

    def drain(self) -> list[Report]:
        out, self.pending = self.pending, []
        return out

    def stop(self, trial: int) -> None:
        self._executor._stop(trial)

    def forget(self, trial: int) -> None:
        pass

    def close(self) -> None:
        pass


class SimulatedExecutor(Executor):
    """``n_workers`` simulated workers on a :class:`SimulatedClock`: the tuner's parallel loop,
    in simulated time.

    The objective returns a :class:`LearningCurve` instead of training
    (:meth:`Benchmark.curve_objective`). A submitted trial occupies a worker from the current
    simulated time; it reports epoch ``k``'s error when its first ``k`` epochs' seconds have
    passed, and finishes after its last epoch, or at the report after which the scheduler
    stopped it. The tuner's ``wait`` moves the clock to the next such moment: the events of a
    study carry simulated ``elapsed``, in the order the worker schedule produces them, and the
    same seed gives the same study on every machine. ``reports=False`` skips the per-epoch
    ``report`` events (a study of FIFO searchers, which do not read them, runs ~5x faster). A
    trial resumed with more resource (promotion-type ASHA) continues from the epoch it paused
    at, as a checkpointed objective would.

    Resuming a study (:meth:`resume`, called by the tuner at the start of every session) rebuilds
    the workers from the log: the clock stands at the last event's time, and each trial that was
    running when the tuner died goes on, when the tuner re-runs it, on its worker from where it
    was (its logged reports are not made again): a crash of the tuner takes no simulated time,
    so a killed and resumed study logs the uninterrupted study's events.

    >>> from hpostore import BasicScheduler, HPOTuner, RandomSearcher
    >>> bench = Branin(max_resource=3)
    >>> executor = SimulatedExecutor(n_workers=4)
    >>> tuner = HPOTuner(BasicScheduler(RandomSearcher(bench.config_space, seed=0)),
    ...                  bench.curve_objective(), executor=executor, verbose=False)
    >>> tuner.run(8).state.n_finished, executor.clock() < sum(r["runtime"] for r in tuner.records)
    (8, True)
    """

    #: the tuner makes a report channel even for objectives without a ``report`` parameter
    reports_curves = True
    inline = False
    remote = False

    def __init__(
        self, n_workers: int, clock: SimulatedClock | None = None, *, reports: bool = True
    ) -> None:
        if not isinstance(n_workers, int) or isinstance(n_workers, bool) or n_workers < 1:
            raise InvalidArgument(f"n_workers must be a positive int, got {n_workers!r}")
        if clock is not None and not isinstance(clock, SimulatedClock):
            raise InvalidArgument(f"clock must be a SimulatedClock, got {type(clock).__name__}")
        self.clock = clock if clock is not None else SimulatedClock()
        self.max_workers = n_workers
        self._free = initial_free(n_workers)
        self._heap: list[tuple[float, int, int, _Job]] = []
        self._order = itertools.count()
        self._jobs: dict[int, _Job] = {}
        #: trial -> epochs done (the simulated checkpoint)
        self._progress: dict[int, float] = {}
        #: runs rebuilt by :meth:`resume` that go on when the tuner re-runs their trial
        self._continuing: dict[int, InFlight] = {}
        self._channel = _SimulatedChannel(self)
        self._reports = bool(reports)

    def resume(self, events: pa.Table) -> dict[int, float | None]:
        """Rebuild the workers from a study's events (seq order): the clock at the last event,
        the free workers, each trial's epochs done, and the runs still open, which go on when
        the tuner re-runs their trial. Returns the resource of each open run's last report
        (None: none yet), which its result will carry. A log this executor did not write
        (another executor, another number of workers) leaves it as it is: re-runs start afresh.
        """
        timeline = rebuild(events, self.max_workers)
        if timeline is None:
            return {}
        self._heap.clear()
        self._jobs.clear()
        self.clock.now = timeline.clock
        self._free = list(timeline.free)
        self._progress = dict(timeline.progress)
        self._continuing = dict(timeline.running)
        self._order = itertools.count(timeline.next_rank)
        return {t: run.reported for t, run in timeline.running.items()}

    def report_channel(self) -> ReportChannel:
        return self._channel

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if fn is not run_trial or kwargs or len(args) != 3:
            raise InvalidArgument(
                "a SimulatedExecutor runs the tuner's trials only: pass it to HPOTuner(executor=...)"
            )
        objective, config, reporter = args
        trial = reporter.trial if isinstance(reporter, _SimulatedReporter) else -1
        attempt = reporter.attempt if isinstance(reporter, _SimulatedReporter) else 0
        run = self._continuing.pop(trial, None)
        if run is None and not self._free and self._continuing:
            self._forget_continuing()  # runs the tuner did not re-run give their workers back
        if run is None and not self._free:
            raise InvalidArgument(
                f"all {self.max_workers} simulated workers are busy; the tuner keeps at most "
                "n_workers trials in flight"
            )
        curve = objective(**config)
        if not isinstance(curve, LearningCurve):
            raise InvalidArgument(
                f"a simulated objective returns a LearningCurve (errors and seconds per epoch), "
                f"got {type(curve).__name__}; use Benchmark.curve_objective()"
            )
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        if run is not None:
            self._continue(run, attempt, future, curve)
            return future
        epoch = self._first_epoch(self._progress.get(trial), curve)
        job = _Job(
            trial, attempt, future, self._free.pop(), curve, epoch, self.clock(), self._reports
        )
        self._jobs[trial] = job
        if self._reports:  # an event per epoch
            self._schedule(job, self.clock() + float(curve.seconds[epoch]))
        else:  # one event: the end of its last epoch
            job.epoch = len(curve.errors) - 1
            self._schedule(job, self.clock() + float(sum(curve.seconds[epoch:])))
        return future

    @staticmethod
    def _first_epoch(progress: float | None, curve: LearningCurve) -> int:
        """The epoch a run starts from: where the trial's last run ended (its checkpoint)."""
        if progress is None:
            return 0
        return int(min(progress, len(curve.errors) - 1))

    def _continue(
        self, run: InFlight, attempt: int, future: Future[Any], curve: LearningCurve
    ) -> None:
        """Put a run rebuilt by :meth:`resume` back on its worker, on its own timeline: its
        next epoch ends when it would have had the tuner not died (its logged reports are not
        made again); a run told to stop finishes at the moment the stop was sent."""
        n = len(curve.errors)
        first = self._first_epoch(run.progress, curve)
        epoch = first if run.reported is None else int(run.reported)
        job = _Job(run.trial, attempt, future, run.worker, curve, epoch, run.started, self._reports)
        self._jobs[run.trial] = job
        if run.stopped_at is not None:
            job.stopped = True
            heapq.heappush(self._heap, (run.stopped_at, run.stop_rank, job.generation, job))
        elif not self._reports:
            job.epoch = n - 1
            at = run.started + float(sum(curve.seconds[first:]))
            heapq.heappush(self._heap, (at, run.rank, job.generation, job))
        elif epoch >= n:  # every epoch reported: it had finished when the tuner died
            assert run.reported_at is not None
            heapq.heappush(self._heap, (run.reported_at, -1, job.generation, job))
        else:
            last = run.started if run.reported_at is None else run.reported_at
            at = last + float(curve.seconds[epoch])
            heapq.heappush(self._heap, (at, run.rank, job.generation, job))

    def _forget_continuing(self) -> None:
        for run in self._continuing.values():
            self._free.append(run.worker)
        self._continuing.clear()

    def _schedule(self, job: _Job, at: float) -> None:
        heapq.heappush(self._heap, (at, next(self._order), job.generation, job))

    def _stop(self, trial: int) -> None:
        job = self._jobs.get(trial)
        if job is not None and not job.stopped:
            job.stopped = True
            job.generation += 1  # its pending epoch never ends: it finishes now
            self._schedule(job, self.clock())

    def wait(
        self, futures: Iterable[Future[Any]], channel: ReportChannel | None = None
    ) -> set[Future[Any]]:
        """Move the clock to the next report or finish; the futures that finished by then."""
        while self._heap:
            at, _, generation, job = heapq.heappop(self._heap)
            if generation != job.generation:
                continue  # superseded by a stop
            self.clock.now = max(self.clock.now, at)
            n = len(job.curve.errors)
            if not job.stopped and job.epoch < n:  # (a continued run may have none left)
                job.epoch += 1
                if job.reports:
                    self._channel.pending.append(
                        (
                            job.trial,
                            job.attempt,
                            float(job.epoch),
                            float(job.curve.errors[job.epoch - 1]),
                        )
                    )
                if job.epoch < n:
                    self._schedule(job, at + float(job.curve.seconds[job.epoch]))
                    return set()
            self._finish(job)
            return {job.future}
        return set()

    def _finish(self, job: _Job) -> None:
        del self._jobs[job.trial]
        self._progress[job.trial] = job.epoch
        self._free.append(job.worker)
        error = float(job.curve.errors[job.epoch - 1]) if job.epoch else None
        message = None if error is not None else "stopped before its first epoch"
        job.future.set_result(TrialOutcome(error, message, self.clock() - job.started, job.worker))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._heap.clear()
        self._jobs.clear()
        self._continuing.clear()
