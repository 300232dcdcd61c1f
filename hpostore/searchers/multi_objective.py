"""Multi-objective TPE by random scalarization (ParEGO's idea on TPE), read from the fold."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..space import JSONScalar
from .base import trial_rng
from .tpe import TPESearcher, _Parzen

if TYPE_CHECKING:
    from ..study import StudyState

#: weight of the sum term of the augmented Chebyshev scalarization (ParEGO: 0.05)
_RHO = 0.05


class MultiObjectiveTPESearcher(TPESearcher):
    """TPE on a random scalarization of a multi-objective study's results, one per proposal.

    Proposal ``k`` draws a weight vector from the simplex with ``default_rng([seed, k, 1])``
    and ranks every result by the augmented Chebyshev scalarization (ParEGO, Knowles 2006)
    of its objectives, each normalized to [0, 1] over the results so far (objectives under
    ``max`` are negated first); TPE then proposes as for one objective. The results and the
    objectives come from the live fold the tuner binds with ``restore`` (the study's
    ``metric``/``mode``), so a resumed study proposes what the uninterrupted one would: the
    weights depend on ``(seed, k)`` only, and the results are the logged ones.

    Under one objective (or used outside a tuner, without a fold) it is :class:`TPESearcher`.
    Takes TPE's arguments.
    """

    def __init__(
        self,
        config_space: Mapping[str, Any],
        n_startup: int = 10,
        gamma: float = 0.1,
        n_candidates: int = 24,
        seed: int | None = None,
    ) -> None:
        super().__init__(config_space, n_startup, gamma, n_candidates, seed)
        self._state: StudyState | None = None
        self._encoded: dict[int, np.ndarray] = {}

    def restore(self, state: StudyState) -> None:
        self._state = state  # the live fold: every result is in it before we propose
        self._encoded = {}
        super().restore(state)

    def _propose(self, seed: int, k: int) -> dict[str, JSONScalar]:
        state = self._state
        if state is None or len(state.metric) < 2:
            return super()._propose(seed, k)
        q, losses = self._results(state)
        if k < self.n_startup or len(losses) < max(self.n_startup, 2) or self.cube.n == 0:
            return self._random(seed, k)
        weights = np.random.default_rng([seed, k, 1]).dirichlet(np.ones(losses.shape[1]))
        low, high = losses.min(axis=0), losses.max(axis=0)
        scaled = (losses - low) / np.where(high > low, high - low, 1.0)
        scores = (scaled * weights).max(axis=1) + _RHO * (scaled * weights).sum(axis=1)
        rng = trial_rng(seed, k)
        n_good = min(math.ceil(self.gamma * len(scores)), 25)
        order = np.argsort(scores, kind="stable")
        good, rest = _Parzen(self, q[order[:n_good]]), _Parzen(self, q[order[n_good:]])
        candidates = good.sample(rng, self.n_candidates)
        score = good.log_pdf(candidates) - rest.log_pdf(candidates)
        return self.cube.decode(candidates[int(np.argmax(score))])

    def _results(self, state: StudyState) -> tuple[np.ndarray, np.ndarray]:
        """(quantile rows, loss rows) of the trials whose latest result holds every
        objective, in trial order (the fold's; the same after a resume)."""
        rows, losses = [], []
        for t in state.trials.values():
            if not t.has_result:
                continue
            loss = state.losses(t)
            if loss is None or not all(math.isfinite(x) for x in loss):
                continue
            q = self._encoded.get(t.trial)
            if q is None:
                q = self._encoded[t.trial] = self.cube.encode(t.config)
            rows.append(q)
            losses.append(loss)
        n = self.cube.n
        return np.array(rows, dtype=float).reshape(len(rows), n), np.array(losses, dtype=float)
