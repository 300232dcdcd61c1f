"""What ``run()`` shows: the textbook's per-trial lines and, interactively, a progress bar.

The lines are rounded and carry the best so far; in a terminal or a notebook a tqdm bar shows
trials done / target, best, running and time left.

A listener of the tuner's callback dispatch (:class:`hpostore.callbacks.Dispatch`): it hears of
each trial's start and result after they are logged. Messages also go to the ``hpostore``
logger (DEBUG); the lines are written to stdout only with ``verbose=True``.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any

log = logging.getLogger("hpostore")


def short(value: Any) -> Any:
    """Floats to 4 significant digits (in dicts too), for display only."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: short(v) for k, v in value.items()}
    return value


def _interactive() -> bool:
    """A terminal on stdout, or a Jupyter kernel (whose stdout is not a TTY)."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


class Progress:
    """Per-trial lines and the progress bar of one ``run()`` call."""

    def __init__(
        self, *, target: int, done: int, verbose: bool, budget_s: float | None, clock: Any
    ) -> None:
        self.verbose, self.budget_s, self.clock = verbose, budget_s, clock
        self.running: set[int] = set()
        self.best: float | None = None
        self.bar: Any = None
        if verbose and _interactive():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=target, initial=min(done, target), unit="trial", leave=True,
                            dynamic_ncols=True, file=sys.stdout)  # fmt: skip

    def say(self, message: str) -> None:
        log.debug(message)
        if not self.verbose:
            return
        if self.bar is not None:
            self.bar.write(message, file=sys.stdout)
        else:
            sys.stdout.write(message + "\n")

    def _postfix(self) -> None:
        if self.bar is None:
            return
        info: dict[str, Any] = {"running": len(self.running)}
        if self.best is not None:
            info["best"] = f"{self.best:.4g}"
        if self.budget_s is not None:
            info["left"] = f"{max(0.0, self.budget_s - self.clock()):.0f}s"
        self.bar.set_postfix(info, refresh=True)

    # --- hooks (the Callback names) -------------------------------------------------------------
    def silent(self) -> bool:
        """Nothing to show: formatting the lines would be wasted work on every trial."""
        return not self.verbose and not log.isEnabledFor(logging.DEBUG)

    def on_trial_start(self, tuner: Any, trial: Any) -> None:
        self.running.add(trial.id)
        if self.silent():
            return
        self.say(f"Trial {trial.id}: config = {short(trial.config)}")
        self._postfix()

    def on_result(self, tuner: Any, trial: Any) -> None:
        self.running.discard(trial.trial)
        if self.silent():
            return
        if trial.message is not None and trial.status.value == "failed":
            self.say(f"    failed: {trial.message}")
        else:
            best = tuner.incumbent_error
            self.best = best
            runtime = trial.runtime if trial.runtime is not None else float("nan")
            value = tuner.state.trials[trial.trial].error
            if getattr(tuner.state, "sign", 1) < 0 and value is not None:
                value = -value  # the fold keeps losses; show the measured value
            self.say(
                f"    error = {short(value)}, runtime = {runtime:.3g}s, best so far = {short(best)}"
            )
            if self.bar is not None:
                self.bar.update(1)
        self._postfix()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
