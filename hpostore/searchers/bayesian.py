"""Gaussian-process Bayesian optimization (Matérn 5/2, expected improvement), numpy/scipy only.

scipy is imported when a model is first fitted, not with the module (``import hpostore`` stays
fast). A categorical dimension enters the kernel as "same category or not" (a Hamming term with
its own lengthscale), never one-hot, so its cost does not grow with the number of choices.
In a space with conditions an inactive hyperparameter enters the kernel at a fixed value
outside the cube (:meth:`UnitCube.inputs`); candidates are scored as the configs they decode
to (inactive dimensions masked), and the imputed value is never proposed.
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

_SQRT5 = math.sqrt(5.0)
_LOG_2PI = math.log(2.0 * math.pi)
_JITTER = 1e-8
# Hyperparameter bounds (inputs in the unit cube, outputs standardized) and a weak log-normal
# prior on the lengthscales, centred on half the cube: with few points the likelihood alone
# often prefers a degenerate fit (everything noise, or a spike on every point).
_LOG_ELL_BOUNDS = (math.log(0.01), math.log(20.0))
_LOG_SF2_BOUNDS = (math.log(0.05), math.log(20.0))
_LOG_SN2_BOUNDS = (math.log(1e-6), math.log(0.5))
_LOG_ELL_PRIOR = (math.log(0.5), 1.0)  # mean, sd
# Cost control: the hyperparameters are fitted on at most this many results (the posterior
# uses all), and EI is refined around the _N_TOP best candidates with _N_STEPS steps each.
_MAX_FIT_POINTS = 50
_N_TOP, _N_STEPS = 5, 16


def _matern52(scaled_sq_dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(k(r), sqrt(5) r, exp(-sqrt(5) r)) of Matérn 5/2 at squared scaled distances."""
    s = _SQRT5 * np.sqrt(np.maximum(scaled_sq_dist, 0.0))
    e = np.exp(-s)
    return (1.0 + s + s * s / 3.0) * e, s, e


def _sq_dists(a: np.ndarray, b: np.ndarray, inv_ell2: np.ndarray, cat: np.ndarray) -> np.ndarray:
    """Squared scaled distances between rows of ``a`` and ``b``: numeric columns by difference,
    categorical columns (``cat``, category indices) 1 when the categories differ, else 0."""
    num = ~cat
    if num.all():
        w = np.sqrt(inv_ell2)
        an, bn = a * w, b * w
    else:
        w = np.sqrt(inv_ell2[num])
        an, bn = a[:, num] * w, b[:, num] * w
    d = (an * an).sum(1)[:, None] + (bn * bn).sum(1)[None, :] - 2.0 * an @ bn.T
    d = np.maximum(d, 0.0)
    for j in map(int, np.flatnonzero(cat)):
        d += inv_ell2[j] * (a[:, j, None] != b[None, :, j])
    return d


def _pair_sq_diffs(x: np.ndarray, cat: np.ndarray) -> np.ndarray:
    """Per input dimension, the squared differences of all row pairs, flattened: ``dims x n*n``
    (for a categorical dimension, 1 where the categories differ)."""
    n_dims, n = x.shape[1], x.shape[0]
    d2 = np.empty((n_dims, n * n))
    for j in range(n_dims):
        diff = x[:, j, None] - x[None, :, j]
        d2[j] = (diff != 0).ravel() if cat[j] else (diff * diff).ravel()
    return d2


def _neg_log_posterior(
    theta: np.ndarray, d2: np.ndarray, y: np.ndarray
) -> tuple[float, np.ndarray]:
    """Negative log marginal likelihood (plus the lengthscale prior) and its gradient.

    ``d2`` holds the squared differences per input dimension, flattened: ``dims x n*n``.
    """
    n_dims = d2.shape[0]
    n = y.shape[0]
    inv_ell2 = np.exp(-2.0 * theta[:n_dims])
    sf2, sn2 = math.exp(theta[n_dims]), math.exp(theta[n_dims + 1])
    kc, s, e = _matern52((inv_ell2 @ d2).reshape(n, n))
    k = sf2 * kc
    k[np.diag_indices(n)] += sn2 + _JITTER
    from scipy.linalg import lapack

    # LAPACK directly: at these sizes scipy.linalg's wrappers cost as much as the work
    chol, info = lapack.dpotrf(k, lower=1, clean=1)
    if info != 0:
        return 1e25, np.zeros_like(theta)
    alpha = lapack.dpotrs(chol, y, lower=1)[0]
    k_inv = lapack.dpotri(chol, lower=1)[0]  # lower triangle only
    k_inv = np.tril(k_inv) + np.tril(k_inv, -1).T
    mu, sd = _LOG_ELL_PRIOR
    log_ell = theta[:n_dims]
    value = (
        0.5 * float(y @ alpha)
        + float(np.log(np.diag(chol)).sum())
        + 0.5 * n * _LOG_2PI
        + 0.5 * float((((log_ell - mu) / sd) ** 2).sum())
    )
    w = np.outer(alpha, alpha) - k_inv  # d(-lml)/dθ = -tr(w dK/dθ) / 2
    g = w * (sf2 * (5.0 / 3.0) * (1.0 + s) * e)
    trace_w = float(np.trace(w))
    grad = np.empty_like(theta)
    grad[:n_dims] = -0.5 * (d2 @ g.ravel()) * inv_ell2 + (log_ell - mu) / sd**2
    grad[n_dims] = -0.5 * float((w * k).sum() - (sn2 + _JITTER) * trace_w)
    grad[n_dims + 1] = -0.5 * sn2 * trace_w
    return value, grad


class _Posterior:
    """GP posterior on standardized targets for fixed hyperparameters ``theta``."""

    def __init__(self, x: np.ndarray, y: np.ndarray, theta: np.ndarray, cat: np.ndarray) -> None:
        from scipy import linalg

        n_dims = x.shape[1]
        self.x = x
        self.cat = cat
        self.inv_ell2 = np.exp(-2.0 * theta[:n_dims])
        self.sf2 = math.exp(theta[n_dims])
        self.sn2 = math.exp(theta[n_dims + 1])
        k = self.sf2 * _matern52(_sq_dists(x, x, self.inv_ell2, cat))[0]
        k[np.diag_indices(len(y))] += self.sn2 + _JITTER
        for jitter in (0.0, 1e-6, 1e-4, 1e-2):  # more only if rounding broke definiteness
            try:
                chol = linalg.cholesky(k + jitter * np.eye(len(y)), lower=True, check_finite=False)
                break
            except linalg.LinAlgError:
                if jitter == 1e-2:
                    raise
        self.chol = chol
        self.alpha = linalg.cho_solve((chol, True), y, check_finite=False)

    def predict(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the latent function at rows ``xs``."""
        from scipy import linalg

        ks = self.sf2 * _matern52(_sq_dists(xs, self.x, self.inv_ell2, self.cat))[0]
        mean = ks @ self.alpha
        v = linalg.solve_triangular(self.chol, ks.T, lower=True, check_finite=False)
        var = self.sf2 - (v * v).sum(0)
        return mean, np.sqrt(np.maximum(var, 1e-12))


def fit_subset(y: np.ndarray, size: int) -> np.ndarray:
    """Rows to fit the hyperparameters on when there are more than ``size`` results: the best
    half, and the rest spread evenly over the others in log order (so the fit's cost stays
    bounded; the posterior itself uses every result)."""
    n = len(y)
    if n <= size:
        return np.arange(n)
    order = np.argsort(y, kind="stable")
    best = order[: size // 2]
    rest = np.sort(order[size // 2 :])
    spread = rest[np.linspace(0, len(rest) - 1, size - size // 2).round().astype(int)]
    return np.sort(np.concatenate([best, spread]))


def fit_hyperparameters(
    x: np.ndarray, y: np.ndarray, cat: np.ndarray | None = None, *, max_iter: int = 60
) -> np.ndarray:
    """Matérn 5/2 ARD hyperparameters ``[log lengthscales, log signal var, log noise var]`` that
    maximize the marginal likelihood of standardized ``y`` at ``x`` (SLSQP, analytic
    gradient, from a fixed start so the fit is a pure function of the data). ``cat`` marks the
    columns that hold category indices."""
    from scipy import optimize

    n_dims = x.shape[1]
    d2 = _pair_sq_diffs(x, np.zeros(n_dims, dtype=bool) if cat is None else cat)
    bounds = [_LOG_ELL_BOUNDS] * n_dims + [_LOG_SF2_BOUNDS, _LOG_SN2_BOUNDS]
    start = np.array([math.log(0.5)] * n_dims + [0.0, math.log(1e-3)])
    result = optimize.minimize(
        _neg_log_posterior,
        start,
        args=(d2, y),
        jac=True,
        method="SLSQP",
        bounds=bounds,
        options={"maxiter": max_iter},
    )
    return np.asarray(result.x, dtype=float)


def expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """EI of minimization below ``best``."""
    from scipy import special

    z = (best - mean) / sd
    return sd * (z * special.ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi))


class BayesianSearcher(ResultsSearcher):
    """Gaussian-process Bayesian optimization with expected improvement.

    The first ``n_init`` proposals are random search's (the same configs as
    :class:`RandomSearcher` with this seed). Then each proposal fits a GP with a Matérn 5/2
    ARD kernel to the results — inputs in the unit cube of the prior's quantiles (log-scaled for
    ``loguniform``, integers at their bin centres; a categorical adds a same-or-not term to the
    kernel's distance, with its own lengthscale), errors standardized —
    with hyperparameters maximizing the marginal likelihood (SLSQP from a fixed start), and
    returns the config maximizing expected improvement among ``n_candidates`` random points and
    a local refinement around the best of them and of the results. Configs proposed but without
    a result yet (parallel workers) enter the model at its predicted mean ("kriging believer"),
    so the next proposal goes elsewhere.

    Proposal ``k`` is a function of the seed, ``k`` and the results only: a resumed study is
    rebuilt from its logged results in one pass and proposes what an uninterrupted run would.
    Under a multi-fidelity scheduler that passes the resource as ``additional_info``, the model
    is fitted to the results at the highest resource that has at least ``n_init`` of them
    (BOHB's rule).

    >>> from scipy import stats
    >>> s = BayesianSearcher({"x": stats.uniform(-5, 10)}, n_init=3, seed=0)
    >>> for _ in range(5):
    ...     c = s.sample_configuration()
    ...     s.update(c, (c["x"] - 1) ** 2)
    >>> -5 <= s.sample_configuration()["x"] <= 5
    True
    """

    n_candidates: int

    def __init__(
        self,
        config_space: Mapping[str, Any],
        n_init: int | None = None,
        n_candidates: int = 500,
        seed: int | None = None,
    ) -> None:
        self.save_hyperparameters()
        self._setup(config_space, seed)
        if n_init is not None and (not isinstance(n_init, int) or n_init < 1):
            raise InvalidArgument(f"n_init must be a positive int or None, got {n_init!r}")
        if not isinstance(n_candidates, int) or n_candidates < 1:
            raise InvalidArgument(f"n_candidates must be a positive int, got {n_candidates!r}")
        self._n_init = max(5, self.cube.n + 1) if n_init is None else n_init

    def _propose(self, seed: int, k: int) -> dict[str, JSONScalar]:
        data = self._training_set(max(self._n_init, 2))
        if k < self._n_init or data is None or self.cube.n == 0:
            return self._random(seed, k)
        q_obs, errors = data
        rng = trial_rng(seed, k)
        mean, scale = float(errors.mean()), float(errors.std())
        y = (errors - mean) / (scale if scale > 0 else 1.0)
        cat = self.cube.categorical
        x = self.cube.inputs(q_obs)
        fit_rows = fit_subset(y, _MAX_FIT_POINTS)
        theta = fit_hyperparameters(x[fit_rows], y[fit_rows], cat)
        posterior = _Posterior(x, y, theta, cat)
        pending = self._pending_q()
        if len(pending):  # kriging believer: pending configs "observed" at the predicted mean
            x_pending = self.cube.inputs(pending)
            x_all = np.vstack([x, x_pending])
            posterior = _Posterior(
                x_all, np.concatenate([y, posterior.predict(x_pending)[0]]), theta, cat
            )
        best = float(y.min())

        def score(q: np.ndarray) -> np.ndarray:
            mu, sd = posterior.predict(self.cube.inputs(self.cube.mask_inactive(q)))
            return expected_improvement(mu, sd, best)

        # random candidates, and steps around the best results (inactive dims from the middle)
        best_q = self.cube.fill_inactive(q_obs[np.argsort(y, kind="stable")[:_N_TOP]])
        around_best = np.repeat(best_q, _N_STEPS, axis=0)
        candidates = self.cube.snap(
            np.vstack(
                [
                    rng.random((self.n_candidates, self.cube.n)),
                    _perturb(rng, around_best, 0.05, cat),
                ]
            )
        )
        ei = score(candidates)
        order = np.argsort(-ei, kind="stable")[:_N_TOP]
        top, top_ei = candidates[order], ei[order]
        each = np.arange(len(top))
        for sigma in (0.05, 0.015, 0.005):  # local refinement: keep the best step of each
            moved = self.cube.snap(_perturb(rng, np.repeat(top, _N_STEPS, axis=0), sigma, cat))
            moved = moved.reshape(len(top), _N_STEPS, self.cube.n)
            moved_ei = score(moved.reshape(-1, self.cube.n)).reshape(len(top), _N_STEPS)
            j = moved_ei.argmax(1)
            better = moved_ei[each, j] > top_ei
            top[better] = moved[each, j][better]
            top_ei = np.maximum(top_ei, moved_ei[each, j])
        return self.cube.decode(top[int(np.argmax(top_ei))])


def _perturb(rng: np.random.Generator, q: np.ndarray, sigma: float, cat: np.ndarray) -> np.ndarray:
    """``q`` moved by Gaussian steps, reflected back into the unit cube; a categorical column
    (``cat``) keeps its category, or with probability ``4 sigma`` takes a uniformly random one
    (a step in quantile space would jump over thousands of categories of a large one)."""
    moved = q + rng.normal(0.0, sigma, size=q.shape)
    moved = np.abs(moved)
    moved = 1.0 - np.abs(1.0 - np.mod(moved, 2.0))
    if cat.any():  # extra draws only then: numeric-only spaces propose what they always did
        cols = np.flatnonzero(cat)
        jump = rng.random((len(q), len(cols))) < min(1.0, 4.0 * sigma)
        moved[:, cols] = np.where(jump, rng.random((len(q), len(cols))), q[:, cols])
    return moved
