"""Any-time curves across studies, time to target, area under the curve, time travel."""

from __future__ import annotations

import pytest

import analysis
from hpostore import EventLog, open_store
from tests.analysis_logs import write_curve, write_resumed_study


@pytest.fixture
def seeds() -> EventLog:
    """3 seeds of algorithm A and 2 of algorithm B, with hand-picked improvements."""
    store = open_store(":memory:")
    write_curve(store, "a0", [(1.0, 0.9), (2.0, 0.5), (4.0, 0.2)], end=10.0)
    write_curve(store, "a1", [(1.0, 0.8), (3.0, 0.6)], seed=1, end=10.0)
    write_curve(store, "a2", [(2.0, 0.7), (5.0, 0.4)], seed=2, end=10.0)
    write_curve(store, "b0", [(1.0, 0.3)], searcher="Bayes", scheduler="ASHA", end=10.0)
    write_curve(store, "b1", [(6.0, 0.1)], searcher="Bayes", scheduler="ASHA", seed=1, end=10.0)
    return store


def _by_x(table, group: str) -> dict[float, tuple]:  # type: ignore[no-untyped-def]
    rows = [r for r in table.to_pylist() if r["group"] == group]
    return {r["x"]: (r["n_studies"], r["median"], r["q_low"], r["q_high"]) for r in rows}


def test_compare_aligns_seeds_on_a_common_grid(seeds: EventLog) -> None:
    bands = analysis.compare(seeds, grid=[0.5, 1.0, 2.5, 4.0, 5.0, 9.0], quantiles=(0.0, 1.0))
    a = _by_x(bands, "RandomSearcher + BasicScheduler")
    assert a[0.5] == (0, None, None, None)  # before any result
    assert a[1.0] == (2, pytest.approx(0.85), 0.8, 0.9)  # a2 has no result yet
    assert a[2.5] == (3, 0.7, 0.5, 0.8)
    assert a[4.0] == (3, 0.6, 0.2, 0.7)
    assert a[9.0] == (3, 0.4, 0.2, 0.6)  # held after the last improvement
    b = _by_x(bands, "Bayes + ASHA")
    assert b[5.0] == (1, 0.3, 0.3, 0.3)
    assert b[9.0] == (2, pytest.approx(0.2), 0.1, 0.3)


def test_compare_by_trial_count_and_custom_groups(seeds: EventLog) -> None:
    bands = analysis.compare(
        seeds, ["a0", "a1"], group_by={"a0": "g", "a1": "g"}, x="n_finished", grid=[1, 2, 3]
    )
    assert _by_x(bands, "g") == {1.0: (2, pytest.approx(0.85), pytest.approx(0.825), pytest.approx(0.875)),
                                 2.0: (2, pytest.approx(0.55), pytest.approx(0.525), pytest.approx(0.575)),
                                 3.0: (2, pytest.approx(0.4), pytest.approx(0.3), pytest.approx(0.5))}  # fmt: skip
    default = analysis.compare(seeds, grid=50)
    assert default.num_rows == 100 and default.column("x").to_pylist()[0] == 1.0
    assert max(default.column("x").to_pylist()) == 10.0  # to the end of the longest study


def test_time_to_target(seeds: EventLog) -> None:
    table = analysis.time_to_target(seeds, 0.45)
    got = {r["study"]: (r["elapsed"], r["n_finished"], r["reached"]) for r in table.to_pylist()}
    assert got == {
        "a0": (4.0, 3, True),
        "a1": (None, None, False),
        "a2": (5.0, 2, True),
        "b0": (1.0, 1, True),
        "b1": (6.0, 1, True),
    }


def test_area_under_curve_is_the_mean_incumbent_over_the_window(seeds: EventLog) -> None:
    table = analysis.area_under_curve(seeds, ["a0", "a1"], start=1.0, stop=5.0)
    got = dict(zip(table.column("study").to_pylist(), table.column("auc").to_pylist()))
    # a0: 0.9 on [1,2), 0.5 on [2,4), 0.2 on [4,5) -> (0.9 + 1.0 + 0.2) / 4
    assert got["a0"] == pytest.approx(2.1 / 4)
    assert got["a1"] == pytest.approx((0.8 * 2 + 0.6 * 2) / 4)
    default = analysis.area_under_curve(seeds)  # from the latest first result (6.0, b1) to 10
    assert default.column("start").to_pylist()[0] == 6.0
    assert dict(zip(default.column("study").to_pylist(), default.column("auc").to_pylist()))[
        "b1"
    ] == pytest.approx(0.1)
    with pytest.raises(analysis.AnalysisError, match="start < stop"):
        analysis.area_under_curve(seeds, start=3.0, stop=3.0)


def test_state_at_replays_a_prefix() -> None:
    store = open_store(":memory:")
    write_resumed_study(store)
    before = analysis.state_at(store, "resumed", elapsed=7.0)
    assert before.incumbent_error == 0.5 and before.n_finished == 2 and before.sessions == 2
    assert before.trials[3].status.value == "running"  # re-started at 6.5, result at 8.0
    at_seq = analysis.state_at(store, "resumed", seq=5)
    assert at_seq.seq == 5 and at_seq.incumbent_error == 0.8
    final = analysis.state_at(store, "resumed", elapsed=1e9)
    assert final.incumbent_error == 0.3 and final.seq == store.last_seq("resumed")
    with pytest.raises(analysis.AnalysisError, match="exactly one"):
        analysis.state_at(store, "resumed")
    with pytest.raises(analysis.AnalysisError, match="no study 'nope'"):
        analysis.state_at(store, "nope", seq=1)


def test_unknown_studies_and_groupings_are_explained(seeds: EventLog) -> None:
    with pytest.raises(analysis.AnalysisError, match="no study 'zz'"):
        analysis.compare(seeds, ["a0", "zz"])
    with pytest.raises(analysis.AnalysisError, match="not a column of the studies view"):
        analysis.compare(seeds, group_by="colour")
    assert set(
        analysis.compare(seeds, group_by="scheduler", grid=3).column("group").to_pylist()
    ) == {"BasicScheduler", "ASHA"}
