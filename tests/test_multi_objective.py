"""Multi-objective studies: results, Pareto front (fold and view), hypervolume, resume."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

import analysis
from hpostore import (
    ASHAScheduler,
    BasicScheduler,
    HPOTuner,
    MultiObjectiveTPESearcher,
    RandomSearcher,
    TooManyFailures,
    open_store,
)
from hpostore.errors import AnalysisError, InvalidArgument

SPACE = {f"x{i}": stats.uniform(0, 1) for i in range(3)}


def zdt1(x0: float, x1: float, x2: float) -> dict[str, float]:
    """ZDT1 in three dimensions: the front is f2 = 1 - sqrt(f1), x1 = x2 = 0."""
    g = 1 + 9 * (x1 + x2) / 2
    return {"f1": x0, "f2": g * (1 - math.sqrt(x0 / g)), "cost": x1}


def _front(points: dict[int, tuple[float, ...]]) -> list[int]:
    def dominated(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return all(y <= x for x, y in zip(a, b)) and any(y < x for x, y in zip(a, b))

    return sorted(i for i, p in points.items() if not any(dominated(p, q) for q in points.values()))


@pytest.mark.parametrize("modes", [["min", "min"], ["max", "max"]])
def test_pareto_front_of_fold_and_view_are_the_non_dominated_trials(modes: list[str]) -> None:
    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=4)), zdt1, metric=["f1", "f2"],
                     mode=modes, verbose=False)  # fmt: skip
    tuner.run(number_of_trials=30)
    sign = -1 if modes[0] == "max" else 1
    points = {
        t.trial: (t.metrics(sign, "f1")["f1"] * sign, t.metrics(sign, "f1")["f2"] * sign)
        for t in tuner.state.trials.values()
    }
    expected = _front(points)
    assert 1 < len(expected) < 30
    assert [p["trial"] for p in tuner.pareto_front] == expected
    assert all(set(p["metrics"]) == {"f1", "f2", "cost"} for p in tuner.pareto_front)
    view = analysis.pareto(tuner.store).column("trial").to_pylist()
    assert view == expected
    assert tuner.state.spec["metric"] == ["f1", "f2"] and tuner.state.spec["mode"] == modes
    # the error column is the first objective as measured; every result carries all metrics
    con = analysis.views(tuner.store)
    n = con.sql("SELECT count(*) FROM metrics WHERE kind = 'evaluate'").fetchall()
    assert n == [(30 * 3,)]


def test_hypervolume_of_known_fronts() -> None:
    assert analysis.hypervolume_of([(0, 1), (1, 0)], (2, 2)) == 3.0
    assert analysis.hypervolume_of([(0, 1), (1, 0), (1, 1)], (2, 2)) == 3.0  # dominated: no-op
    assert analysis.hypervolume_of([(3, 3)], (2, 2)) == 0.0  # beyond the reference
    assert analysis.hypervolume_of([(0, 0, 0)], (1, 2, 3)) == 6.0
    # two boxes in 3-d: 1*1*0.5 + 0.5*0.5*0.5 overlap removed
    assert analysis.hypervolume_of([(0, 0, 0.5), (0.5, 0.5, 0)], (1, 1, 1)) == pytest.approx(
        0.5 + 0.25 * 0.5
    )
    rng = np.random.default_rng(0)
    pts = rng.random((12, 3))
    # Monte Carlo check of the 3-d slicing
    samples = rng.random((200_000, 3))
    covered = np.zeros(len(samples), bool)
    for p in pts:
        covered |= np.all(samples >= p, axis=1)
    assert analysis.hypervolume_of(pts.tolist(), (1, 1, 1)) == pytest.approx(
        covered.mean(), abs=0.01
    )


def test_hypervolume_anytime_grows_to_the_front_volume(tmp_path: Any) -> None:
    path = str(tmp_path / "mo.duckdb")
    with open_store(path) as store:
        tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=1)), zdt1,
                         metric=["f1", "f2"], store=store, study="z", verbose=False)  # fmt: skip
        tuner.run(number_of_trials=20)
        front = [(p["metrics"]["f1"], p["metrics"]["f2"]) for p in tuner.pareto_front]
    table = analysis.hypervolume(path, "z", reference=[1.1, 11.0])
    hv = table.column("hypervolume").to_pylist()
    assert table.num_rows == 20 and table.column("n_finished").to_pylist() == list(range(1, 21))
    assert all(a <= b for a, b in itertools.pairwise(hv)) and hv[0] > 0
    assert hv[-1] == pytest.approx(analysis.hypervolume_of(front, (1.1, 11.0)))
    with pytest.raises(AnalysisError, match="reference value for each"):
        analysis.hypervolume(path, "z", reference=[1.0])


def _mo_tuner(store: Any, number: int | None = None) -> HPOTuner:
    searcher = MultiObjectiveTPESearcher(SPACE, n_startup=6, seed=7)
    return HPOTuner(BasicScheduler(searcher), zdt1, metric=["f1", "f2"], store=store,
                    study="z", verbose=False)  # fmt: skip


def test_multi_objective_tpe_resumes_exactly_and_beats_random(tmp_path: Any) -> None:
    path = str(tmp_path / "r.duckdb")
    with open_store(path) as store:
        _mo_tuner(store).run(number_of_trials=14)
    with open_store(path) as store:
        _mo_tuner(store).run(number_of_trials=30)
        resumed = [e["config"] for e in store.events("z").to_pylist() if e["kind"] == "suggest"]
    whole = _mo_tuner(None)
    whole.run(number_of_trials=30)
    straight = [e["config"] for e in whole.store.events("z").to_pylist() if e["kind"] == "suggest"]
    assert resumed == straight
    ref = (1.1, 11.0)
    mo = whole.pareto_front
    hv_tpe = analysis.hypervolume_of([(p["metrics"]["f1"], p["metrics"]["f2"]) for p in mo], ref)
    rnd = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=7)), zdt1, metric=["f1", "f2"],
                   verbose=False)  # fmt: skip
    rnd.run(number_of_trials=30)
    pts = [(p["metrics"]["f1"], p["metrics"]["f2"]) for p in rnd.pareto_front]
    assert hv_tpe > analysis.hypervolume_of(pts, ref)


def test_a_single_number_in_a_multi_objective_study_fails_the_trial() -> None:
    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=0)), lambda x0, x1, x2: x0,
                     metric=["f1", "f2"], verbose=False, max_failures=1)  # fmt: skip
    with pytest.raises(TooManyFailures):
        tuner.run(number_of_trials=1)
    assert "objectives ['f1', 'f2']" in (tuner.state.trials[0].message or "")
    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=0)),
                     lambda x0, x1, x2: {"f1": x0}, metric=["f1", "f2"], verbose=False,
                     max_failures=1)  # fmt: skip
    with pytest.raises(TooManyFailures):
        tuner.run(number_of_trials=1)
    assert "without 'f2'" in (tuner.state.trials[0].message or "")
    assert tuner.pareto_front == []


def test_early_stopping_schedulers_refuse_several_objectives() -> None:
    with pytest.raises(InvalidArgument, match="BasicScheduler"):
        HPOTuner(ASHAScheduler(RandomSearcher(SPACE)), zdt1, metric=["f1", "f2"])


def test_pareto_and_hypervolume_plots(tmp_path: Any) -> None:
    from analysis.plots import hypervolume_plot, pareto_plot

    path = str(tmp_path / "p.duckdb")
    with open_store(path) as store:
        HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=2)), zdt1, metric=["f1", "f2"],
                 store=store, study="z", verbose=False).run(number_of_trials=12)  # fmt: skip
    fig = pareto_plot(path, "z", path=tmp_path / "front.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "f1" and ax.get_ylabel() == "f2"
    assert (tmp_path / "front.png").stat().st_size > 0
    front = analysis.pareto(path, "z").num_rows
    assert f"({front} of 12 results)" in ax.get_title()
    fig = hypervolume_plot(path, "z", [1.1, 11.0], path=tmp_path / "hv.svg")
    assert (tmp_path / "hv.svg").read_text().startswith("<?xml")
    with pytest.raises(AnalysisError, match="needs two"):
        pareto_plot(path, "z", objectives=["f1"])


def test_snapshot_of_a_multi_objective_max_study_round_trips() -> None:
    from hpostore.log import snapshot

    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=5)), zdt1, metric=["f1", "f2"],
                     mode=["max", "min"], verbose=False)  # fmt: skip
    tuner.run(number_of_trials=8)
    blob = snapshot.encode(tuner.state, "0" * 64)
    assert blob is not None  # the fold's objective fields are carried, not a reason to skip
    read = snapshot.read_header(blob)
    assert read is not None
    state = snapshot.decode(*read)
    assert state.summary() == tuner.state.summary()
    assert state.sign == -1.0 and state.incumbent_error == tuner.incumbent_error
    assert [t.trial for t in state.pareto_front()] == [p["trial"] for p in tuner.pareto_front]


def test_metrics_cross_worker_processes() -> None:
    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=6)), zdt1, metric=["f1", "f2"],
                     n_workers=2, verbose=False)  # fmt: skip
    tuner.run(number_of_trials=6)
    tuner.close()
    assert tuner.state.n_finished == 6
    for t in tuner.state.trials.values():
        assert t.metrics()["cost"] == t.config["x1"] and t.metrics()["f1"] == t.config["x0"]
