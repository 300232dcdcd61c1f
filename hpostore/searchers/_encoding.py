"""The unit cube that model-based searchers work in: one quantile per non-constant domain.

A config is encoded as the prior's quantiles ``q`` in (0, 1), one per non-constant domain in
space order, and decoded by :meth:`ConfigSpace.sample`, the same inverse-CDF map random
search uses. So a ``loguniform`` dimension is log-scaled, a ``uniform`` one linear, an integer
is the centre of its value's quantile bin, and a categorical value is the centre of its bin.
A model reads a categorical column as the category's index (:meth:`UnitCube.inputs`) and
compares indices for equality; nothing is ever one-hot encoded, so a categorical with 100k
choices costs what one with 2 does.

In a space with conditions, an inactive hyperparameter's quantile is NaN ("absent"):
:meth:`UnitCube.mask_inactive` marks them in candidate rows, :meth:`UnitCube.inputs` imputes a
fixed value outside the cube for a model (numeric -0.5, categorical index -1), and
:meth:`UnitCube.decode` drops them, so an imputed value never reaches a proposal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..space import Choice, ConfigSpace, Constant, JSONScalar, ScipyDomain

_EPS = 1e-9
_INACTIVE_NUMERIC = -0.5  # a model's input for an inactive numeric dim: 0.5 from any value
_INACTIVE_CATEGORY = -1  # ... and for an inactive categorical: equal to no category


@dataclass(frozen=True, slots=True)
class Dim:
    """One non-constant hyperparameter: its name, domain and kind (float, int or cat)."""

    name: str
    domain: ScipyDomain | Choice
    kind: str  # "float" | "int" | "cat"
    size: int  # categories (cat) or integer values (int; 0 when unbounded)
    low: int  # the smallest integer value (int)


def _int_size(domain: ScipyDomain) -> tuple[int, int]:
    low, high = domain.support()
    if math.isinf(low) or math.isinf(high):
        return 0, (0 if math.isinf(low) else int(low))
    return int(high) - int(low) + 1, int(low)


class UnitCube:
    """Encode/decode configs of ``space`` to and from quantile vectors (see the module doc)."""

    def __init__(self, space: ConfigSpace) -> None:
        self.space = space
        dims = []
        for name, d in space.domains.items():
            if isinstance(d, Constant):
                continue
            if isinstance(d, Choice):
                dims.append(Dim(name, d, "cat", len(d.values), 0))
            elif d.is_integer:
                size, low = _int_size(d)
                dims.append(Dim(name, d, "int", size, low))
            else:
                dims.append(Dim(name, d, "float", 0, 0))
        self.dims: tuple[Dim, ...] = tuple(dims)
        self.n = len(dims)
        self.categorical = np.array([d.kind == "cat" for d in dims], dtype=bool)
        #: whether the space has conditions (only then may a quantile be NaN)
        self.conditional = bool(space.conditions)
        self._column = {d.name: j for j, d in enumerate(dims)}

    # --- configs <-> quantiles --------------------------------------------------------------
    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """The quantile vector of ``config`` (bin centres for discrete values; NaN for a
        conditional hyperparameter absent from it)."""
        if self.conditional:
            return np.array(
                [
                    math.nan
                    if d.name not in config and d.name in self.space.conditions
                    else _quantile(d, config[d.name])
                    for d in self.dims
                ],
                dtype=float,
            )
        return np.array([_quantile(d, config[d.name]) for d in self.dims], dtype=float)

    def decode(self, q: np.ndarray) -> dict[str, JSONScalar]:
        """The config at quantiles ``q`` (clipped into the open unit interval); inactive
        hyperparameters are left out, whatever their quantile (NaN stands for any)."""
        return self.space.sample(
            [0.5 if u != u else min(max(float(u), _EPS), 1.0 - _EPS) for u in q]
        )

    def mask_inactive(self, q: np.ndarray) -> np.ndarray:
        """The ``m x n`` matrix ``q`` with NaN where a row's hyperparameter is inactive (``q``
        itself when the space has no conditions)."""
        if not self.conditional:
            return q
        m = len(q)
        active: dict[str, np.ndarray] = {}
        out = np.array(q, dtype=float)
        space = self.space
        for name in space._order:
            condition = space.conditions.get(name)
            on = np.ones(m, dtype=bool)
            for parent in condition.parents if condition else ():
                on &= active[parent] & self._matches(out, name, parent)
            active[name] = on
            j = self._column.get(name)
            if j is not None:
                out[~on, j] = math.nan
        return out

    def _matches(self, q: np.ndarray, name: str, parent: str) -> np.ndarray:
        """Per row of ``q``, whether ``parent``'s value is one that ``name``'s condition lists."""
        allowed = self.space._allowed[name, parent]
        domain = self.space.domains[parent]
        j = self._column.get(parent)
        if j is None:  # a constant parent
            return np.full(len(q), getattr(domain, "value", None) in allowed)
        if isinstance(domain, Choice):
            return np.isin(self.category(q, j), list(allowed))
        values = [None if u != u else domain.sample(min(max(u, _EPS), 1 - _EPS)) for u in q[:, j]]
        return np.array([v in allowed for v in values], dtype=bool)

    def fill_inactive(self, q: np.ndarray, value: float = 0.5) -> np.ndarray:
        """``q`` with NaN (inactive) entries replaced by ``value``, e.g. to move a result."""
        return np.where(np.isnan(q), value, q) if self.conditional else q

    def snap(self, q: np.ndarray) -> np.ndarray:
        """``q`` (an ``m x n`` matrix) moved to the bin centres of its discrete dims."""
        out = np.clip(np.array(q, dtype=float), _EPS, 1.0 - _EPS)
        for j, d in enumerate(self.dims):
            if d.kind == "cat" or (d.kind == "int" and d.size > 0 and _is_randint(d.domain)):
                out[:, j] = (np.floor(out[:, j] * d.size) + 0.5) / d.size
            elif d.kind == "int":  # another discrete distribution: through its CDF
                assert isinstance(d.domain, ScipyDomain)
                frozen = d.domain.frozen()
                v = frozen.ppf(out[:, j])
                out[:, j] = 0.5 * (frozen.cdf(v - 1) + frozen.cdf(v))
        return out

    def category(self, q: np.ndarray, j: int) -> np.ndarray:
        """Category indices of column ``j`` of the quantile matrix ``q`` (-1 where NaN)."""
        size = self.dims[j].size
        if self.conditional:
            col = q[:, j]
            nan = np.isnan(col)
            if nan.any():
                index = np.minimum((np.where(nan, 0.0, col) * size).astype(int), size - 1)
                return np.where(nan, _INACTIVE_CATEGORY, index)
        return np.minimum((q[:, j] * size).astype(int), size - 1)

    def inputs(self, q: np.ndarray) -> np.ndarray:
        """A model's inputs for quantile rows ``q``: numeric dims as is, categoricals as their
        category index (compare them for equality, never by distance); same shape as ``q``.
        Inactive (NaN) entries get a fixed value outside the cube, for the model only."""
        if self.conditional:
            q = np.where(np.isnan(q) & ~self.categorical, _INACTIVE_NUMERIC, q)
        if not self.categorical.any():
            return q
        out = np.array(q, dtype=float)
        for j in map(int, np.flatnonzero(self.categorical)):
            out[:, j] = self.category(q, j)
        return out


def _is_randint(domain: ScipyDomain | Choice) -> bool:
    return isinstance(domain, ScipyDomain) and domain.dist == "randint"


def _quantile(d: Dim, value: Any) -> float:
    domain = d.domain
    if isinstance(domain, Choice):
        return (domain.index(value) + 0.5) / d.size
    kw = dict(domain.kwds)
    if d.kind == "int":
        if _is_randint(domain) and d.size > 0:
            return (int(value) - d.low + 0.5) / d.size
        frozen = domain.frozen()
        return float(0.5 * (frozen.cdf(value - 1) + frozen.cdf(value)))
    if domain.dist == "uniform":
        loc = kw.get("loc", domain.args[0] if domain.args else 0.0)
        scale = kw.get("scale", domain.args[1] if len(domain.args) > 1 else 1.0)
        q = (float(value) - loc) / scale
    elif domain.dist in ("loguniform", "reciprocal") and not kw and len(domain.args) == 2:
        lo, hi = math.log(domain.args[0]), math.log(domain.args[1])
        q = (math.log(float(value)) - lo) / (hi - lo)
    else:
        q = float(domain.frozen().cdf(value))
    return min(max(q, _EPS), 1.0 - _EPS)
