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

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

import numpy as np
from scipy import stats

from ._simworkers import LearningCurve, SimulatedClock, SimulatedExecutor
from .errors import InvalidArgument

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "Branin",
    "Hartmann6",
    "LearningCurve",
    "SimulatedClock",
    "SimulatedExecutor",
    "SyntheticBenchmark",
]


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
        x = [float(config[name]) for name, _, _ in self.bounds]
        return self._curve(x, n), [self.epoch_seconds(config)] * n

    def _curve(self, x: list[float], n: int) -> list[float]:
        """The function at ``x`` after each epoch 1..n (fidelities ``k / max_resource``)."""
        z = np.arange(1, n + 1) / self.max_resource  # the same z as error(config, r)
        values: list[float] = self.values(np.array(x), z).tolist()
        return values

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

    def _curve(self, x: list[float], n: int) -> list[float]:
        # :meth:`values` in plain floats, operation for operation (the same IEEE results, bit
        # for bit; ``v * v`` is what numpy's ``** 2`` computes): numpy's per-call overhead on
        # arrays of a few epochs was a tenth of a simulated study's time per trial
        if type(self).values is not Branin.values:  # a subclass's own function
            return super()._curve(x, n)
        x1, x2 = x[0], x[1]
        base_b, base_c, base_t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
        x1_sq, cos_x1, m = x1**2, math.cos(x1), self.max_resource
        out = []
        for k in range(1, n + 1):
            w = 1 - k / m
            v = x2 - (base_b - 0.01 * w) * x1_sq + (base_c - 0.1 * w) * x1 - 6
            out.append(v * v + 10 * (1 - (base_t + 0.05 * w)) * cos_x1 + 10 + 10 * w)
        return out

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
