"""Conformance suites for searchers and schedulers, for hpostore's own tests and for yours.

Like ``optuna.testing``, this ships the checks that every built-in passes, so that a third
party can hold their own searcher or scheduler to the same contract::

    from hpostore.testing import check_conformance

    def test_my_searcher_conforms():
        check_conformance(lambda seed: MySearcher(SPACE, seed=seed), SPACE)

``make(seed)`` builds a fresh :class:`~hpostore.HPOSearcher` (run under FIFO) or
:class:`~hpostore.HPOScheduler`; each check runs real studies through ``HPOTuner`` on a
synthetic objective and raises :class:`ConformanceError` saying what differed.
"""

from ._suite import (
    ConformanceError,
    StudyRun,
    check_conformance,
    check_determinism,
    check_in_space,
    check_restore,
    check_resume,
    run_study,
    synthetic_objective,
)

__all__ = [
    "ConformanceError",
    "StudyRun",
    "check_conformance",
    "check_determinism",
    "check_in_space",
    "check_restore",
    "check_resume",
    "run_study",
    "synthetic_objective",
]
