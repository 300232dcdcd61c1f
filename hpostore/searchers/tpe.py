"""Tree-structured Parzen estimator (multivariate), in the unit cube of the prior's quantiles.

A categorical dimension is compared by category index (same or not), so its cost does not grow
with the number of choices; scipy is imported at the first model-based proposal. In a space
with conditions, a kernel whose centre lacks a hyperparameter (inactive there) is the prior in
that dimension, and a candidate lacking one is scored without it (the dimension is
marginalized), so inactive values never enter the densities.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InvalidArgument
from ..space import JSONScalar
from ._results import ResultsSearcher
from .base import trial_rng

# Bandwidth of the numeric kernels: _SIGMA0 * n ** (-1 / (dims + 4)) in units of the cube's
# side, as Optuna's multivariate TPE with half its scale (0.2): on the synthetic suite 0.1 gave
# a lower median regret after 50 evaluations than 0.2 or 0.3 (Branin 0.0027 vs 0.0041 vs
# 0.008, Hartmann-6 0.11 vs 0.19 vs 0.26; 20 seeds), and the prior component keeps exploring.
_SIGMA0 = 0.1
_MIN_SIGMA = 0.01
_CAT_KEEP = 0.8  # probability a categorical kernel keeps its centre's category


class TPESearcher(ResultsSearcher):
    """Tree-structured Parzen estimator (Bergstra et al. 2011), multivariate (Falkner et al. 2018).

    Chosen as the fast density-based searcher: a proposal costs O(results x candidates),
    with no matrix factorization, so it stays cheap at thousands of results where a GP does
    not; it handles categorical and integer dimensions natively; and it is Optuna's default
    sampler, so comparisons with Optuna are like for like.

    The first ``n_startup`` proposals are random search's. Then the results are split into
    the best ``gamma`` fraction (at most 25, as in Optuna) and the rest; each part gets a
    Parzen density in the unit cube (truncated Gaussians for numeric dimensions, with a
    bandwidth shrinking with the number of results; a keep-or-resample kernel for
    categoricals; plus the uniform prior as one more component). Of ``n_candidates`` draws
    from the good density the one maximizing good/rest density ratio is proposed. Randomness
    comes from ``(seed, k)`` only, so a resumed study is rebuilt from its results in one pass.

    >>> from scipy import stats
    >>> s = TPESearcher({"x": stats.uniform(-5, 10), "act": ["relu", "tanh"]}, seed=0)
    >>> for _ in range(12):
    ...     c = s.sample_configuration()
    ...     s.update(c, (c["x"] - 1) ** 2)
    >>> s.sample_configuration()["act"] in ("relu", "tanh")
    True
    """

    n_startup: int
    gamma: float
    n_candidates: int

    def __init__(
        self,
        config_space: Mapping[str, Any],
        n_startup: int = 10,
        gamma: float = 0.1,
        n_candidates: int = 24,
        seed: int | None = None,
    ) -> None:
        self.save_hyperparameters()
        self._setup(config_space, seed)
        if not isinstance(n_startup, int) or n_startup < 1:
            raise InvalidArgument(f"n_startup must be a positive int, got {n_startup!r}")
        if not isinstance(gamma, (int, float)) or not 0 < gamma < 1:
            raise InvalidArgument(f"`0 < gamma < 1` must hold, but got gamma={gamma!r}")
        if not isinstance(n_candidates, int) or n_candidates < 1:
            raise InvalidArgument(f"n_candidates must be a positive int, got {n_candidates!r}")

    def _propose(self, seed: int, k: int) -> dict[str, JSONScalar]:
        data = self._training_set(max(self.n_startup, 2))
        if k < self.n_startup or data is None or self.cube.n == 0:
            return self._random(seed, k)
        q, errors = data
        rng = trial_rng(seed, k)
        n_good = min(math.ceil(self.gamma * len(errors)), 25)
        order = np.argsort(errors, kind="stable")
        good, rest = _Parzen(self, q[order[:n_good]]), _Parzen(self, q[order[n_good:]])
        candidates = good.sample(rng, self.n_candidates)
        score = good.log_pdf(candidates) - rest.log_pdf(candidates)
        return self.cube.decode(candidates[int(np.argmax(score))])


class _Parzen:
    """A mixture of product kernels centred on ``centres`` plus the uniform prior."""

    def __init__(self, searcher: TPESearcher, centres: np.ndarray) -> None:
        self.cube = searcher.cube
        self.centres = centres
        n, d = centres.shape
        bandwidth = max(_SIGMA0 * max(n, 1) ** (-1.0 / (d + 4)), _MIN_SIGMA)
        self.sigma = np.full(d, bandwidth)
        self.cat = self.cube.categorical
        self.sizes = np.array([dim.size for dim in self.cube.dims])

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        from scipy import special

        n, d = self.centres.shape
        which = rng.integers(0, n + 1, size=m)  # n = the prior
        out = rng.random((m, d))
        from_kernel = np.repeat((which < n)[:, None], d, axis=1)
        centres = self.centres[np.minimum(which, n - 1)]
        if self.cube.conditional:  # an inactive centre dimension: the prior's draw
            from_kernel &= ~np.isnan(centres)
        # numeric: truncated normal around the centre, by inverse CDF of uniforms
        lo = special.ndtr((0.0 - centres) / self.sigma)
        hi = special.ndtr((1.0 - centres) / self.sigma)
        u = rng.random((m, d))
        drawn = centres + self.sigma * special.ndtri(lo + u * (hi - lo))
        # categorical: keep the centre's category, else a uniform one (already in ``out``)
        keep = rng.random((m, d)) < _CAT_KEEP
        numeric = ~self.cat[None, :]
        take = from_kernel & (numeric | keep)
        out = np.where(take, np.where(numeric, drawn, centres), out)
        return self.cube.snap(np.clip(out, 0.0, 1.0))

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        from scipy import special

        n, d = self.centres.shape
        x = self.cube.mask_inactive(x)
        diff = x[:, None, :] - self.centres[None, :, :]  # m x n x d
        num = ~self.cat
        log_k = np.zeros(diff.shape)  # per component and dimension
        if num.any():
            c, sigma = self.centres[:, num], self.sigma[num]
            z = diff[:, :, num] / sigma
            norm = np.log(special.ndtr((1.0 - c) / sigma) - special.ndtr(-c / sigma) + 1e-300)
            log_k[:, :, num] = -0.5 * z * z - np.log(sigma * math.sqrt(2 * math.pi)) - norm
        for j in map(int, np.flatnonzero(self.cat)):
            size = self.sizes[j]
            same = self.cube.category(x, j)[:, None] == self.cube.category(self.centres, j)[None, :]
            p_same = _CAT_KEEP + (1 - _CAT_KEEP) / size
            p_other = (1 - _CAT_KEEP) / size
            # the density of a bin centre in quantile units: probability x size
            log_k[:, :, j] = np.log(np.where(same, p_same, p_other) * size)
        if self.cube.conditional:  # inactive in the candidate or the centre: density 1
            log_k = np.where(np.isnan(diff), 0.0, log_k)
        prior = np.zeros((len(x), 1, d))  # the uniform prior: density 1
        log_k = np.concatenate([log_k, prior], axis=1)
        return special.logsumexp(log_k.sum(-1), axis=1) - math.log(n + 1)
