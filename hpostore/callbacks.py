"""Callbacks: the hook for MLflow, Weights & Biases or any tracker of your own.

Pass ``HPOTuner(..., callbacks=[MyCallback()])``; each hook runs in the tuner's process after
the event it describes is logged (so a tracker never shows what the log does not hold). Every
method of :class:`Callback` does nothing: override the ones you need. An exception a hook raises
is not swallowed (a broken tracker stops the run; running again resumes the study).

>>> import hpostore
>>> class Tracker(hpostore.Callback):
...     def on_result(self, tuner, trial):
...         print(trial.trial, trial.status.value)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidArgument

if TYPE_CHECKING:
    from .log.trial import TrialState
    from .tuner._asktell import Trial


class Callback:
    """No-op hooks; subclass and override what you need (e.g. ``mlflow.log_metric`` in
    ``on_report``, ``wandb.log`` in ``on_result``)."""

    def on_trial_start(self, tuner: Any, trial: Trial) -> None:
        """A trial (attempt) starts: its ``start`` event is on disk."""

    def on_report(self, tuner: Any, trial: int, resource: float, error: float) -> None:
        """A running trial reported an intermediate result (a ``report`` event)."""

    def on_result(self, tuner: Any, trial: TrialState) -> None:
        """A trial attempt ended: ``trial.status`` is finished (``trial.error``) or failed
        (``trial.message``); the result is committed."""

    def on_decision(self, tuner: Any, trial: int, kind: str, reason: str | None) -> None:
        """The scheduler decided ``kind`` (``stop``, ``pause``, ``promote``) on ``trial``."""

    def on_study_end(self, tuner: Any, reason: str) -> None:
        """A session of the study ended (``completed``, ``interrupted``, ``max_failures``...)."""


_HOOKS = ("on_trial_start", "on_report", "on_result", "on_decision", "on_study_end")


def check_callbacks(callbacks: Any) -> tuple[Any, ...]:
    """The callbacks as a tuple; each must have at least one of the hooks."""
    if callbacks is None:
        return ()
    if not isinstance(callbacks, Sequence) or isinstance(callbacks, str):
        raise InvalidArgument(f"callbacks must be a list of Callback objects, got {callbacks!r}")
    for cb in callbacks:
        if not any(callable(getattr(cb, h, None)) for h in _HOOKS):
            raise InvalidArgument(
                f"callback {cb!r} has none of the hooks {', '.join(_HOOKS)}; subclass "
                "hpostore.Callback and override the ones you need"
            )
    return tuple(callbacks)


@dataclass(slots=True)
class Dispatch:
    """Calls each callback's hook (those it has) with the tuner; the driver's :class:`Hooks`."""

    tuner: Any
    callbacks: tuple[Any, ...]
    #: extra listeners of the tuner itself (the progress bar), told first
    listeners: list[Any] = field(default_factory=list)

    def _call(self, hook: str, *args: Any) -> None:
        for cb in (*self.listeners, *self.callbacks):
            method = getattr(cb, hook, None)
            if method is not None:
                method(self.tuner, *args)

    def trial_start(self, trial: int, config: dict[str, Any], attempt: int) -> None:
        if self.callbacks or self.listeners:
            self._call("on_trial_start", self.tuner._trial(trial, config, attempt))

    def report(self, trial: int, resource: float, error: float) -> None:
        # every report of every trial: no tuple of receivers built, as ``_call`` does
        for receivers in (self.listeners, self.callbacks):
            for cb in receivers:
                method = getattr(cb, "on_report", None)
                if method is not None:
                    method(self.tuner, trial, resource, error)

    def result(self, trial: int) -> None:
        if self.callbacks or self.listeners:
            self._call("on_result", self.tuner.state.trials[trial])

    def decision(self, trial: int, kind: str, reason: str | None) -> None:
        self._call("on_decision", trial, kind, reason)

    def study_end(self, reason: str) -> None:
        self._call("on_study_end", reason)
