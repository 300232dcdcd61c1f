"""Hyperparameter importance: the share of the result's variance each hyperparameter explains.

Each on its own (binned means, numpy only), for the importance plot and the dashboard.

The estimate is the correlation ratio η² of the result on the binned parameter:
``η² = Σ_b n_b (ȳ_b − ȳ)² / Σ_i (y_i − ȳ)²``, where the bins ``b`` are the categories of a
categorical parameter, or up to ``max_bins`` equal-count bins (quantiles) of a numeric one.
It is 0 when the mean result is the same in every bin and 1 when the parameter alone decides
the result. With few trials per bin η² is biased upwards (a bin of one trial explains its own
noise), so the bins hold at least ``min_per_bin`` trials each. Interactions between
parameters are not seen (fANOVA would); the estimates need not sum to 1.

>>> import numpy as np
>>> x = np.linspace(0, 1, 200); y = (x > 0.5).astype(float)
>>> round(importance({"x": list(x), "noise": list(np.resize([0.0, 1.0], 200))}, list(y))[0][1], 2)
1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def correlation_ratio(
    values: Sequence[Any], errors: Sequence[float], *, max_bins: int = 10, min_per_bin: int = 5
) -> float | None:
    """η² of ``errors`` on the binned ``values`` (trials whose value is None or whose error
    is not finite left out); None when fewer than two trials remain, 0 when the errors left
    are constant."""
    y_all = np.asarray(errors, dtype=float)
    keep = [i for i, v in enumerate(values) if v is not None and np.isfinite(y_all[i])]
    if len(keep) < 2:
        return None
    y = y_all[keep]
    codes = _bin_codes([values[i] for i in keep], max_bins=max_bins, min_per_bin=min_per_bin)
    total = float(np.sum((y - y.mean()) ** 2))
    if total <= 0.0:
        return 0.0
    counts = np.bincount(codes)
    sums = np.bincount(codes, weights=y)
    used = counts > 0
    between = float(np.sum(counts[used] * (sums[used] / counts[used] - y.mean()) ** 2))
    return min(1.0, between / total)


def _bin_codes(values: Sequence[Any], *, max_bins: int, min_per_bin: int) -> np.ndarray:
    """Integer bin codes: categories as they come, or quantile bins of numbers."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        x = np.asarray(values, dtype=float)
        n_bins = max(1, min(max_bins, x.size // max(1, min_per_bin)))
        edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)[1:-1]))
        return np.searchsorted(edges, x, side="right").astype(np.int64)
    _, codes = np.unique(np.array([repr(v) for v in values]), return_inverse=True)
    return np.asarray(codes, dtype=np.int64)


def importance(
    params: Mapping[str, Sequence[Any]],
    errors: Sequence[float],
    *,
    max_bins: int = 10,
    min_per_bin: int = 5,
) -> list[tuple[str, float]]:
    """(name, η²) for each parameter, most important first. ``params[name][i]`` is trial i's
    value (None where the trial has no such parameter: those trials are left out for it; a
    parameter with fewer than two trials left is left out)."""
    out = []
    for name, values in params.items():
        score = correlation_ratio(values, errors, max_bins=max_bins, min_per_bin=min_per_bin)
        if score is not None:
            out.append((name, score))
    return sorted(out, key=lambda item: -item[1])
