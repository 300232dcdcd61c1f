"""Grid search over a discrete space (continuous dimensions need a resolution)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigSpaceError, HPOStoreError, InvalidArgument
from ..space import Choice, ConfigSpace, Constant, JSONScalar, ScipyDomain
from .base import IndexedSearcher, check_seed

if TYPE_CHECKING:
    from collections.abc import Iterator


#: integer domains with more values than this need a resolution too
MAX_INTEGER_VALUES = 1000
#: the largest grid ``shuffle=True`` permutes
MAX_SHUFFLED = 10_000_000


class GridExhausted(HPOStoreError):
    """Every configuration of the grid has been proposed."""


def grid_values(
    name: str, domain: ScipyDomain | Choice | Constant, resolution: int | None
) -> list[JSONScalar]:
    """The values of one dimension on the grid (see :class:`GridSearcher`)."""
    if isinstance(domain, Constant):
        return [domain.value]
    if isinstance(domain, Choice):
        return list(domain.values)
    if domain.is_integer:
        low, high = domain.frozen().support()
        finite = math.isfinite(low) and math.isfinite(high)
        if finite and resolution is None and high - low + 1 <= MAX_INTEGER_VALUES:
            return list(range(int(low), int(high) + 1))
        if resolution is None:
            raise ConfigSpaceError(
                f"GridSearcher: {name!r} ({domain}) has "
                f"{'unbounded' if not finite else int(high - low + 1)} integer values; give it a "
                f"resolution, e.g. resolution={{{name!r}: 10}}"
            )
        values = [domain.sample(u) for u in _quantiles(domain, resolution)]
        return list(dict.fromkeys(int(v) for v in values))
    if resolution is None:
        raise ConfigSpaceError(
            f"GridSearcher: {name!r} ({domain}) is continuous, so a grid needs its number of "
            f"points; give resolution={{{name!r}: 5}} (or one int for every continuous dimension)"
        )
    if resolution > 1 and domain.dist in ("uniform", "loguniform", "reciprocal"):
        low, high = (float(b) for b in domain.frozen().support())
        spaced = np.linspace if domain.dist == "uniform" else np.geomspace
        return [float(v) for v in spaced(low, high, resolution)]  # exact end points
    return [domain.sample(u) for u in _quantiles(domain, resolution)]


def _quantiles(domain: ScipyDomain, resolution: int) -> list[float]:
    # Bounded priors get their end points (linear for uniform, log for loguniform); unbounded
    # ones (norm, ...) the centres of ``resolution`` equal-probability bins.
    low, high = domain.frozen().support()
    if resolution == 1:
        return [0.5]
    if math.isfinite(low) and math.isfinite(high):
        return [i / (resolution - 1) for i in range(resolution)]
    return [(i + 0.5) / resolution for i in range(resolution)]


class GridSearcher(IndexedSearcher):
    """Every combination of the dimensions' values, in order (last dimension fastest).

    Categorical and bounded integer dimensions (up to 1000 values) contribute all their values;
    continuous ones need ``resolution`` (an int for all, or a dict name -> int): that many
    points including the bounds (log-spaced for ``loguniform``), or the centres of
    equal-probability bins for an unbounded prior. ``shuffle=True`` visits the grid in a random
    order drawn from the seed (a better any-time curve when the grid will not be finished).
    Proposal ``k`` is grid point ``k`` of that order, so restoring a study needs only its
    number of trials. Past the last point :class:`GridExhausted` is raised.

    >>> from scipy import stats
    >>> s = GridSearcher({"lr": stats.loguniform(1e-3, 1), "act": ["relu", "tanh"]},
    ...                  resolution={"lr": 2})
    >>> [s.sample_configuration() for _ in range(3)]  # doctest: +NORMALIZE_WHITESPACE
    [{'lr': 0.001, 'act': 'relu'}, {'lr': 0.001, 'act': 'tanh'}, {'lr': 1.0, 'act': 'relu'}]
    >>> s.size
    4
    """

    shuffle: bool

    def __init__(
        self,
        config_space: Mapping[str, Any],
        resolution: int | Mapping[str, int] | None = None,
        shuffle: bool = False,
        seed: int | None = None,
    ) -> None:
        self.save_hyperparameters()
        self.space = ConfigSpace(config_space)
        self.seed: int | None = check_seed(seed)
        per_dim = self._resolutions(resolution)
        self._values = [
            grid_values(name, d, per_dim.get(name)) for name, d in self.space.domains.items()
        ]
        self.size = math.prod(len(v) for v in self._values)
        if shuffle and self.size > MAX_SHUFFLED:
            raise InvalidArgument(
                f"shuffle=True needs the grid's order in memory; this grid has {self.size} points "
                f"(at most {MAX_SHUFFLED}); use a coarser resolution or RandomSearcher"
            )
        self._order: np.ndarray | None = None
        self._n_sampled = 0

    def _resolutions(self, resolution: int | Mapping[str, int] | None) -> dict[str, int]:
        if resolution is None:
            return {}
        if isinstance(resolution, Mapping):
            unknown = sorted(set(resolution) - set(self.space.domains))
            if unknown:
                raise InvalidArgument(
                    f"resolution names {unknown}, which are not in the config space "
                    f"{self.space.names}"
                )
            per_dim = dict(resolution)
        else:
            per_dim = {name: resolution for name in self.space.domains}
        for name, r in per_dim.items():
            if not isinstance(r, int) or isinstance(r, bool) or r < 1:
                raise InvalidArgument(f"resolution[{name!r}] must be a positive int, got {r!r}")
        return per_dim

    def sample_configuration(self) -> dict[str, Any]:
        k = self._n_sampled
        if k >= self.size:
            raise GridExhausted(
                f"GridSearcher: all {self.size} grid configurations were proposed; run at most "
                f"{self.size} trials, or refine the grid (resolution=...) in a new study"
            )
        self._n_sampled += 1
        index = k
        if self.shuffle:
            if self._order is None:
                seed = self._bound_seed()
                self._order = np.random.default_rng([seed, 0]).permutation(self.size)
            index = int(self._order[k])
        point = _unravel(index, [len(v) for v in self._values])
        return {name: values[i] for name, values, i in zip(self.space.domains, self._values, point)}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every grid configuration in grid order (not shuffled)."""
        names = list(self.space.domains)
        for combo in itertools.product(*self._values):
            yield dict(zip(names, combo))

    def _proposes_by_index(self) -> bool:
        return type(self).sample_configuration is GridSearcher.sample_configuration


def _unravel(index: int, sizes: list[int]) -> list[int]:
    out = []
    for size in reversed(sizes):
        index, i = divmod(index, size)
        out.append(i)
    return out[::-1]
