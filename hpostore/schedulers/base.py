"""The scheduler interface (textbook ``HPOScheduler``) and the FIFO ``BasicScheduler``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from .._hyper import HyperParameters
from ..searchers.base import HPOSearcher

if TYPE_CHECKING:
    from ..study import StudyState


class HPOScheduler(HyperParameters, ABC):
    """Decides which configuration runs next (textbook API).

    A scheduler without :meth:`restore` is resumed by re-executing its ``suggest``/``update``
    calls in log order, each re-drawn config checked against the log.
    """

    @abstractmethod
    def suggest(self) -> dict[str, Any]:
        """The next configuration to run."""

    @abstractmethod
    def update(self, config: dict[str, Any], error: float, info: Any = None) -> None:
        """Observe the error of a finished configuration."""

    def restore(self, state: StudyState) -> None:
        """Rebuild internal state from a replayed study; ``NotImplementedError`` means re-execute."""
        raise NotImplementedError


class BasicScheduler(HPOScheduler):
    """FIFO: run every configuration the searcher proposes, one after the other.

    >>> from scipy import stats
    >>> from hpostore import RandomSearcher
    >>> scheduler = BasicScheduler(RandomSearcher({"x": stats.uniform(0, 1)}, seed=1))
    >>> 0 <= scheduler.suggest()["x"] <= 1
    True
    """

    searcher: HPOSearcher

    def __init__(self, searcher: HPOSearcher) -> None:
        self.save_hyperparameters()

    def suggest(self) -> dict[str, Any]:
        return self.searcher.sample_configuration()

    def update(self, config: dict[str, Any], error: float, info: Any = None) -> None:
        self.searcher.update(config, error, additional_info=info)

    def restore(self, state: StudyState) -> None:
        if (
            type(self).suggest is not BasicScheduler.suggest
            or type(self).update is not BasicScheduler.update
        ):
            raise NotImplementedError  # a subclass changed the calls: re-execute it
        self.searcher.restore(state)
