"""Scheduler conformance suite (every scheduler) and multi-fidelity rules on hand-made curves."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import hpostore.searchers
from hpostore import (
    ASHAScheduler,
    BasicScheduler,
    HPOTuner,
    HyperbandScheduler,
    InvalidArgument,
    MedianStoppingScheduler,
    RandomSearcher,
    SuccessiveHalvingScheduler,
    open_store,
    replay_table,
)
from hpostore.schedulers import Action, Decision, TrialScheduler, rung_levels

SPACE = {"x": stats.uniform(0, 1)}


def _searcher() -> RandomSearcher:
    return RandomSearcher(SPACE, seed=5)


SCHEDULERS: dict[str, Callable[[], TrialScheduler]] = {
    "sh": lambda: SuccessiveHalvingScheduler(_searcher(), eta=2, r_min=2, r_max=10),
    "asha-promotion": lambda: ASHAScheduler(_searcher(), eta=2, r_min=1, r_max=8),
    "asha-stopping": lambda: ASHAScheduler(_searcher(), eta=2, r_min=1, r_max=8, type="stopping"),
    "hyperband-promotion": lambda: HyperbandScheduler(
        _searcher(), eta=2, r_min=1, r_max=8, type="promotion"
    ),
    "hyperband-stopping": lambda: HyperbandScheduler(_searcher(), eta=2, r_min=1, r_max=8),
    "median": lambda: MedianStoppingScheduler(
        _searcher(), grace_resource=2, min_trials=2, resource_attr="max_epochs", r_max=8
    ),
}
STREAM = ("suggest", "report", "evaluate", "fail", "stop", "promote", "pause", "update")


def objective(x: float, max_epochs: int, report: Callable[[float, float], bool]) -> float:
    """A learning curve per config; x > 0.9 fails (failures are part of the cycle)."""
    if x > 0.9:
        raise ValueError("diverged")
    error = 1.0
    for epoch in range(1, int(max_epochs) + 1):
        error = (x - 0.3) ** 2 + 1.0 / epoch
        if report(epoch, error):
            break
    return error


def stream(store: Any, study: str) -> list[tuple[Any, ...]]:
    table = store.events(study)
    cols = [table.column(c).to_pylist() for c in ("kind", "trial", "config", "resource", "error")]
    payloads = table.column("payload").to_pylist()
    return [
        (*row, payload if row[0] != "stop" else None)
        for *row, payload in zip(*cols, payloads)
        if row[0] in STREAM
    ]


@pytest.fixture(params=sorted(SCHEDULERS))
def make(request: pytest.FixtureRequest) -> Callable[[], TrialScheduler]:
    return SCHEDULERS[request.param]


def test_every_scheduler_cycles_decides_validly_and_replays_to_its_live_state(
    make: Callable[[], TrialScheduler],
) -> None:
    scheduler = make()
    seen: list[tuple[int, dict[str, Any]]] = []
    ref: list[HPOTuner] = []

    def observed(x: float, max_epochs: int, report: Callable[[float, float], bool]) -> float:
        seen.append((ref[0].state.seq, scheduler.snapshot()))  # the live state at this point
        return objective(x, max_epochs, report)

    tuner = HPOTuner(scheduler, observed, verbose=False, max_failures=None)
    ref.append(tuner)
    tuner.run(24)
    table = tuner.store.events("default")
    rows = table.to_pylist()
    trials = tuner.state.trials
    assert tuner.state.n_finished == 24 and tuner.state.n_failed > 0
    for row in rows:  # decisions are valid events with a reason, on known trials
        if row["kind"] in ("stop", "promote", "pause"):
            assert row["trial"] in trials and json.loads(row["payload"])["reason"]
        if row["kind"] == "promote" and "to_trial" in json.loads(row["payload"]):
            target = trials[json.loads(row["payload"])["to_trial"]]  # re-run as a new trial (SH)
            assert target.payload["promoted_from"] == row["trial"]
            assert target.config["max_epochs"] > trials[row["trial"]].config["max_epochs"]
        elif row["kind"] == "promote":  # the paused trial itself starts again, with more
            assert json.loads(row["payload"])["resume"] is True
            nxt = next(r for r in rows if r["seq"] > row["seq"] and r["trial"] == row["trial"])
            assert nxt["kind"] == "start" and nxt["resource"] == row["resource"]
            assert json.loads(nxt["config"])["max_epochs"] == row["resource"]
    for t in trials.values():  # a stopped trial ended at its next report: below r_max
        if t.stopped:
            assert t.curve and t.curve[-1][0] < 8 and t.resource == t.curve[-1][0]
    restored = make()
    restored.bind_seed(tuner.state.spec["seed"])  # type: ignore[index]
    restored.restore(replay_table("default", table))
    assert restored.snapshot() == scheduler.snapshot()
    for seq, snapshot in seen:  # every prefix of the log replays to the state seen live there
        again = make()
        again.bind_seed(tuner.state.spec["seed"])  # type: ignore[index]
        again.restore(replay_table("default", table.slice(0, seq)))
        assert again.snapshot() == snapshot


def test_every_scheduler_resumes_to_the_uninterrupted_stream(
    make: Callable[[], TrialScheduler], tmp_path: Any
) -> None:
    with open_store(":memory:") as store:
        HPOTuner(make(), objective, store=store, study="a", verbose=False).run(20)
        reference = stream(store, "a")
        for n in (7, 13, 20):  # stop and resume twice, each time with a fresh scheduler
            HPOTuner(make(), objective, store=store, study="b", verbose=False).run(n)
        assert stream(store, "b") == reference


def test_textbook_rung_levels() -> None:
    assert rung_levels(2, 10, 2) == (2, 4, 8, 10)
    assert SuccessiveHalvingScheduler(_searcher(), 2, 2, 10).rung_levels == (2, 4, 8, 10)
    assert ASHAScheduler(_searcher(), 3, 1, 27).rung_levels == (1, 3, 9, 27)
    assert rung_levels(1, 10, 3) == (1, 3, 9, 10)


def _drive(scheduler: TrialScheduler, errors: list[float], steps: int) -> list[Any]:
    """Hand-made results: the error of config ``origin`` is ``errors[origin]`` minus a bonus
    per rung. Returns (trial, origin, resource, promoted_from) of each run, in order."""
    runs: list[Any] = []
    origins: dict[int, int] = {}
    trial = 0
    for _ in range(steps):
        s = scheduler.suggest_trial(trial)
        assert s is not None
        if s.resume:  # the paused trial runs again
            assert s.promoted_from is not None
            t = s.promoted_from
        else:
            t, trial = trial, trial + 1
            origins[t] = (s.payload or {}).get("origin", t)
        runs.append((t, origins[t], s.config["max_epochs"], s.promoted_from))
        scheduler.on_result(
            t, errors[origins[t] % len(errors)] - s.config["max_epochs"] / 1e3, None
        )
        _check_promotion_counts(scheduler, runs)
    return runs


def _check_promotion_counts(scheduler: TrialScheduler, runs: list[Any]) -> None:
    """Never more than 1/eta of a rung's results promoted to the next rung."""
    levels = scheduler.rung_levels  # type: ignore[attr-defined]
    eta = scheduler.eta  # type: ignore[attr-defined]
    for low, high in zip(levels, levels[1:]):
        at_low = {t for t, _, r, _ in runs if r == low}
        promoted = [t for t, _, r, src in runs if r == high and src in at_low]
        assert len(promoted) <= len(at_low) // eta, (low, high, len(at_low), len(promoted))


def test_asha_promotion_resumes_the_paused_trial_with_the_best_error() -> None:
    errors = [0.8, 0.1, 0.5, 0.3, 0.9, 0.2]
    asha = ASHAScheduler(_searcher(), eta=3, r_min=1, r_max=9)
    runs = _drive(asha, errors, 9)
    # trials 0, 1, 2 at rung 1; the 3rd result makes 1/3 promotable: the best (trial 1) resumes
    assert runs[:4] == [(0, 0, 1, None), (1, 1, 1, None), (2, 2, 1, None), (1, 1, 3, 1)]
    assert runs[6] == (5, 5, 1, None) and runs[7] == (5, 5, 3, 5)  # 6 results: the top 2 go on
    assert [r for r in runs if r[2] == 9] == []  # rung 3 holds 2 results: none goes to 9 yet
    resumed = [asha.snapshot()["trials"][str(t)] for t in (1, 5)]
    assert [json.loads(r[0])["max_epochs"] for r in resumed] == [3, 3]
    assert [dict(r[6]) for r in resumed] == [{1: 0.099, 3: 0.097}, {1: 0.199, 3: 0.197}]


@settings(max_examples=30)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=40), st.sampled_from([2, 3]))
def test_asha_never_promotes_more_than_one_eta_of_a_rung(errors: list[float], eta: int) -> None:
    _drive(ASHAScheduler(_searcher(), eta=eta, r_min=1, r_max=eta**3), errors, 60)


def test_successive_halving_promotes_the_best_half_per_rung_synchronously() -> None:
    errors = [0.8, 0.1, 0.5, 0.3, 0.9, 0.2, 0.7, 0.4]  # origin k's error (lower: better)
    sh = SuccessiveHalvingScheduler(_searcher(), eta=2, r_min=2, r_max=10)
    runs = _drive(sh, errors, 15)
    by_rung: dict[int, list[int]] = {}
    for _, origin, rung, _ in runs:
        by_rung.setdefault(rung, []).append(origin)
    assert {r: len(o) for r, o in by_rung.items()} == {2: 8, 4: 4, 8: 2, 10: 1}
    assert sorted(by_rung[4]) == [1, 3, 5, 7] and sorted(by_rung[8]) == [1, 5]
    assert by_rung[10] == [1]
    nxt = sh.suggest_trial(15)  # the round is complete: a new one starts at r_min
    assert nxt is not None and nxt.payload == {"round": 1, "rung": 2}


def test_successive_halving_waits_for_an_incomplete_rung() -> None:
    sh = SuccessiveHalvingScheduler(_searcher(), eta=2, r_min=1, r_max=2)
    assert [sh.suggest_trial(t) is not None for t in range(2)] == [True, True]
    assert sh.suggest_trial(2) is None  # rung 1 holds 2 suggested, 0 results: wait
    sh.on_result(0, 0.5, None)
    assert sh.suggest_trial(2) is None
    sh.on_result(1, 0.2, None)
    promoted = sh.suggest_trial(2)
    assert promoted is not None and promoted.promoted_from == 1
    assert promoted.config["max_epochs"] == 2 and promoted.reason


def test_asha_stopping_continues_only_the_top_of_each_rung() -> None:
    asha = ASHAScheduler(_searcher(), eta=2, r_min=1, r_max=4, type="stopping")
    for t in range(4):
        assert asha.suggest_trial(t).config["max_epochs"] == 4  # type: ignore[union-attr]
    decisions = [asha.on_report(t, 1, e).action for t, e in enumerate([0.5, 0.6, 0.4, 0.45])]
    # n=1: top 1 -> go; n=2: 0.6 ranks 2 of 2 (top 1) -> stop; n=3: 0.4 is best -> go;
    # n=4: 0.45 ranks 2 of 4 (top 2) -> go
    assert decisions == [Action.CONTINUE, Action.STOP, Action.CONTINUE, Action.CONTINUE]
    assert asha.on_report(0, 1.5, 0.3).action is Action.CONTINUE  # no rung crossed


def test_median_rule_stops_a_trial_worse_than_the_median() -> None:
    med = MedianStoppingScheduler(_searcher(), grace_resource=2, min_trials=2)
    for t in range(3):
        med.suggest_trial(t)
    for t, e in enumerate([0.2, 0.4]):
        med.on_report(t, 1, e)
        med.on_report(t, 2, e)
    med.on_report(2, 1, 0.9)
    stop = med.on_report(2, 2, 0.9)
    assert stop.action is Action.STOP and "median" in stop.reason


def test_hyperband_brackets_come_from_the_logged_seed() -> None:
    def brackets(seed: int) -> list[int]:
        hb = HyperbandScheduler(_searcher(), eta=2, r_min=1, r_max=8)
        hb.bind_seed(seed)
        return [hb.suggest_trial(t).payload["bracket"] for t in range(60)]  # type: ignore[union-attr, index]

    assert brackets(1) == brackets(1) != brackets(2)
    assert set(brackets(1)) == {0, 1, 2, 3}


def test_decisions_need_a_reason_and_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="needs a non-empty reason"):
        Decision(Action.STOP, " ")
    with pytest.raises(InvalidArgument, match="eta >= 2"):
        ASHAScheduler(_searcher(), eta=1)
    with pytest.raises(InvalidArgument, match="r_min <= r_max"):
        SuccessiveHalvingScheduler(_searcher(), r_min=4, r_max=2)
    with pytest.raises(InvalidArgument, match="type must be"):
        ASHAScheduler(_searcher(), type="fast")


def test_reports_under_a_basic_scheduler_are_logged_and_never_stop() -> None:
    def learner(x: float, report: Callable[[float, float], bool]) -> float:
        assert not any(report(epoch, x / epoch) for epoch in (1, 2, 3))
        return x / 3

    tuner = HPOTuner(BasicScheduler(_searcher()), learner, verbose=False)
    tuner.run(2)
    assert [len(t.curve) for t in tuner.state.trials.values()] == [3, 3]
    assert tuner.state.trials[0].resource == 3
    from hpostore.channels import InlineChannel

    reporter = InlineChannel().reporter(0, 1)  # bad values are refused before anything is logged
    with pytest.raises(InvalidArgument, match="finite numbers"):
        reporter(1, math.nan)


MODEL_SEARCHERS = [
    name
    for name in ("BayesianSearcher", "TPESearcher", "EvolutionarySearcher")
    if hasattr(hpostore.searchers, name)
]


@pytest.mark.parametrize("name", MODEL_SEARCHERS)
def test_model_searchers_under_asha_resume_to_the_uninterrupted_stream(name: str) -> None:
    def make() -> TrialScheduler:
        return ASHAScheduler(getattr(hpostore.searchers, name)(SPACE, seed=3), 2, 1, 8)

    with open_store(":memory:") as store:
        HPOTuner(make(), objective, store=store, study="a", verbose=False).run(14)
        for n in (5, 14):
            HPOTuner(make(), objective, store=store, study="b", verbose=False).run(n)
        assert stream(store, "b") == stream(store, "a")


def test_a_time_budget_starts_no_trial_after_it_is_spent() -> None:
    ticks = iter(range(10**6))
    tuner = HPOTuner(
        BasicScheduler(_searcher()), lambda x: x, verbose=False, clock=lambda: float(next(ticks))
    )
    tuner.run(1000, time_budget_s=20)
    assert 0 < tuner.state.n_finished < 10
    with pytest.raises(InvalidArgument, match="time_budget_s"):
        tuner.run(1000, time_budget_s=-1)


def test_a_restored_model_searcher_counts_failed_trials_as_pending_like_the_live_one() -> None:
    def failing(x: float, max_epochs: int) -> float:  # half the configs fail
        if x > 0.5:
            raise ValueError("diverged")
        return (x - 0.3) ** 2 + 1.0 / max_epochs

    def make() -> TrialScheduler:
        searcher = hpostore.searchers.BayesianSearcher(SPACE, n_init=3, n_candidates=50, seed=4)
        return ASHAScheduler(searcher, eta=2, r_min=1, r_max=4)

    live = make()
    tuner = HPOTuner(live, failing, verbose=False, max_failures=None)
    tuner.run(8)
    assert tuner.state.n_failed > 0
    restored = make()
    restored.bind_seed(tuner.state.spec["seed"])  # type: ignore[index]
    restored.restore(replay_table("default", tuner.store.events("default")))
    trial = tuner.state.next_trial
    assert restored.suggest_trial(trial) == live.suggest_trial(trial)


@settings(max_examples=50)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 30)), max_size=120))
def test_the_rung_index_agrees_with_a_sorted_list(ops: list[tuple[bool, int]]) -> None:
    from hpostore.schedulers import _index

    saved, _index.LOAD = _index.LOAD, 3  # small buckets: splits and empty buckets happen
    try:
        index, reference = _index.SortedList(), []
        for add, value in ops:
            item = (value / 7, value)
            if add or item not in reference:
                index.add(item)
                reference.append(item)
            else:
                index.remove(item)
                reference.remove(item)
            reference.sort()
            assert list(index) == reference and len(index) == len(reference)
            assert [index[i] for i in range(len(reference))] == reference
            probe = (value / 7, -1)
            assert index.rank(probe) == sum(x < probe for x in reference)
    finally:
        _index.LOAD = saved
