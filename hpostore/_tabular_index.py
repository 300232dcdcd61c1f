"""A tabular benchmark's nearest-row lookup: configs as unit-cube points, one mat-vec each."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from statistics import NormalDist
from typing import Any

import numpy as np

from .errors import InvalidArgument
from .searchers._encoding import UnitCube
from .space import Choice, ConfigSpace, ScipyDomain

__all__ = ["NearestRowIndex", "UnitCubeEncoder"]

_HALF_SQRT2 = math.sqrt(0.5)  # one-hot entries: a category mismatch adds 1 to the squared distance
_CACHE_SIZE = 4096
_TIE = 1e-12  # scores this close to the best are compared exactly


class UnitCubeEncoder:
    """A config as its point in the unit cube of ``space`` (see :mod:`hpostore.tabular`): one
    quantile per numeric dimension, then one-hot blocks (entries ``sqrt(1/2)``) per categorical
    one."""

    def __init__(self, space: ConfigSpace) -> None:
        cube = UnitCube(space)
        self.names = [d.name for d in cube.dims]
        self._numeric: list[tuple[str, Callable[[Any], float]]] = []
        self._categorical: list[tuple[str, Choice, dict[tuple[type, Any], int], int]] = []
        offset = sum(d.kind != "cat" for d in cube.dims)
        for d in cube.dims:
            if isinstance(d.domain, Choice):
                index: dict[tuple[type, Any], int] = {}
                for k, v in enumerate(d.domain.values):
                    index.setdefault((type(v), v), k)
                self._categorical.append((d.name, d.domain, index, offset))
                offset += d.size
            else:
                self._numeric.append((d.name, _fast_quantile(d) or _slow_quantile(d)))
        self.width = offset

    def __call__(self, config: Mapping[str, Any]) -> np.ndarray:
        f = [enc(config[name]) for name, enc in self._numeric]
        if self._categorical:
            f.extend([0.0] * (self.width - len(f)))
            for name, domain, index, offset in self._categorical:
                value = config[name]
                k = index.get((type(value), value))
                if k is None:
                    k = domain.values.index(value)  # 1 == 1.0 == True; ValueError if absent
                f[offset + k] = _HALF_SQRT2
        return np.array(f)


class NearestRowIndex:
    """The rows of a table as unit-cube points (``encoded``, one row each, built by
    ``encoder``) and the lookup of the one nearest to a config among the rows whose curve
    (``lengths`` epochs) reaches a resource; ``name`` and ``space`` word the errors."""

    def __init__(
        self,
        encoder: UnitCubeEncoder,
        encoded: np.ndarray,
        lengths: np.ndarray,
        max_resource: int,
        *,
        name: str,
        space: ConfigSpace,
    ) -> None:
        self._encoder = encoder
        self._dims = encoder.names
        self._name = name
        self._space = space
        # |x - f|^2 / 2 = |x|^2 / 2 - x.f + |f|^2 / 2: one mat-vec per lookup
        self._x = np.ascontiguousarray(encoded)
        self._half_norms = 0.5 * (encoded * encoded).sum(axis=1)
        self._lengths = lengths
        self._all_full = bool((lengths == max_resource).all())
        self.cache: dict[tuple[Any, ...], int] = {}

    def nearest(self, config: Mapping[str, Any], resource: int | None) -> int:
        """The index of the row nearest to ``config`` among those reaching ``resource``
        epochs (any row when None); ties go to the earlier row."""
        try:
            key: tuple[Any, ...] | None = (
                None if self._all_full else resource,
                *(config[d] for d in self._dims),
            )
            hash(key)
        except KeyError:
            missing = [d for d in self._dims if d not in config]
            raise InvalidArgument(
                f"{self._name}: config {dict(config)} lacks {missing}; it must name the table's "
                f"hyperparameters {self._dims}"
            ) from None
        except TypeError:
            key = None
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        try:
            f = self._encoder(config)
        except (ValueError, TypeError) as exc:  # a category not in the space, log of <= 0, ...
            raise InvalidArgument(
                f"{self._name}: cannot place config {dict(config)} in the table's config space "
                f"({exc}); give values from {self._space.to_json()}"
            ) from None
        score = self._half_norms - self._x @ f  # half the squared distance, less |f|^2 / 2
        if resource is not None and not self._all_full:
            score = np.where(self._lengths >= resource, score, np.inf)
        i = int(score.argmin())
        ties = np.flatnonzero(score <= score[i] + _TIE)
        if ties.size > 1:  # equal distances up to rounding: decide exactly, the earlier row wins
            d = self._x[ties] - f
            i = int(ties[int(np.argmin((d * d).sum(axis=1)))])
        if key is not None:
            if len(self.cache) >= _CACHE_SIZE:
                self.cache.clear()
            self.cache[key] = i
        return i


def _fast_quantile(d: Any) -> Callable[[Any], float] | None:
    """The closed form of ``_quantile`` for uniform, loguniform and bounded randint dims."""
    domain: ScipyDomain = d.domain
    args, kw = domain.args, dict(domain.kwds)
    lo_q, hi_q = 1e-9, 1.0 - 1e-9
    if domain.dist == "uniform" and d.kind == "float":
        loc = float(kw.get("loc", args[0] if args else 0.0))
        scale = float(kw.get("scale", args[1] if len(args) > 1 else 1.0))
        return lambda v: min(max((float(v) - loc) / scale, lo_q), hi_q)
    if domain.dist in ("loguniform", "reciprocal") and not kw and len(args) == 2:
        lo = math.log(args[0])
        width = math.log(args[1]) - lo
        return lambda v: min(max((math.log(float(v)) - lo) / width, lo_q), hi_q)
    if domain.dist == "randint" and d.kind == "int" and d.size > 0:
        low, size = d.low, d.size
        return lambda v: (int(v) - low + 0.5) / size
    return None


def _slow_quantile(d: Any) -> Callable[[Any], float]:
    """``_quantile`` of dim ``d`` through its distribution's CDF (frozen once, not per call)."""
    frozen = d.domain.frozen()
    if d.domain.dist == "norm" and d.kind == "float":
        cdf = NormalDist(float(frozen.mean()), float(frozen.std())).cdf
    else:
        cdf = frozen.cdf
    if d.kind == "int":
        return lambda v: float(0.5 * (cdf(v - 1) + cdf(v)))
    return lambda v: min(max(float(cdf(float(v))), 1e-9), 1.0 - 1e-9)
