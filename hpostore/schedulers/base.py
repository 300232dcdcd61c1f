"""The scheduler interface (textbook ``HPOScheduler``) and the FIFO ``BasicScheduler``."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._hyper import HyperParameters
from ..errors import InvalidArgument
from ..searchers.base import HPOSearcher

if TYPE_CHECKING:
    from ..study import StudyState


class HPOScheduler(HyperParameters):
    """Decides which configuration runs next (textbook API).

    Not an ABC: like the textbook's, :meth:`suggest` and :meth:`update` raise
    ``NotImplementedError`` until a subclass defines them, in its body or afterwards with
    ``@add_to_class`` (which an abstract method would forbid: the class could not be built).

    A scheduler without :meth:`restore` is resumed by re-executing its ``suggest``/``update``
    calls in log order, each re-drawn config checked against the log.
    """

    def suggest(self) -> dict[str, Any]:
        """The next configuration to run."""
        raise NotImplementedError(f"{type(self).__name__} defines no suggest()")

    def update(self, config: dict[str, Any], error: float, info: Any = None) -> None:
        """Observe the error of a finished configuration."""
        raise NotImplementedError(f"{type(self).__name__} defines no update()")

    def restore(self, state: StudyState) -> None:
        """Rebuild internal state from the study's fold (the live ``StudyState``, called once
        per session after replay); ``NotImplementedError`` means re-execute."""
        raise NotImplementedError

    def restorable(self) -> bool:
        """Whether :meth:`restore` rebuilds this scheduler (else the tuner re-executes its
        calls): :meth:`restore` is overridden."""
        return type(self).restore is not HPOScheduler.restore

    def on_report(self, trial: int, resource: float, error: float) -> Decision:
        """Decide on a running trial from an intermediate result (default: let it run)."""
        return CONTINUE


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
        if not self.restorable():
            raise NotImplementedError  # a subclass or the searcher needs re-execution
        self.searcher.restore(state)

    def restorable(self) -> bool:
        """True unless a subclass changed the calls or the searcher cannot restore."""
        restorable = getattr(self.searcher, "restorable", None)
        return (
            type(self).suggest is BasicScheduler.suggest
            and type(self).update is BasicScheduler.update
            and type(self).restore is BasicScheduler.restore
            and callable(restorable)
            and bool(restorable())
        )


# --- trial-aware schedulers: intermediate reports and decisions -----------------------------------
class Action(str, enum.Enum):
    """What a scheduler decides about a trial. Every action but CONTINUE is logged as an event."""

    CONTINUE = "continue"
    STOP = "stop"  # end the running trial now (its last reported error is its result)
    PAUSE = "pause"  # the trial reached a rung and waits there (it may be promoted later)
    PROMOTE = "promote"  # give the trial more resource (re-run with a larger resource)


@dataclass(frozen=True, slots=True)
class Decision:
    """A scheduler's decision on a trial, with the reason that is logged in the event's payload.

    >>> Decision(Action.STOP, "error 0.4 not in the top 1/3 of rung 3 (5 trials)").action.value
    'stop'
    >>> Decision(Action.STOP, "")
    Traceback (most recent call last):
    ...
    hpostore.errors.InvalidArgument: a 'stop' decision needs a non-empty reason, got ''
    """

    action: Action
    reason: str

    def __post_init__(self) -> None:
        if not isinstance(self.action, Action):
            raise InvalidArgument(f"Decision.action must be an Action, got {self.action!r}")
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise InvalidArgument(
                f"a {self.action.value!r} decision needs a non-empty reason, got {self.reason!r}"
            )

    @property
    def kind(self) -> str | None:
        """The event kind that logs this decision (None for CONTINUE, which is not logged)."""
        return None if self.action is Action.CONTINUE else self.action.value


CONTINUE = Decision(Action.CONTINUE, "no rule applies")


@dataclass(frozen=True, slots=True)
class Suggestion:
    """What a :class:`TrialScheduler` wants run next as trial ``trial``.

    ``payload`` is logged with the ``suggest`` event (rung, bracket, origin: whatever the
    scheduler needs to rebuild its state from the log). ``promoted_from`` names the trial whose
    result earned this run; the tuner logs a ``promote`` event on it with ``reason``.

    ``resume=True``: no new trial; trial ``promoted_from``, paused at a rung, runs again with
    ``config`` (its config with a larger resource). The tuner logs ``promote`` and a ``start``
    of that trial carrying the new config, and passes the objective the trial's
    ``checkpoint_dir`` (when it takes one) so it can continue instead of starting over.
    """

    config: Mapping[str, Any]
    payload: Mapping[str, Any] | None = None
    promoted_from: int | None = None
    reason: str | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        if self.promoted_from is not None and not self.reason:
            raise InvalidArgument(
                f"a promotion of trial {self.promoted_from} needs a reason, got {self.reason!r}"
            )
        if self.resume and (self.promoted_from is None or self.payload):
            raise InvalidArgument(
                "a resume names the paused trial (promoted_from) and logs no suggest payload"
            )


class TrialScheduler(HPOScheduler):
    """A scheduler that knows trial ids: multi-fidelity (SH, ASHA, Hyperband), early stopping.

    The tuner calls, in log order:

    - :meth:`suggest_trial` for the next trial id: a :class:`Suggestion`, or ``None`` when
      nothing can start until a running trial finishes (synchronous successive halving);
    - :meth:`on_report` for each intermediate ``(resource, error)`` a running trial reports:
      a :class:`Decision` (STOP ends the trial at its next report; CONTINUE is not logged);
    - :meth:`on_result` when a trial finished (``error``) or failed (``error=None``): the
      decisions it makes about any trials (e.g. PAUSE at a rung), each logged with its reason.

    Its state is a function of the log: :meth:`restore` rebuilds it from a replayed
    :class:`~hpostore.study.StudyState`, and :meth:`snapshot` returns it in a comparable form
    (the conformance tests check ``restore(replay(log)).snapshot() == live.snapshot()``).
    Randomness comes from the study's logged seed (:meth:`bind_seed`).
    """

    searcher: HPOSearcher

    def suggest_trial(self, trial: int) -> Suggestion | None:
        """What to run as trial ``trial`` (None: wait for a running trial to finish)."""
        raise NotImplementedError(f"{type(self).__name__} defines no suggest_trial()")

    def on_report(self, trial: int, resource: float, error: float) -> Decision:
        """Decide on a running trial from its intermediate result (default: continue)."""
        return CONTINUE

    def on_result(
        self, trial: int, error: float | None, resource: float | None
    ) -> list[tuple[int, Decision]]:
        """Observe trial ``trial``'s final error (None: it failed); decisions to log."""
        raise NotImplementedError(f"{type(self).__name__} defines no on_result()")

    def restore(self, state: StudyState) -> None:
        """Bind the live fold and rebuild derived state from it (reports, results, decisions,
        payloads): called once per session, after replay, before any other call."""
        raise NotImplementedError(f"{type(self).__name__} defines no restore()")

    def result_decisions(self, trial: int) -> list[tuple[int, Decision]]:
        """The decisions trial ``trial``'s logged result implies, without observing it again
        (after :meth:`restore`): the tuner logs those a crash lost, when the result was
        committed but the process died before its decisions and ``update`` were. Default:
        none (a scheduler whose ``on_result`` decides must say what it decided here)."""
        return []

    def restorable(self) -> bool:
        """Whether :meth:`restore` rebuilds this scheduler: a subclass overrides it."""
        return type(self).restore not in (TrialScheduler.restore, HPOScheduler.restore)

    def snapshot(self) -> dict[str, Any]:
        """The scheduler's state as plain data (equal for a live and a restored scheduler)."""
        raise NotImplementedError(f"{type(self).__name__} defines no snapshot()")

    def bind_seed(self, seed: int) -> None:
        """Adopt the study's logged seed (for randomized decisions such as bracket choice)."""
        self._seed = seed

    # The textbook surface, for code that drives a scheduler by hand: suggest() numbers the
    # trials itself and update() finds the trial by its config.
    def suggest(self) -> dict[str, Any]:
        trial = len(getattr(self, "_by_hand", {}))
        suggestion = self.suggest_trial(trial)
        if suggestion is None:
            raise InvalidArgument(
                f"{type(self).__name__} has nothing to run until a suggested trial is updated"
            )
        self.__dict__.setdefault("_by_hand", {})[trial] = dict(suggestion.config)
        return dict(suggestion.config)

    def update(self, config: dict[str, Any], error: float, info: Any = None) -> None:
        open_trials = getattr(self, "_by_hand", {})
        for trial, suggested in open_trials.items():
            if suggested == config:
                open_trials[trial] = None
                self.on_result(trial, error, None)
                return
        raise InvalidArgument(f"update() of a config this scheduler has not suggested: {config}")
