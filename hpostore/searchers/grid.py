"""Grid search over a discrete space (continuous dimensions need a resolution)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
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

    In a space with conditions the grid holds only valid configs, each once: a conditional
    hyperparameter is varied where it is active and absent elsewhere (one block of points per
    combination of the values of the hyperparameters that others depend on).

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
        self._blocks = _blocks(self.space, self._values) if self.space.conditions else None
        self.size = (
            math.prod(len(v) for v in self._values)
            if self._blocks is None
            else sum(b.size for b in self._blocks)
        )
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
        if self._blocks is not None:
            return self._conditional_point(index)
        point = _unravel(index, [len(v) for v in self._values])
        return {name: values[i] for name, values, i in zip(self.space.domains, self._values, point)}

    def _conditional_point(self, index: int) -> dict[str, Any]:
        assert self._blocks is not None
        for block in self._blocks:
            if index < block.size:
                return block.config(index, self._values, list(self.space.domains))
            index -= block.size
        raise AssertionError("grid index out of range")  # sample_configuration checked it

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every grid configuration in grid order (not shuffled)."""
        names = list(self.space.domains)
        if self._blocks is not None:
            for block in self._blocks:
                for i in range(block.size):
                    yield block.config(i, self._values, names)
            return
        for combo in itertools.product(*self._values):
            yield dict(zip(names, combo))

    def _proposes_by_index(self) -> bool:
        return type(self).sample_configuration is GridSearcher.sample_configuration


@dataclass(frozen=True, slots=True)
class _Block:
    """The grid points of a conditional space that share one assignment of the parents (the
    hyperparameters that conditions name): those values, and the product of the grid values
    of the other hyperparameters active under them."""

    fixed: tuple[tuple[str, JSONScalar], ...]  # active parents and their values
    free: tuple[int, ...]  # indices (space order) of the active non-parent hyperparameters
    sizes: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.sizes)

    def config(
        self, index: int, values: list[list[JSONScalar]], names: list[str]
    ) -> dict[str, Any]:
        chosen = dict(self.fixed)
        for j, i in zip(self.free, _unravel(index, list(self.sizes))):
            chosen[names[j]] = values[j][i]
        return {name: chosen[name] for name in names if name in chosen}


def _blocks(space: ConfigSpace, values: list[list[JSONScalar]]) -> list[_Block]:
    """The blocks of a conditional grid: one per assignment of the parents reachable under the
    conditions (a parent inactive under the others' values has one assignment: absent)."""
    names = list(space.domains)
    parents = {p for c in space.conditions.values() for p in c.parents}
    ordered = [n for n in space._order if n in parents]
    blocks: list[_Block] = []

    def visit(depth: int, assigned: dict[str, JSONScalar]) -> None:
        if depth == len(ordered):
            active = space.active(assigned)
            free = tuple(j for j, n in enumerate(names) if n in active and n not in parents)
            fixed = tuple((n, assigned[n]) for n in names if n in assigned)
            blocks.append(_Block(fixed, free, tuple(len(values[j]) for j in free)))
            return
        name = ordered[depth]
        if name not in space.active(assigned):
            visit(depth + 1, assigned)
            return
        for value in values[names.index(name)]:
            visit(depth + 1, {**assigned, name: value})

    visit(0, {})
    return blocks


def _unravel(index: int, sizes: list[int]) -> list[int]:
    out = []
    for size in reversed(sizes):
        index, i = divmod(index, size)
        out.append(i)
    return out[::-1]
