"""A Keras callback that reports the validation error every epoch and obeys stop decisions.

::

    from hpostore.integrations.keras import ReportCallback

    def objective(learning_rate, batch_size, max_epochs, report):
        model = build_model(learning_rate)
        callback = ReportCallback(report)
        model.fit(x, y, epochs=max_epochs, validation_data=(xv, yv), callbacks=[callback])
        return callback.last_error   # the error where training ended (stopped or not)

Each epoch's end calls ``report(epoch, error)`` (a ``report`` event, resource = epochs done);
when the scheduler decided to stop the trial, the callback sets ``model.stop_training`` and
the fit ends cleanly after that epoch. Requires Keras 3 (``pip install 'hpostore[keras]'``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from ..errors import InvalidArgument

__all__ = ["ReportCallback"]


class ReportCallback(keras.callbacks.Callback):
    """Reports ``error(logs)`` after every epoch through ``report``; stops when told to.

    ``monitor`` is the epoch log entry to report: ``"val_accuracy"`` (default; the error is
    ``1 - accuracy``), or a loss such as ``"val_loss"`` (reported as is). ``error`` overrides
    both with any function of the epoch logs. ``epoch_offset`` is added to the resource, for
    a fit that resumes from a checkpoint.
    """

    def __init__(
        self,
        report: Callable[[float, float], Any],
        monitor: str = "val_accuracy",
        error: Callable[[dict[str, float]], float] | None = None,
        epoch_offset: int = 0,
    ) -> None:
        super().__init__()
        if not callable(report):
            raise InvalidArgument(f"report must be callable, got {type(report).__name__}")
        self.report = report
        self.monitor = monitor
        self.error_of = error
        self.epoch_offset = epoch_offset
        self.last_error: float | None = None
        self.last_resource: int | None = None
        self.stopped_by_scheduler = False

    def _error(self, logs: dict[str, float]) -> float:
        if self.error_of is not None:
            return float(self.error_of(logs))
        if self.monitor not in logs:
            raise InvalidArgument(
                f"ReportCallback(monitor={self.monitor!r}) found no such entry in the epoch logs "
                f"(got {sorted(logs)}); pass validation_data to fit() or choose another monitor"
            )
        value = float(logs[self.monitor])
        return 1.0 - value if "acc" in self.monitor else value

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        error = self._error(dict(logs or {}))
        resource = self.epoch_offset + epoch + 1
        self.last_error, self.last_resource = error, resource
        if self.report(resource, error):
            self.stopped_by_scheduler = True
            self.model.stop_training = True
