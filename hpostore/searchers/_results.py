"""The base of the built-in model-based searchers: seed, sample counter, results, restore.

A subclass implements :meth:`ResultsSearcher._propose` as a pure function of ``(seed, k)`` and
of the results observed so far, so restoring a study is one pass over its logged results: no
model is refitted per past step, and the next proposal equals the uninterrupted run's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..space import ConfigSpace, JSONScalar
from ._encoding import UnitCube
from .base import SeededSearcher, check_seed, trial_uniforms


def resource_of(additional_info: Any) -> float | None:
    """The resource (fidelity) a result was measured at: ``additional_info`` itself when it is a
    number, its ``"resource"`` entry when it is a mapping, else None (one fidelity)."""
    value = additional_info
    if isinstance(additional_info, Mapping):
        value = additional_info.get("resource")
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    return None


class ResultsSearcher(SeededSearcher):
    """Seeded searcher whose state is the list of results it was given (see the module doc)."""

    space: ConfigSpace
    seed: int | None

    def _setup(self, config_space: Mapping[str, Any], seed: int | None) -> None:
        self.space = ConfigSpace(config_space)
        self.seed = check_seed(seed)
        self.cube = UnitCube(self.space)
        self._n_sampled = 0
        self._results_q: list[np.ndarray] = []  # quantile vector of each result's config
        self._results_y: list[float] = []
        self._results_r: list[float | None] = []
        self._pending: list[np.ndarray] = []  # sampled, no result yet (in order)

    # --- seed -------------------------------------------------------------------------------
    # --- the textbook API -------------------------------------------------------------------
    def sample_configuration(self) -> dict[str, Any]:
        seed = self._bound_seed()
        k = self._n_sampled
        config = self._propose(seed, k)
        self._n_sampled += 1
        self._pending.append(self.cube.encode(config))
        return config

    def update(self, config: dict[str, Any], error: float, additional_info: Any = None) -> None:
        self._observe(config, float(error), resource_of(additional_info))

    def _propose(self, seed: int, k: int) -> dict[str, JSONScalar]:
        """Proposal ``k``: a function of ``(seed, k)`` and the results so far only."""
        raise NotImplementedError(f"{type(self).__name__} defines no _propose()")

    def _random(self, seed: int, k: int) -> dict[str, JSONScalar]:
        """Proposal ``k`` of random search with the same seed (the initial design)."""
        return self.space.sample(trial_uniforms(seed, k, self.space.n_random))

    def _observe(self, config: Mapping[str, Any], error: float, resource: float | None) -> None:
        if not math.isfinite(error):
            return  # the tuner logs such a trial as failed; nothing to learn from it
        q = self.cube.encode(config)  # reads the space's names only (a scheduler may add some)
        self._results_q.append(q)
        self._results_y.append(error)
        self._results_r.append(resource)
        for i, pending in enumerate(self._pending):
            if np.array_equal(pending, q, equal_nan=True):  # NaN: inactive (conditions)
                del self._pending[i]
                break

    # --- restore ----------------------------------------------------------------------------
    def restorable(self) -> bool:
        # A user subclass that changes how proposals or results are handled is re-executed.
        cls = type(self)
        return all(
            getattr(cls, m).__module__.startswith("hpostore.searchers")
            for m in ("sample_configuration", "update", "_propose", "_observe")
        )

    def restore_results(
        self,
        n_sampled: int,
        results: Iterable[tuple[dict[str, Any], float, Any]],
        pending: Iterable[dict[str, Any]] = (),
    ) -> None:
        if not self.restorable():
            raise NotImplementedError
        self._n_sampled = n_sampled
        self._results_q, self._results_y, self._results_r = [], [], []
        self._pending = [self.cube.encode(c) for c in pending]
        for config, error, info in results:
            if not math.isfinite(error):
                continue
            self._results_q.append(self.cube.encode(config))
            self._results_y.append(float(error))
            self._results_r.append(resource_of(info))

    # --- for the models ---------------------------------------------------------------------
    def _training_set(self, min_points: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Results at the highest resource that has ``min_points`` of them (BOHB's rule; all
        results under FIFO), as (quantile matrix, errors); None when no resource has enough."""
        levels: dict[float | None, list[int]] = {}
        for i, r in enumerate(self._results_r):
            levels.setdefault(r, []).append(i)
        for r in sorted(levels, key=lambda r: -math.inf if r is None else r, reverse=True):
            rows = levels[r]
            if len(rows) >= min_points:
                q = np.array([self._results_q[i] for i in rows], dtype=float)
                return q.reshape(len(rows), self.cube.n), np.array(
                    [self._results_y[i] for i in rows]
                )
        return None

    def _pending_q(self) -> np.ndarray:
        return np.array(self._pending, dtype=float).reshape(-1, self.cube.n)
