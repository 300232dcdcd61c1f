"""Regularized (aging) evolution (Real et al. 2019)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InvalidArgument
from ..space import JSONScalar
from ._results import ResultsSearcher
from .base import trial_rng

_STEP = 0.1  # Gaussian mutation step of a numeric dimension, in units of the cube's side
_RESAMPLE = 0.2  # probability a numeric mutation resamples the dimension instead


class EvolutionarySearcher(ResultsSearcher):
    """Regularized evolution: tournament selection from a population that ages out.

    The first ``population_size`` proposals are random search's. After that the population
    is the ``population_size`` most recent results (the oldest dies, whatever its error, which
    is what regularizes it); a proposal picks ``sample_size`` members at random, takes the best
    of them as the parent and mutates it: one dimension chosen at random (and each other with
    probability 1/dims) moves by a Gaussian step in the unit cube of the prior's quantiles (or
    is resampled), a categorical one switches to another value. Randomness comes from
    ``(seed, k)`` only, so a resumed study is rebuilt from its results in one pass.

    In a space with conditions, the dimension that is sure to move is one active in the parent,
    a hyperparameter the parent lacks gets a fresh draw from its prior (used if the child
    activates it), and one the child's mutation deactivates is dropped from the child.

    >>> from scipy import stats
    >>> s = EvolutionarySearcher({"x": stats.uniform(-5, 10)}, population_size=4, seed=0)
    >>> for _ in range(6):
    ...     c = s.sample_configuration()
    ...     s.update(c, (c["x"] - 1) ** 2)
    >>> -5 <= s.sample_configuration()["x"] <= 5
    True
    """

    population_size: int
    sample_size: int

    def __init__(
        self,
        config_space: Mapping[str, Any],
        population_size: int = 10,
        sample_size: int = 3,
        seed: int | None = None,
    ) -> None:
        self.save_hyperparameters()
        self._setup(config_space, seed)
        if not isinstance(population_size, int) or population_size < 2:
            raise InvalidArgument(f"population_size must be an int >= 2, got {population_size!r}")
        if not isinstance(sample_size, int) or not 1 <= sample_size <= population_size:
            raise InvalidArgument(
                f"`1 <= sample_size <= population_size` must hold, but got "
                f"(sample_size={sample_size!r}, population_size={population_size})"
            )

    def _propose(self, seed: int, k: int) -> dict[str, JSONScalar]:
        n_results = len(self._results_y)
        if k < self.population_size or n_results < self.population_size or self.cube.n == 0:
            return self._random(seed, k)
        rng = trial_rng(seed, k)
        population = range(n_results - self.population_size, n_results)
        contenders = rng.choice(population, size=self.sample_size, replace=False)
        parent = min(contenders, key=lambda i: (self._results_y[i], i))
        return self.cube.decode(self._mutate(rng, self._results_q[parent]))

    def _mutate(self, rng: np.random.Generator, q: np.ndarray) -> np.ndarray:
        child = q.copy()
        n = self.cube.n
        inactive = np.isnan(child) if self.cube.conditional else None
        if inactive is not None and inactive.any():
            child[inactive] = rng.random(int(inactive.sum()))
        chosen = rng.random(n) < 1.0 / n
        if inactive is not None and inactive.any():
            active = np.flatnonzero(~inactive)
            if len(active):
                chosen[active[rng.integers(len(active))]] = True
        else:
            chosen[rng.integers(n)] = True
        for j in map(int, np.flatnonzero(chosen)):
            dim = self.cube.dims[j]
            if dim.kind == "cat":
                if dim.size > 1:
                    current = int(self.cube.category(child[None, :], j)[0])
                    other = (current + 1 + int(rng.integers(dim.size - 1))) % dim.size
                    child[j] = (other + 0.5) / dim.size
            elif rng.random() < _RESAMPLE:
                child[j] = rng.random()
            else:
                step = child[j] + rng.normal(0.0, _STEP)
                child[j] = 1.0 - abs(1.0 - abs(step) % 2.0)  # reflected into [0, 1]
        return self.cube.snap(child[None, :])[0]
