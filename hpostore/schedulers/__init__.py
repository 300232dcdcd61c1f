"""Schedulers: decide which trials run, stop, pause or get more resource."""

from .base import (
    CONTINUE,
    Action,
    BasicScheduler,
    Decision,
    HPOScheduler,
    Suggestion,
    TrialScheduler,
)
from .median import MedianStoppingScheduler
from .multi_fidelity import ASHAScheduler, HyperbandScheduler, rung_levels
from .successive_halving import SuccessiveHalvingScheduler

__all__ = [
    "CONTINUE",
    "ASHAScheduler",
    "Action",
    "BasicScheduler",
    "Decision",
    "HPOScheduler",
    "HyperbandScheduler",
    "MedianStoppingScheduler",
    "Suggestion",
    "SuccessiveHalvingScheduler",
    "TrialScheduler",
    "rung_levels",
]
