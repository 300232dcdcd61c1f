"""Random search with randomness derived from the logged seed, one sample at a time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..space import ConfigSpace
from .base import IndexedSearcher, check_seed, trial_uniforms

if TYPE_CHECKING:
    pass


class RandomSearcher(IndexedSearcher):
    """Samples each hyperparameter independently from its domain (textbook ``RandomSearcher``).

    Sample ``k`` is a pure function of ``(seed, k)``, so a resumed study proposes exactly what an
    uninterrupted one would. ``seed=None`` draws a seed once and the study logs it; a resume
    then continues with the logged seed.

    >>> from scipy import stats
    >>> s = RandomSearcher({"lr": stats.loguniform(1e-3, 1)}, initial_config={"lr": 0.1}, seed=0)
    >>> s.sample_configuration()
    {'lr': 0.1}
    >>> 1e-3 <= s.sample_configuration()["lr"] <= 1
    True
    """

    def __init__(
        self,
        config_space: Mapping[str, Any],
        initial_config: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        self.save_hyperparameters()
        self.space = ConfigSpace(config_space)
        self.seed: int | None = check_seed(seed)
        self._initial = (
            None
            if initial_config is None
            else self.space.check_config(initial_config, what="initial_config")
        )
        self._n_sampled = 0

    def sample_configuration(self) -> dict[str, Any]:
        seed = self._bound_seed()
        index = self._n_sampled
        self._n_sampled += 1
        if index == 0 and self._initial is not None:
            return dict(self._initial)
        return self.space.sample(trial_uniforms(seed, index, self.space.n_random))

    def _proposes_by_index(self) -> bool:
        return type(self).sample_configuration is RandomSearcher.sample_configuration
