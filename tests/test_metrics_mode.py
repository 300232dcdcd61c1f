"""metric/mode: dicts of metrics, mode="max" end to end, the v2 spec and the v1 upcaster."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from scipy import stats

import analysis
from hpostore import (
    ASHAScheduler,
    BasicScheduler,
    BayesianSearcher,
    EvolutionarySearcher,
    HPOTuner,
    HyperbandScheduler,
    MedianStoppingScheduler,
    RandomSearcher,
    StudyMismatch,
    SuccessiveHalvingScheduler,
    TooManyFailures,
    TPESearcher,
    open_store,
)
from hpostore.errors import FormatVersionError, InvalidArgument
from hpostore.log.events import FORMAT_VERSION, objectives_of, upcast_spec, upcast_v1_v2

SPACE = {"x": stats.uniform(-2, 4), "y": stats.uniform(-2, 4)}


def _loss(x: float, y: float) -> float:
    return (x - 0.5) ** 2 + (y + 0.25) ** 2


def _curve(x: float, y: float, epoch: int) -> float:
    return _loss(x, y) + 1.0 / epoch


def fidelity_min(x: float, y: float, max_epochs: int, report: Callable[..., bool]) -> float:
    for e in range(1, int(max_epochs) + 1):
        if report(e, _curve(x, y, e)):
            break
    return _curve(x, y, e)


def fidelity_max(x: float, y: float, max_epochs: int, report: Callable[..., bool]) -> float:
    for e in range(1, int(max_epochs) + 1):
        if report(e, -_curve(x, y, e)):
            break
    return -_curve(x, y, e)


def plain_min(x: float, y: float) -> dict[str, float]:
    return {"error": _loss(x, y), "size": x + 10}


def plain_max(x: float, y: float) -> dict[str, float]:
    return {"accuracy": -_loss(x, y), "size": x + 10}


CASES: dict[str, Callable[[], Any]] = {
    "random": lambda: BasicScheduler(RandomSearcher(SPACE, seed=1)),
    "tpe": lambda: BasicScheduler(TPESearcher(SPACE, n_startup=4, seed=1)),
    "bayesian": lambda: BasicScheduler(BayesianSearcher(SPACE, seed=1)),
    "evolution": lambda: BasicScheduler(EvolutionarySearcher(SPACE, seed=1)),
    "asha": lambda: ASHAScheduler(TPESearcher(SPACE, n_startup=4, seed=1), eta=2, r_max=8),
    "asha-stopping": lambda: ASHAScheduler(
        RandomSearcher(SPACE, seed=1), eta=2, r_max=8, type="stopping"
    ),
    "hyperband": lambda: HyperbandScheduler(RandomSearcher(SPACE, seed=1), eta=2, r_max=8),
    "sh": lambda: SuccessiveHalvingScheduler(RandomSearcher(SPACE, seed=1), eta=2, r_max=8),
    "median": lambda: MedianStoppingScheduler(
        RandomSearcher(SPACE, seed=1),
        grace_resource=2,
        min_trials=2,
        resource_attr="max_epochs",
        r_max=8,
    ),
}
FIDELITY = {"asha", "asha-stopping", "hyperband", "sh", "median"}


def _stream(tuner: HPOTuner) -> list[tuple[Any, ...]]:
    events = tuner.store.events(tuner.study).to_pylist()
    return [(e["kind"], e["trial"], e["config"], e["resource"]) for e in events
            if e["kind"] not in ("study", "session", "end")]  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_mode_max_decides_as_min_on_the_negated_metric(case: str) -> None:
    """Every searcher and scheduler ranks by the signed objective: maximizing -f makes the
    same proposals and decisions (stop, pause, promote) as minimizing f, bit for bit."""
    n = 24 if case in FIDELITY else 16
    if case in FIDELITY:
        lo = HPOTuner(CASES[case](), fidelity_min, verbose=False)
        hi = HPOTuner(CASES[case](), fidelity_max, metric="accuracy", mode="max", verbose=False)
    else:
        lo = HPOTuner(CASES[case](), plain_min, verbose=False)
        hi = HPOTuner(CASES[case](), plain_max, metric="accuracy", mode="max", verbose=False)
    lo.run(number_of_trials=n)
    hi.run(number_of_trials=n)
    assert _stream(hi) == _stream(lo)
    assert hi.incumbent == lo.incumbent
    assert hi.incumbent_error == -lo.incumbent_error
    assert [r["error"] for r in hi.records] == [-r["error"] for r in lo.records]
    traj = hi.incumbent_trajectory
    assert traj == sorted(traj) and traj[-1] == max(r["error"] for r in hi.records)
    assert hi.state.spec["mode"] == "max" and hi.state.spec["metric"] == "accuracy"
    assert hi.state.spec["format_version"] == FORMAT_VERSION == 2


def test_views_rank_by_the_mode_and_type_every_metric() -> None:
    tuner = HPOTuner(
        BasicScheduler(RandomSearcher(SPACE, seed=3)), plain_max, metric="accuracy",
        mode="max", verbose=False,
    )  # fmt: skip
    tuner.run(number_of_trials=12)
    con = analysis.views(tuner.store)
    (best, inc, mode), = con.sql("SELECT best_error, incumbent_trial, mode FROM studies").fetchall()  # fmt: skip
    assert mode == "max" and best == tuner.incumbent_error
    assert inc == tuner.state.incumbent_trial
    anytime = con.sql("SELECT best_error FROM anytime ORDER BY seq").fetchall()
    assert [b for (b,) in anytime] == sorted(set(tuner.incumbent_trajectory))
    rows = con.sql(
        "SELECT trial, metric, value, typeof(value) FROM metrics WHERE kind = 'evaluate' "
        "ORDER BY trial, metric"
    ).fetchall()
    assert {r[1] for r in rows} == {"accuracy", "size"} and {r[3] for r in rows} == {"DOUBLE"}
    for trial, metric, value, _ in rows:
        t = tuner.state.trials[trial]
        assert value == pytest.approx(t.metrics(tuner.state.sign, "accuracy")[metric])
        if metric == "size":
            assert value == pytest.approx(t.config["x"] + 10)
    # the error column holds the objective as measured, never negated
    errors = con.sql("SELECT error FROM events WHERE kind = 'evaluate'").fetchall()
    assert all(e <= 0 for (e,) in errors)
    reached = analysis.time_to_target(tuner.store, best - 1e-9).column("reached").to_pylist()
    assert reached == [True]


def test_dict_without_the_metric_fails_the_trial_with_a_clear_message() -> None:
    tuner = HPOTuner(
        BasicScheduler(RandomSearcher(SPACE, seed=0)), plain_min, metric="validation_error",
        verbose=False, max_failures=2,
    )  # fmt: skip
    with pytest.raises(TooManyFailures):
        tuner.run(number_of_trials=2)
    messages = [t.message for t in tuner.state.trials.values()]
    assert all("without 'validation_error'" in (m or "") for m in messages), messages
    assert all("'error'" in (m or "") and "'size'" in (m or "") for m in messages)


def test_non_numeric_metric_fails_the_trial() -> None:
    tuner = HPOTuner(
        BasicScheduler(RandomSearcher(SPACE, seed=0)),
        lambda x, y: {"error": 1.0, "note": "text"}, verbose=False, max_failures=1,
    )  # fmt: skip
    with pytest.raises(TooManyFailures):
        tuner.run(number_of_trials=1)
    assert "metric 'note'" in (tuner.state.trials[0].message or "")


def test_resume_with_another_metric_or_mode_is_refused(tmp_path: Any) -> None:
    path = str(tmp_path / "s.duckdb")
    with open_store(path) as store:
        HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=0)), plain_max, metric="accuracy",
                 mode="max", store=store, study="s", verbose=False).run(3)  # fmt: skip
    with open_store(path) as store:
        with pytest.raises(StudyMismatch, match="metric='accuracy', mode='max'"):
            HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=0)), plain_max,
                     metric="accuracy", store=store, study="s", verbose=False)  # fmt: skip
        resumed = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=0)), plain_max,
                           metric="accuracy", mode="max", store=store, study="s", verbose=False)  # fmt: skip
        best = resumed.incumbent_error
        resumed.run(6)
        assert resumed.incumbent_error >= best
        assert resumed.incumbent_error == max(r["error"] for r in resumed.records)


@pytest.mark.parametrize(
    ("metric", "mode"),
    [
        ("", "min"),
        ("error", "minimize"),
        (["a", "a"], "min"),
        (["a", "b"], ["min", "min", "max"]),
        (3, "min"),
    ],
)
def test_bad_metric_or_mode_is_refused(metric: Any, mode: Any) -> None:
    with pytest.raises(InvalidArgument, match="metric|mode"):
        HPOTuner(BasicScheduler(RandomSearcher(SPACE)), plain_min, metric=metric, mode=mode)


def test_upcaster_reads_a_v1_spec_as_one_objective_minimized() -> None:
    v1 = {"format_version": 1, "seed": 0, "scheduler": None}
    up = upcast_v1_v2(v1)
    assert up["format_version"] == 2 and up["metric"] == "error" and up["mode"] == "min"
    assert v1 == {"format_version": 1, "seed": 0, "scheduler": None}  # not mutated
    assert objectives_of(upcast_spec(v1)) == (("error",), ("min",))
    assert objectives_of({"metric": ["a", "b"], "mode": ["max", "min"]}) == (
        ("a", "b"), ("max", "min"))  # fmt: skip
    with pytest.raises(FormatVersionError, match="version 3"):
        upcast_spec({"format_version": 3})
    with pytest.raises(FormatVersionError, match="min'/'max"):
        objectives_of({"metric": "a", "mode": "up"})


def test_v1_study_resumes_and_stays_v1(tmp_path: Any) -> None:
    """A study whose log was written in format v1 resumes; its study event is not rewritten,
    and a result that is one number is logged as v1 logged it (no payload)."""
    path = str(tmp_path / "v1.duckdb")
    with open_store(path) as store:
        HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=0)), _loss, store=store, study="s",
                 verbose=False).run(2)  # fmt: skip
        # rewrite the study event as 0.1.0 wrote it (format_version 1)
        rows = store.events("s").to_pylist()
    spec = json.loads(rows[0]["payload"])
    spec["format_version"] = 1
    v1 = str(tmp_path / "old.duckdb")
    with open_store(v1) as store:
        for r in rows:
            payload = json.dumps(spec) if r["kind"] == "study" else r["payload"]
            store.append("s", r["kind"], elapsed=r["elapsed"], session=r["session"],
                         trial=r["trial"], config=r["config"], resource=r["resource"],
                         error=r["error"], runtime=r["runtime"], worker=r["worker"],
                         payload=payload)  # fmt: skip
    with open_store(v1) as store:
        tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=0)), _loss, store=store,
                         study="s", verbose=False)  # fmt: skip
        tuner.run(4)
        events = store.events("s").to_pylist()
        assert json.loads(events[0]["payload"])["format_version"] == 1
        assert all(e["payload"] is None for e in events if e["kind"] == "evaluate")
        assert tuner.state.n_finished == 4


def _reports_extra(x: float, y: float, max_epochs: int, report: Callable[..., bool]) -> float:
    for e in range(1, int(max_epochs) + 1):
        if report(e, _curve(x, y, e), train_loss=_curve(x, y, e) / 2, lr=0.1):
            break
    return _curve(x, y, e)


@pytest.mark.parametrize("n_workers", [1, 2])
def test_report_takes_extra_metrics_as_keywords(n_workers: int) -> None:
    sched = ASHAScheduler(RandomSearcher(SPACE, seed=2), eta=2, r_max=4)
    tuner = HPOTuner(sched, _reports_extra, n_workers=n_workers, verbose=False)
    tuner.run(number_of_trials=6)
    con = analysis.views(tuner.store)
    rows = con.sql(
        "SELECT metric, count(*), bool_and(typeof(value) = 'DOUBLE') FROM metrics "
        "WHERE kind = 'report' GROUP BY metric ORDER BY metric"
    ).fetchall()
    n = con.sql("SELECT count(*) FROM events WHERE kind = 'report'").fetchall()[0][0]
    assert rows == [("error", n, True), ("lr", n, True), ("train_loss", n, True)]
    half = con.sql(
        "SELECT bool_and(abs(t.value * 2 - e.value) < 1e-12) FROM metrics t JOIN metrics e "
        "USING (seq) WHERE t.metric = 'train_loss' AND e.metric = 'error'"
    ).fetchall()
    assert half == [(True,)]
    tuner.close()


def test_report_refuses_a_non_numeric_extra_metric() -> None:
    def objective(x: float, y: float, report: Callable[..., bool]) -> float:
        report(1, 0.5, note="text")
        return 0.5

    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=0)), objective, verbose=False,
                     max_failures=1)  # fmt: skip
    with pytest.raises(TooManyFailures):
        tuner.run(number_of_trials=1)
    assert "note=...) needs a finite number" in (tuner.state.trials[0].message or "")
