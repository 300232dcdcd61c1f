"""A Keras callback that reports every epoch, obeys stop decisions and checkpoints the model.

It reports the validation error every epoch and (optionally) checkpoints the model so a
paused, promoted or crashed trial resumes training.

::

    from hpostore.integrations.keras import ReportCallback, restore_checkpoint

    def objective(learning_rate, batch_size, max_epochs, report):
        model = build_model(learning_rate)
        callback = ReportCallback(report)
        model.fit(x, y, epochs=max_epochs, validation_data=(xv, yv), callbacks=[callback])
        return callback.last_error   # the error where training ended (stopped or not)

Each epoch's end calls ``report(epoch, error)`` (a ``report`` event, resource = epochs done);
when the scheduler decided to stop the trial, the callback sets ``model.stop_training`` and
the fit ends cleanly after that epoch. Requires Keras 3 (``pip install 'hpostore[keras]'``).

Resuming from a checkpoint
--------------------------
An objective that declares a ``checkpoint_dir`` parameter is given a directory (it exists, it
belongs to this one trial, and it persists across the trial's attempts and promotions). With
it, promotion-type ASHA *continues* a paused trial from the epoch it paused at, and a trial
re-run after a crash continues from its last finished epoch, instead of retraining::

    def objective(learning_rate, batch_size, max_epochs, report, checkpoint_dir):
        model = build_model(learning_rate)
        model.compile(...)                 # compile before restoring (see below)
        initial_epoch, last_error = restore_checkpoint(model, checkpoint_dir)
        if initial_epoch >= max_epochs:    # already trained that far (a re-run after a crash)
            return last_error
        callback = ReportCallback(report, monitor="val_accuracy", checkpoint_dir=checkpoint_dir)
        model.fit(x, y, epochs=max_epochs, initial_epoch=initial_epoch,
                  validation_data=(xv, yv), callbacks=[callback])
        return callback.last_error

After every epoch the callback writes the model's weights and then ``progress.json``
(``{"epoch": n, "error": e}``), each atomically, and only then reports, so a trial stopped
after its report of epoch ``n`` keeps the checkpoint of epoch ``n``. ``progress.json`` is the
commit point: the weights of epoch ``n`` are in ``epoch-<n>.weights.h5``, named after the
epoch, so a crash between the two writes leaves the previous epoch's checkpoint intact rather
than new weights under an old epoch count.

What a checkpoint holds, and what it does not:

* Keras 3's ``save_weights`` stores the model's variables *and* the optimizer's (momentum,
  Adam moments, the iteration count that drives learning-rate schedules). ``restore_checkpoint``
  builds the compiled optimizer before loading, so those come back too: on a fixed batch order
  (``shuffle=False``, no dropout) a resumed fit reproduces an uninterrupted one. The optimizer
  state is restored only when the model is compiled *before* ``restore_checkpoint``; compiling
  afterwards makes a fresh optimizer (weights only: momentum etc. restart from zero).
* Random state is not saved: the shuffling order and dropout masks of the resumed epochs
  differ from those an uninterrupted fit would have drawn.
* Other callbacks' state (``EarlyStopping`` patience, ``ReduceLROnPlateau`` counters, a
  learning rate changed by a callback) is not saved; nor are data-pipeline positions.
* A checkpoint is the state at the *end* of an epoch; a crash mid-epoch loses that epoch.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

import keras

from ..errors import InvalidArgument

__all__ = [
    "PROGRESS_FILE",
    "ReportCallback",
    "restore_checkpoint",
    "save_checkpoint",
    "weights_file",
]

PROGRESS_FILE = "progress.json"
_TMP_PREFIX = ".tmp-"
_WEIGHTS_RE = re.compile(r"epoch-(\d+)\.weights\.h5")


def weights_file(epoch: int) -> str:
    """The name (in the checkpoint directory) of the weights file of ``epoch``."""
    return f"epoch-{epoch}.weights.h5"


def _fsync_path(path: str) -> None:
    """Flush a file (or a directory entry) to disk; best effort where the OS refuses."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(directory: str, name: str, write: Callable[[str], None]) -> None:
    """Write ``directory/name`` via a temp file in the same directory and ``os.replace``.

    ``write(tmp_path)`` fills the temp file. The temp name keeps ``name`` as its suffix (Keras
    insists that weights files end in ``.weights.h5``); it is removed if anything fails.
    """
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=f"-{name}", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        _fsync_path(tmp)
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _write_text(text: str) -> Callable[[str], None]:
    def write(path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    return write


def save_checkpoint(model: keras.Model, checkpoint_dir: str, epoch: int, error: float) -> None:
    """Save ``model``'s weights as epoch ``epoch``, then commit ``progress.json``.

    Weights first, then progress, each atomically; weights files of other epochs are removed
    once the progress is committed. ``ReportCallback(checkpoint_dir=...)`` calls this after
    every epoch; call it yourself only for a custom training loop.
    """
    os.makedirs(checkpoint_dir, exist_ok=True)
    name = weights_file(epoch)
    _atomic_write(checkpoint_dir, name, lambda path: model.save_weights(path))
    progress = json.dumps({"epoch": epoch, "error": float(error)})
    _atomic_write(checkpoint_dir, PROGRESS_FILE, _write_text(progress))
    _fsync_path(checkpoint_dir)  # the renames themselves survive a power loss
    for entry in os.listdir(checkpoint_dir):
        if entry != name and _WEIGHTS_RE.fullmatch(entry):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(checkpoint_dir, entry))


def _read_progress(path: str) -> tuple[int, float]:
    """``(epoch, error)`` from a progress file; ValueError/OSError when torn or malformed."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    epoch, error = data.get("epoch"), data.get("error")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        raise ValueError(f"'epoch' must be an integer >= 1, got {epoch!r}")
    if isinstance(error, bool) or not isinstance(error, (int, float)):
        raise ValueError(f"'error' must be a number, got {error!r}")
    return epoch, float(error)


def _restart_warning(path: str, problem: object) -> None:
    message = f"hpostore: checkpoint file {path} is unusable ({problem})"
    warnings.warn(f"{message}; training restarts from epoch 0", RuntimeWarning, stacklevel=3)


def restore_checkpoint(
    model: keras.Model, checkpoint_dir: str | os.PathLike[str] | None
) -> tuple[int, float | None]:
    """Load the last checkpoint in ``checkpoint_dir`` into ``model``.

    Returns ``(initial_epoch, last_error)``: the epochs already trained (pass it to
    ``fit(initial_epoch=...)``) and the error reported at that epoch; ``(0, None)`` when
    ``checkpoint_dir`` is None or holds no checkpoint yet. Compile the model first: the
    optimizer's state (momentum, Adam moments, iteration count) is then restored with the
    weights; an uncompiled model gets its weights only. The model must be built (an ``Input``
    layer, or a call on a batch), else InvalidArgument.

    A torn or unreadable ``progress.json``, or a missing or unreadable weights file, does not
    fail the trial: it warns (``RuntimeWarning`` naming the file) and returns ``(0, None)`` with
    the model's variables as they were, so training restarts from epoch 0. Temp files left by
    a crash in the middle of a write are removed.
    """
    if checkpoint_dir is None:
        return 0, None
    directory = os.fspath(checkpoint_dir)
    if not os.path.isdir(directory):
        return 0, None
    for entry in os.listdir(directory):
        if entry.startswith(_TMP_PREFIX):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, entry))
    progress_path = os.path.join(directory, PROGRESS_FILE)
    if not os.path.exists(progress_path):
        return 0, None  # nothing committed yet (a first attempt, or a crash in epoch 1)
    try:
        epoch, error = _read_progress(progress_path)
    except (OSError, ValueError) as exc:  # json.JSONDecodeError and UnicodeError included
        _restart_warning(progress_path, exc)
        return 0, None
    weights_path = os.path.join(directory, weights_file(epoch))
    if not os.path.isfile(weights_path):
        _restart_warning(weights_path, f"missing; {PROGRESS_FILE} says epoch {epoch}")
        return 0, None
    if not model.built:
        raise InvalidArgument(
            "restore_checkpoint needs a built model (give it an Input layer, or call it on a "
            "batch) to load weights into"
        )
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        # An unbuilt optimizer has no slots to load into: Keras would skip its saved state.
        optimizer.build(model.trainable_variables)
    variables = list(model.weights)
    if optimizer is not None:
        variables += list(optimizer.variables)
    before = [keras.ops.convert_to_numpy(v.value) for v in variables]
    try:
        model.load_weights(weights_path)
    except Exception as exc:  # h5py OSError, Keras ValueError on a mismatch, ...
        for variable, value in zip(variables, before):
            variable.assign(value)  # undo a load that failed half-way
        first_line = (str(exc).splitlines() or [""])[0][:300]  # Keras dumps whole tensors
        _restart_warning(weights_path, f"{type(exc).__name__}: {first_line}")
        return 0, None
    return epoch, error


class ReportCallback(keras.callbacks.Callback):
    """Reports ``error(logs)`` after every epoch through ``report``; stops when told to.

    ``monitor`` is the epoch log entry to report: ``"val_accuracy"`` (default; the error is
    ``1 - accuracy``), or a loss such as ``"val_loss"`` (reported as is). ``error`` overrides
    both with any function of the epoch logs. ``epoch_offset`` is added to the resource, for
    a fit that counts its epochs from 0 after resuming from a checkpoint of its own; leave it
    at 0 with ``fit(initial_epoch=...)``, whose epoch numbers already count the epochs done.

    ``checkpoint_dir`` (the objective's ``checkpoint_dir`` argument, or None for no
    checkpoints): after each epoch, before reporting it, the callback saves the weights (and
    the optimizer state Keras 3 stores with them) and then ``progress.json``
    (``{"epoch": resource, "error": error}``), each atomically, so the trial can resume::

        initial_epoch, last_error = restore_checkpoint(model, checkpoint_dir)
        if initial_epoch >= max_epochs:
            return last_error
        callback = ReportCallback(report, checkpoint_dir=checkpoint_dir)
        model.fit(..., epochs=max_epochs, initial_epoch=initial_epoch, callbacks=[callback])
        return callback.last_error

    See the module docstring for what a checkpoint does not hold (random state, other
    callbacks' state; the optimizer state only when the model is compiled before restoring).
    """

    def __init__(
        self,
        report: Callable[[float, float], Any],
        monitor: str = "val_accuracy",
        error: Callable[[dict[str, float]], float] | None = None,
        epoch_offset: int = 0,
        checkpoint_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if not callable(report):
            raise InvalidArgument(f"report must be callable, got {type(report).__name__}")
        self.report = report
        self.monitor = monitor
        self.error_of = error
        self.epoch_offset = epoch_offset
        self.checkpoint_dir = None if checkpoint_dir is None else os.fspath(checkpoint_dir)
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
        if self.checkpoint_dir is not None:
            save_checkpoint(self.model, self.checkpoint_dir, resource, error)
        if self.report(resource, error):
            self.stopped_by_scheduler = True
            self.model.stop_training = True
