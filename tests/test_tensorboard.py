"""The TensorBoard export: event files read back with TensorFlow's own reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from hpostore import ASHAScheduler, HPOTuner, RandomSearcher
from hpostore.integrations.tensorboard import export_tensorboard

tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed (hpostore[keras])")


def curve(x: float, max_epochs: int, report: Any) -> float:
    for epoch in range(1, max_epochs + 1):
        if report(epoch, x * x + 1 / epoch):
            break
    return x * x + 1 / epoch


def _scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for file in sorted(run.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(file)):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value  # fmt: skip
                out.setdefault(value.tag, []).append((event.step, number))
    return out


def test_export_writes_curves_results_and_the_best_so_far(store_path: str, tmp_path: Path) -> None:
    scheduler = ASHAScheduler(RandomSearcher({"x": stats.uniform(-1, 2)}, seed=0), r_max=9,
                              type="stopping")  # fmt: skip
    with HPOTuner(scheduler, curve, store=store_path, study="s", verbose=False) as tuner:
        tuner.run(4)
        trials = {t.trial: (list(t.curve), t.error) for t in tuner.state.trials.values()}
        trajectory = list(tuner.incumbent_trajectory)
    assert export_tensorboard(store_path, tmp_path / "tb") == {"s": 4}
    for trial, (points, error) in trials.items():
        scalars = _scalars(tmp_path / "tb" / "s" / f"trial_{trial}")
        assert scalars["curve/error"] == [(int(r), pytest.approx(e)) for r, e in points]
        assert scalars["result/error"][-1][1] == pytest.approx(error)
    best = _scalars(tmp_path / "tb" / "s" / "study")["best/error"]
    assert [v for _, v in best] == pytest.approx(trajectory)


def test_the_cli_exports_to_tensorboard(store_path: str, tmp_path: Path) -> None:
    from hpostore.cli import main

    with HPOTuner(ASHAScheduler(RandomSearcher({"x": stats.uniform(-1, 2)}, seed=1), r_max=9,
                                type="stopping"), curve, store=store_path, study="s",
                  verbose=False) as tuner:  # fmt: skip
        tuner.run(2)
    assert main(["export", store_path, "--tensorboard", str(tmp_path / "tb")]) == 0
    assert _scalars(tmp_path / "tb" / "s" / "trial_0")["curve/error"]
