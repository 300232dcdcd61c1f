"""Schedulers: decide which trials run."""

from .base import BasicScheduler, HPOScheduler

__all__ = ["BasicScheduler", "HPOScheduler"]
