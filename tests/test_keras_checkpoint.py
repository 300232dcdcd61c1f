"""ReportCallback(checkpoint_dir=...) and restore_checkpoint on a real (tiny) Keras model.

A trial trained to epoch 2 resumes at epoch 3 with identical weights (and optimizer state),
a stop decision keeps the checkpoint of the epoch it stopped at, and a torn or missing file
warns and restarts from epoch 0 instead of resuming from something wrong.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip(
    "keras", reason="Keras is not installed (pip install 'hpostore[keras]')"
)
from hpostore.errors import InvalidArgument  # noqa: E402
from hpostore.integrations.keras import (  # noqa: E402
    PROGRESS_FILE,
    ReportCallback,
    restore_checkpoint,
    save_checkpoint,
    weights_file,
)

Model = Any  # keras.Model; keras itself is only imported (or the file skipped) at run time

RNG = np.random.default_rng(0)
X = RNG.normal(size=(256, 4)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.float32)
XV = RNG.normal(size=(64, 4)).astype(np.float32)
YV = (XV[:, 0] + XV[:, 1] > 0).astype(np.float32)


def make_model(seed: int = 0) -> Model:
    """A compiled two-layer net; SGD with momentum, so the optimizer has state to restore."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.layers.Input((4,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(1, "sigmoid")]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss="binary_crossentropy",
        metrics=["accuracy"],
        run_eagerly=True,  # no graph tracing: faster for a model this small
    )
    return model


def fit(model: Model, epochs: int, initial_epoch: int = 0, callbacks: list | None = None):
    return model.fit(
        X,
        Y,
        epochs=epochs,
        initial_epoch=initial_epoch,
        batch_size=64,
        shuffle=False,  # the same batches whether resumed or not
        validation_data=(XV, YV),
        callbacks=callbacks or [],
        verbose=0,
    )


class Recorder:
    """A ``report`` that records, stops at ``stop_at``, and checks that the checkpoint of the
    epoch it is told about is already on disk when it is told."""

    def __init__(self, checkpoint_dir: Path | None, stop_at: int | None = None) -> None:
        self.checkpoint_dir = checkpoint_dir
        self.stop_at = stop_at
        self.reports: list[tuple[float, float]] = []

    def __call__(self, resource: float, error: float) -> bool:
        if self.checkpoint_dir is not None:
            progress = json.loads((self.checkpoint_dir / PROGRESS_FILE).read_text())
            assert progress == {"epoch": resource, "error": error}
            assert (self.checkpoint_dir / weights_file(int(resource))).is_file()
        self.reports.append((resource, error))
        return resource == self.stop_at


def same_weights(a: Model, b: Model) -> bool:
    return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))


def files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Model, Recorder]:
    """Two epochs with a checkpoint_dir (trained once; tests copy the directory)."""
    directory = tmp_path_factory.mktemp("trained") / "ckpt"
    directory.mkdir()
    model = make_model()
    recorder = Recorder(directory)
    fit(model, 2, callbacks=[ReportCallback(recorder, checkpoint_dir=directory)])
    return directory, model, recorder


@pytest.fixture
def checkpoint(trained: tuple[Path, Model, Recorder], tmp_path: Path) -> Path:
    """A private copy of the 2-epoch checkpoint, for tests that damage it."""
    return Path(shutil.copytree(trained[0], tmp_path / "ckpt"))


def test_a_checkpointed_fit_leaves_progress_and_one_weights_file(trained) -> None:
    directory, _, recorder = trained
    assert [r for r, _ in recorder.reports] == [1, 2]
    # Atomic writes leave no temp files; the epoch-1 weights went once epoch 2 was committed.
    assert files(directory) == [weights_file(2), PROGRESS_FILE]
    progress = json.loads((directory / PROGRESS_FILE).read_text())
    assert progress == {"epoch": 2, "error": recorder.reports[-1][1]}


def test_a_restored_model_resumes_where_the_trial_stopped(trained, checkpoint: Path) -> None:
    _, model, recorder = trained
    fresh = make_model(seed=1)
    assert not same_weights(fresh, model)
    initial_epoch, last_error = restore_checkpoint(fresh, checkpoint)
    assert (initial_epoch, last_error) == (2, recorder.reports[-1][1])
    assert same_weights(fresh, model)
    steps = 2 * 256 // 64  # two epochs of 64-sample batches: the optimizer state came back
    assert int(fresh.optimizer.iterations) == int(model.optimizer.iterations) == steps

    resumed = Recorder(checkpoint)
    callback = ReportCallback(resumed, checkpoint_dir=checkpoint)
    history = fit(fresh, 4, initial_epoch=initial_epoch, callbacks=[callback])
    assert [r for r, _ in resumed.reports] == [3, 4] and len(history.history["loss"]) == 2
    assert callback.last_resource == 4 and callback.last_error == resumed.reports[-1][1]
    assert files(checkpoint) == [weights_file(4), PROGRESS_FILE]

    # Weights and momentum both came back: the same as four epochs without a pause.
    straight = make_model()
    fit(straight, 4)
    for p, q in zip(fresh.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-6)


def test_a_stop_decision_keeps_the_checkpoint_of_that_epoch(tmp_path: Path) -> None:
    model = make_model()
    recorder = Recorder(tmp_path, stop_at=1)
    callback = ReportCallback(recorder, checkpoint_dir=tmp_path)
    fit(model, 4, callbacks=[callback])
    assert [r for r, _ in recorder.reports] == [1] and callback.stopped_by_scheduler
    assert files(tmp_path) == [weights_file(1), PROGRESS_FILE]
    fresh = make_model(seed=1)
    assert restore_checkpoint(fresh, tmp_path) == (1, recorder.reports[0][1])
    assert same_weights(fresh, model)


def test_no_checkpoint_means_epoch_zero_without_a_warning(tmp_path: Path) -> None:
    model = make_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert restore_checkpoint(model, None) == (0, None)
        assert restore_checkpoint(model, tmp_path) == (0, None)  # a first attempt
        assert restore_checkpoint(model, tmp_path / "absent") == (0, None)
    # Weights written but never committed by progress.json: a crash during epoch 1.
    model.save_weights(tmp_path / weights_file(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert restore_checkpoint(model, tmp_path) == (0, None)


@pytest.mark.parametrize(
    "content",
    ['{"epoch": 2, "err', "", "[2, 0.5]", '{"epoch": 0, "error": 0.5}', '{"epoch": 2}', "\xff"],
    ids=["torn", "empty", "not-an-object", "epoch-0", "no-error", "not-utf8"],
)
def test_a_torn_progress_file_warns_and_restarts(checkpoint: Path, content: str) -> None:
    (checkpoint / PROGRESS_FILE).write_bytes(content.encode("latin-1"))
    model = make_model(seed=1)
    before = model.get_weights()
    with pytest.warns(RuntimeWarning, match=r"progress\.json.*restarts from epoch 0"):
        assert restore_checkpoint(model, checkpoint) == (0, None)
    assert all(np.array_equal(p, q) for p, q in zip(model.get_weights(), before))


def test_a_missing_weights_file_warns_and_restarts(checkpoint: Path) -> None:
    (checkpoint / weights_file(2)).unlink()
    with pytest.warns(RuntimeWarning, match=r"epoch-2\.weights\.h5.*missing.*epoch 0"):
        assert restore_checkpoint(make_model(seed=1), checkpoint) == (0, None)


def test_a_corrupt_weights_file_warns_and_leaves_the_model_alone(checkpoint: Path) -> None:
    path = checkpoint / weights_file(2)
    path.write_bytes(path.read_bytes()[:200])  # torn mid-file
    model = make_model(seed=1)
    before = model.get_weights()
    with pytest.warns(RuntimeWarning, match=r"epoch-2\.weights\.h5.*restarts from epoch 0"):
        assert restore_checkpoint(model, checkpoint) == (0, None)
    assert all(np.array_equal(p, q) for p, q in zip(model.get_weights(), before))


def test_uncommitted_weights_of_a_later_epoch_are_ignored(trained, checkpoint: Path) -> None:
    """A crash between the weights and the progress write: progress still names epoch 2."""
    _, model, _ = trained
    make_model(seed=2).save_weights(checkpoint / weights_file(3))
    (checkpoint / ".tmp-crashed-progress.json").write_text('{"epoch": 3')
    fresh = make_model(seed=1)
    assert restore_checkpoint(fresh, checkpoint)[0] == 2
    assert same_weights(fresh, model)
    assert ".tmp-crashed-progress.json" not in files(checkpoint)  # crash leftovers cleaned


def test_a_failed_save_leaves_no_temp_file_and_the_old_checkpoint(
    trained, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, model, recorder = trained
    broken = make_model(seed=1)

    def fail(path: str) -> None:
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(broken, "save_weights", fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(broken, os.fspath(checkpoint), 3, 0.5)
    assert files(checkpoint) == [weights_file(2), PROGRESS_FILE]
    fresh = make_model(seed=1)
    assert restore_checkpoint(fresh, checkpoint) == (2, recorder.reports[-1][1])
    assert same_weights(fresh, model)


def test_an_uncompiled_model_gets_the_weights(trained, checkpoint: Path) -> None:
    _, model, recorder = trained
    keras.utils.set_random_seed(1)
    uncompiled = keras.Sequential(
        [keras.layers.Input((4,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(1, "sigmoid")]
    )
    assert restore_checkpoint(uncompiled, checkpoint) == (2, recorder.reports[-1][1])
    assert same_weights(uncompiled, model)


def test_a_checkpoint_of_another_architecture_warns_and_undoes_a_partial_load(
    checkpoint: Path,
) -> None:
    """The first layer would load, the second cannot: nothing of it must stay in the model."""
    keras.utils.set_random_seed(1)
    other = keras.Sequential(
        [keras.layers.Input((4,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(3)]
    )
    other.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    before = other.get_weights()
    with pytest.warns(RuntimeWarning, match=r"epoch-2\.weights\.h5.*restarts from epoch 0"):
        assert restore_checkpoint(other, checkpoint) == (0, None)
    assert all(np.array_equal(p, q) for p, q in zip(other.get_weights(), before))


def test_an_unbuilt_model_is_refused(checkpoint: Path) -> None:
    unbuilt = keras.Sequential([keras.layers.Dense(8), keras.layers.Dense(1)])
    with pytest.raises(InvalidArgument, match="built model"):
        restore_checkpoint(unbuilt, checkpoint)
