"""The tuner: the textbook's loop, every step appended to the event log.

``HPOTuner(scheduler, objective).run(n)`` behaves like the textbook's; with ``store=`` and
``study=`` the same loop is durable: each trial's ``suggest``/``start`` events are on disk
before the objective runs, each result before anything acts on it, the bookkeeping attributes
are views of the replayed log, and running the same script again continues the study.

Inside (DESIGN.md "The tuner, inside"): :mod:`._recorder` (session, clock, append-then-apply,
commit policy), :mod:`._resume` (spec, seed, catch-up), :mod:`._driver` (any scheduler through
one trial-aware protocol), :mod:`._objective` (the objective call, shared by workers),
:mod:`._loop` (one loop; sequential is an inline executor), :mod:`._supervisor` (broken pools),
:mod:`._checkpoints`; :class:`HPOTuner` (:mod:`._facade`) puts them together.
"""

from ._asktell import Trial
from ._checkpoints import encode_study
from ._facade import HPOTuner
from ._objective import TrialOutcome, as_error, native_config, run_trial
from ._recorder import Clock

__all__ = [
    "Clock",
    "HPOTuner",
    "Trial",
    "TrialOutcome",
    "as_error",
    "encode_study",
    "native_config",
    "run_trial",
]
