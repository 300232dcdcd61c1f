"""Searchers: propose configurations."""

from .base import HPOSearcher, trial_rng, trial_uniforms
from .bayesian import BayesianSearcher
from .evolution import EvolutionarySearcher
from .grid import GridExhausted, GridSearcher
from .multi_objective import MultiObjectiveTPESearcher
from .random import RandomSearcher
from .tpe import TPESearcher

__all__ = [
    "BayesianSearcher",
    "EvolutionarySearcher",
    "GridExhausted",
    "GridSearcher",
    "HPOSearcher",
    "MultiObjectiveTPESearcher",
    "RandomSearcher",
    "TPESearcher",
    "trial_rng",
    "trial_uniforms",
]
