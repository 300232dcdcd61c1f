"""Simulated time's two values: the clock a simulated study reads, and a config's learning curve."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InvalidArgument

__all__ = ["LearningCurve", "SimulatedClock"]


class SimulatedClock:
    """Seconds of simulated time; moves only by :meth:`advance` (pass it as ``HPOTuner(clock=)``).

    >>> clock = SimulatedClock()
    >>> clock.advance(2.5)
    >>> clock()
    2.5
    """

    __slots__ = ("now",)

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (a finite number >= 0)."""
        if not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
            raise InvalidArgument(f"a clock advances by a finite number >= 0, got {seconds!r}")
        self.now += seconds

    sleep = advance


@dataclass(frozen=True, slots=True)
class LearningCurve:
    """What a simulated objective returns instead of training: the error after each epoch
    and the seconds each epoch took (equal lengths, at least one epoch).

    >>> LearningCurve([0.5, 0.3], [2.0, 2.0]).final_error
    0.3
    """

    errors: Sequence[float]
    seconds: Sequence[float]

    def __post_init__(self) -> None:
        if len(self.errors) != len(self.seconds) or not self.errors:
            raise InvalidArgument(
                "a LearningCurve needs one error and one epoch time per epoch (at least one), "
                f"got {len(self.errors)} errors and {len(self.seconds)} epoch times"
            )

    @property
    def final_error(self) -> float:
        return float(self.errors[-1])
