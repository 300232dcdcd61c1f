"""Searchers: propose configurations."""

from .base import HPOSearcher, trial_rng, trial_uniforms
from .random import RandomSearcher

__all__ = ["HPOSearcher", "RandomSearcher", "trial_rng", "trial_uniforms"]
