"""The Keras callback reports every epoch and a stop decision ends a real (tiny) fit cleanly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from hpostore import ASHAScheduler, HPOSearcher, HPOTuner

keras = pytest.importorskip(
    "keras", reason="Keras is not installed (pip install 'hpostore[keras]')"
)
from hpostore.integrations.keras import ReportCallback, restore_checkpoint  # noqa: E402


class TwoConfigs(HPOSearcher):
    """A good learning rate first, then one too small to learn anything."""

    def __init__(self) -> None:
        self.save_hyperparameters()
        self._queue = [{"learning_rate": 0.5}, {"learning_rate": 1e-9}]

    def sample_configuration(self) -> dict[str, Any]:
        return self._queue.pop(0)


def _data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.float32)


def fit(learning_rate: float, max_epochs: int, report: Callable[[float, float], bool]) -> float:
    rng = np.random.default_rng(0)
    (x, y), (xv, yv) = _data(512, rng), _data(128, rng)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(1, "sigmoid")])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    callback = ReportCallback(report)
    history = model.fit(
        x,
        y,
        epochs=max_epochs,
        batch_size=64,
        validation_data=(xv, yv),
        callbacks=[callback],
        verbose=0,
    )
    assert len(history.history["val_accuracy"]) == callback.last_resource
    assert callback.last_error is not None
    return callback.last_error


def test_the_keras_callback_reports_each_epoch_and_obeys_a_stop() -> None:
    scheduler = ASHAScheduler(TwoConfigs(), eta=2, r_min=1, r_max=4, type="stopping")
    tuner = HPOTuner(scheduler, fit, verbose=False)
    tuner.run(2)
    good, bad = tuner.state.trials[0], tuner.state.trials[1]
    assert [r for r, _ in good.curve] == [1, 2, 3, 4] and not good.stopped
    assert bad.stopped and [r for r, _ in bad.curve] == [1]  # stopped at rung 1: one epoch run
    assert bad.error == bad.curve[-1][1] > good.curve[0][1]
    stop = [e for e in tuner.store.events("default").to_pylist() if e["kind"] == "stop"]
    assert len(stop) == 1 and stop[0]["trial"] == 1 and "rung 1" in stop[0]["payload"]


def fit_resumable(
    learning_rate: float,
    max_epochs: int,
    report: Callable[[float, float], bool],
    checkpoint_dir: str,
) -> float:
    rng = np.random.default_rng(0)
    (x, y), (xv, yv) = _data(512, rng), _data(128, rng)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(1, "sigmoid")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
                  loss="binary_crossentropy", metrics=["accuracy"])  # fmt: skip
    initial_epoch, last_error = restore_checkpoint(model, checkpoint_dir)
    if initial_epoch >= max_epochs and last_error is not None:
        return last_error
    callback = ReportCallback(report, checkpoint_dir=checkpoint_dir)
    model.fit(x, y, epochs=max_epochs, initial_epoch=initial_epoch, batch_size=64, shuffle=False,
              validation_data=(xv, yv), callbacks=[callback], verbose=0)  # fmt: skip
    assert callback.last_error is not None
    return callback.last_error


class Rates(HPOSearcher):
    def __init__(self, rates: tuple[float, ...] = (0.5, 0.05, 1e-6)) -> None:
        self.save_hyperparameters()
        self._queue = [{"learning_rate": r} for r in rates]

    def sample_configuration(self) -> dict[str, Any]:
        return self._queue.pop(0)


def test_promotion_type_asha_resumes_a_keras_trial_from_its_checkpoint(tmp_path: Any) -> None:
    scheduler = ASHAScheduler(Rates(), eta=3, r_min=1, r_max=3)  # rungs 1, 3
    tuner = HPOTuner(scheduler, fit_resumable, verbose=False, store=tmp_path / "k.duckdb")
    tuner.run(4)  # 3 trials at rung 1, then the best resumed to 3 epochs
    resumed = [t for t in tuner.state.trials.values() if t.attempts == 2]
    assert len(resumed) == 1 and resumed[0].config["max_epochs"] == 3
    # epochs 2 and 3 ran after the pause, from the epoch-1 checkpoint: no epoch twice
    assert [r for r, _ in resumed[0].curve] == [1, 2, 3]
    assert [r for r, _ in resumed[0].results] == [1, 3]
    # and the result is the one an uninterrupted 3-epoch fit reaches
    straight = HPOTuner(ASHAScheduler(Rates((resumed[0].config["learning_rate"],)), eta=3,
                                      r_min=3, r_max=3), fit_resumable, verbose=False)  # fmt: skip
    straight.run(1)
    assert resumed[0].error == pytest.approx(straight.state.trials[0].error, abs=1e-6)
    tuner.close()
