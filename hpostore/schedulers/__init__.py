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
from .multi_fidelity import (
    ASHAScheduler,
    HyperbandScheduler,
    SuccessiveHalvingScheduler,
    rung_levels,
)

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
