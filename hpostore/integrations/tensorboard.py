"""TensorBoard export: learning curves and results of a study's trials as TensorBoard event files.

``hpostore export runs.duckdb --tensorboard tb/`` (or :func:`export_tensorboard`) writes one run
per trial (``tb/<study>/trial_<n>``: ``curve/<metric>`` at each reported resource,
``result/<metric>`` at each result's resource) and one for the study (``tb/<study>/study``:
``best/<metric>`` after each finished trial). ``tensorboard --logdir tb`` then overlays the
curves. TensorFlow is imported only here, when an export runs.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import HPOStoreError, InvalidArgument
from ..store import open_store
from ..study import replay_table


def _tf() -> Any:
    try:
        import tensorflow as tf
    except ImportError:
        raise HPOStoreError(
            "the TensorBoard export writes its files with TensorFlow, which is not installed; "
            "pip install 'hpostore[keras]' (or tensorflow-cpu)"
        ) from None
    return tf


def _scalar(tf: Any, tag: str, value: float, step: int) -> None:
    """A scalar summary TensorBoard's scalars dashboard shows (written by TensorFlow alone:
    ``tf.summary.scalar`` would need the ``tensorboard`` package)."""
    from tensorflow.core.framework.summary_pb2 import SummaryMetadata

    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=metadata)


def _step(resource: float | None, default: int) -> int:
    """TensorBoard steps are integers: a resource (epochs) rounded, else ``default``."""
    return default if resource is None else int(round(resource))


def export_tensorboard(
    path: str | os.PathLike[str], logdir: str | os.PathLike[str], studies: list[str] | None = None
) -> dict[str, int]:
    """Write the studies of the store at ``path`` (default: all) under ``logdir``; returns the
    number of trials written per study."""
    tf = _tf()
    written: dict[str, int] = {}
    with open_store(os.fspath(path), read_only=True) as store:
        names = studies or store.studies()
        missing = sorted(set(names) - set(store.studies()))
        if missing:
            raise InvalidArgument(f"{path} has no study {missing[0]!r}")
        for study in names:
            state = replay_table(study, store.events(study))
            name = state.metric[0]
            sign = state.sign  # the fold keeps losses: write measured values
            base = os.path.join(os.fspath(logdir), study.replace(os.sep, "_"))
            for t in state.trials.values():
                writer = tf.summary.create_file_writer(os.path.join(base, f"trial_{t.trial}"))
                with writer.as_default():
                    for i, (resource, error) in enumerate(t.curve):
                        _scalar(tf, f"curve/{name}", sign * error, _step(resource, i))
                    for i, (at, value) in enumerate(t.results):
                        _scalar(tf, f"result/{name}", sign * value, _step(at, i))
                writer.close()
            writer = tf.summary.create_file_writer(os.path.join(base, "study"))
            with writer.as_default():
                for i, best in enumerate(state.trajectory):
                    _scalar(tf, f"best/{name}", sign * best, i + 1)
            writer.close()
            written[study] = len(state.trials)
    return written
