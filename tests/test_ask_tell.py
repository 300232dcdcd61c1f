"""Ask/tell, enqueue and user attributes: the user drives the loop, on the same log as run()."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from scipy import stats

import hpostore
from hpostore import (
    ASHAScheduler,
    BasicScheduler,
    ConfigSpaceError,
    HPOStoreError,
    HPOTuner,
    InvalidArgument,
    RandomSearcher,
    Trial,
    open_store,
)

SPACE = {"x": stats.uniform(-1, 2)}


def square(x: float) -> float:
    return x * x


def tuner(path: str, **kw: Any) -> HPOTuner:
    searcher = RandomSearcher(SPACE, seed=kw.pop("seed", 0))
    return HPOTuner(BasicScheduler(searcher), square, store=path, study="s", verbose=False, **kw)


def kinds(path: str) -> list[str]:
    with open_store(path, read_only=True) as store:
        return store.events("s", columns=["kind"]).column("kind").to_pylist()


def test_ask_report_tell_logs_the_trial_like_run(store_path: str) -> None:
    with tuner(store_path) as t:
        trial = t.ask()
        assert isinstance(trial, Trial) and (trial.id, trial.attempt) == (0, 1)
        assert t.state.trials[0].config == trial.config
        assert trial.report(1, 0.5) is False
        t.tell(trial, square(**trial.config))
        second = t.ask()
        t.tell(second, failed="the simulator crashed")
        assert t.incumbent_error == pytest.approx(trial.config["x"] ** 2)
        assert t.state.trials[1].message == "the simulator crashed"
    assert kinds(store_path) == [
        "study", "session", "suggest", "start", "report", "evaluate", "update",
        "suggest", "start", "fail", "end",
    ]  # fmt: skip


def test_tell_of_a_trial_not_asked_or_told_twice_is_refused_and_logs_nothing(
    store_path: str,
) -> None:
    with tuner(store_path) as t:
        trial = t.ask()
        t.tell(trial, 0.3)
        seq = t.state.seq
        with pytest.raises(HPOStoreError, match="already told"):
            t.tell(trial, 0.1)
        with pytest.raises(HPOStoreError, match="not handed out"):
            t.tell(7, 0.1)
        with pytest.raises(HPOStoreError, match="not handed out"):
            trial.report(2, 0.1)
        assert t.state.seq == seq
        with pytest.raises(InvalidArgument, match="not both"):
            t.tell(t.ask(), 0.2, failed="x")


def test_a_bad_value_fails_the_trial_as_in_run(store_path: str) -> None:
    with tuner(store_path) as t:
        trial = t.ask()
        t.tell(trial, float("nan"))
        assert t.state.trials[trial.id].status.value == "failed"


CRASHING_CLIENT = """
import os, sys
from scipy import stats
from hpostore import BasicScheduler, HPOTuner, RandomSearcher
t = HPOTuner(BasicScheduler(RandomSearcher({"x": stats.uniform(-1, 2)}, seed=0)),
             lambda x: x, store=sys.argv[1], study="s", verbose=False)
first, second, third = t.ask(), t.ask(), t.ask()
t.tell(second, 0.5)
print(first.id, first.config["x"], third.id, third.config["x"], flush=True)
os._exit(3)  # the process dies: no end event, two trials asked and never told
"""


def test_asked_but_untold_trials_survive_a_crash_and_are_handed_out_again(
    store_path: str,
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CRASHING_CLIENT, store_path],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 3, out.stderr
    first_id, first_x, third_id, third_x = out.stdout.split()
    with tuner(store_path) as t:
        again = [t.ask(), t.ask()]
        assert [(a.id, a.config["x"], a.attempt) for a in again] == [
            (int(first_id), float(first_x), 2),
            (int(third_id), float(third_x), 2),
        ]
        fresh = t.ask()  # then the scheduler's next trial
        assert fresh.id == 3 and fresh.attempt == 1
        for a in (*again, fresh):
            t.tell(a, a.config["x"] ** 2)
        assert t.state.n_finished == 4


def test_close_with_trials_untold_hands_them_out_after_resume(store_path: str) -> None:
    with tuner(store_path) as t:
        asked = t.ask()
    with tuner(store_path) as t:
        again = t.ask()
        assert (again.id, again.config, again.attempt) == (asked.id, asked.config, 2)
        t.tell(again, 0.0)


def test_enqueued_configs_run_first_in_run_and_are_logged(store_path: str) -> None:
    with tuner(store_path) as t:
        t.enqueue({"x": 0.25})
        t.enqueue({"x": -0.5})
        t.run(3)
        configs = [r["config"]["x"] for r in t.records]
        assert configs[:2] == [0.25, -0.5]
        assert json.loads(t.state.trials[0].payload_json or "{}") == {"origin": "enqueued"}
    assert kinds(store_path).count("enqueue") == 2


def test_an_enqueued_config_is_replayed_after_a_crash(store_path: str) -> None:
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(__file__.rsplit("/", 1)[0])!r})
        from test_ask_tell import tuner
        t = tuner(sys.argv[1])
        t.enqueue({{"x": 0.125}})
        os._exit(3)
    """)
    out = subprocess.run([sys.executable, "-c", script, store_path], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 3, out.stderr
    with tuner(store_path) as t:
        assert t.state.enqueued == ['{"x":0.125}']
        trial = t.ask()
        assert trial.config == {"x": 0.125}
        assert t.state.enqueued == []
        t.tell(trial, 0.015625)
    with tuner(store_path) as t:  # the queue stays consumed, and a resume re-executes the
        t.run(3)  # searcher without counting the enqueued trial as one of its suggest() calls
        assert t.state.n_finished == 3


def test_enqueue_is_checked_against_the_space(store_path: str) -> None:
    with tuner(store_path) as t:
        with pytest.raises(ConfigSpaceError, match="unknown: \\['y'\\]"):
            t.enqueue({"x": 0.1, "y": 2})
        with pytest.raises(ConfigSpaceError, match="missing: \\['x'\\]"):
            t.enqueue({})


def test_enqueue_under_asha_runs_the_config(store_path: str) -> None:
    def curve(x: float, max_epochs: int, report: Any) -> float:
        for epoch in range(1, max_epochs + 1):
            if report(epoch, x * x + 1 / epoch):
                break
        return x * x + 1 / epoch

    searcher = RandomSearcher(SPACE, seed=1)
    scheduler = ASHAScheduler(searcher, eta=3, r_max=9, type="stopping")
    with HPOTuner(scheduler, curve, store=store_path, study="s", verbose=False) as t:
        t.enqueue({"x": 0.0, "max_epochs": 9})
        t.run(6)
        assert t.state.trials[0].config == {"x": 0.0, "max_epochs": 9}
        assert t.state.trials[0].has_result


def test_user_attributes_are_logged_and_replayed(store_path: str) -> None:
    with tuner(store_path) as t:
        trial = t.ask()
        t.set_trial_attr(trial, "node", "gpu-3")
        t.set_study_attr("owner", {"team": "vision", "budget": 3})
        t.tell(trial, 0.1)
        with pytest.raises(InvalidArgument, match="plain JSON"):
            t.set_study_attr("bad", {1, 2})
        with pytest.raises(InvalidArgument, match="no trial 9"):
            t.set_trial_attr(9, "k", 1)
    with tuner(store_path) as t:
        assert t.trial_attrs(0) == {"node": "gpu-3"}
        assert t.study_attrs == {"owner": {"team": "vision", "budget": 3}}
    assert kinds(store_path).count("attr") == 2


def test_run_refuses_while_asked_trials_are_untold(store_path: str) -> None:
    with tuner(store_path) as t:
        t.ask()
        with pytest.raises(InvalidArgument, match="tell them before run"):
            t.run(3)


def test_the_attributes_view_shows_the_latest_value_of_each_key(store_path: str) -> None:
    import analysis

    with tuner(store_path) as t:
        trial = t.ask()
        t.set_trial_attr(trial, "node", "gpu-1")
        t.set_trial_attr(trial, "node", "gpu-3")
        t.set_study_attr("owner", {"team": "vision"})
        t.tell(trial, 0.1)
    con = analysis.views(store_path)
    rows = con.sql("SELECT trial, key, value FROM attributes ORDER BY key").fetchall()
    assert rows == [(0, "node", '"gpu-3"'), (None, "owner", '{"team":"vision"}')]


def test_a_tuner_without_objective_is_driven_by_ask_and_tell_only(store_path: str) -> None:
    searcher = RandomSearcher(SPACE, seed=0)
    with HPOTuner(BasicScheduler(searcher), store=store_path, study="s", verbose=False) as t:
        with pytest.raises(InvalidArgument, match="no objective"):
            t.run(1)
        trial = t.ask()
        t.tell(trial, 0.5)
        assert t.incumbent_error == 0.5


class UserSearcher(hpostore.HPOSearcher):
    """A searcher that does not override restore: a resume re-executes its logged calls."""

    def __init__(self, seed: int) -> None:
        self.save_hyperparameters()
        self.rng = np.random.default_rng(seed)

    def sample_configuration(self) -> dict[str, Any]:
        return {"x": float(self.rng.uniform(-1, 1))}


def test_a_re_executed_searcher_does_not_replay_enqueued_trials_as_its_own(
    store_path: str,
) -> None:
    def make() -> HPOTuner:
        return HPOTuner(BasicScheduler(UserSearcher(seed=4)), square, store=store_path,
                        study="s", verbose=False)  # fmt: skip

    with make() as t:
        t.run(2)
        t.enqueue({"x": 0.5})
        t.run(4)
    uninterrupted = [r["config"]["x"] for r in t.records]
    with make() as t:  # re-executes suggest() twice before the enqueued trial, once after
        t.run(6)
        assert [r["config"]["x"] for r in t.records][:4] == uninterrupted
        assert t.state.n_finished == 6 and t.state.trials[2].config == {"x": 0.5}


def test_release_logs_an_interrupt_and_the_next_ask_hands_the_trial_out_again(
    store_path: str,
) -> None:
    with tuner(store_path) as t:
        first, second = t.ask(), t.ask(worker="node7:42")
        assert [p.id for p in t.pending_trials] == [first.id, second.id]
        t.release(first, reason="worker gone", worker="node3:9")
        assert [p.id for p in t.pending_trials] == [second.id]
        with pytest.raises(HPOStoreError, match="cannot tell"):
            t.tell(first, 0.0)  # no longer held: refused, nothing logged
        with pytest.raises(HPOStoreError, match="cannot release"):
            t.release(first, reason="twice")
        again = t.ask()
        assert (again.id, again.config, again.attempt) == (first.id, first.config, 2)
        for a in (again, second):
            t.tell(a, a.config["x"] ** 2)
        assert t.pending_trials == []
    with open_store(store_path, read_only=True) as store:
        events = store.events("s", columns=["kind", "trial", "worker", "payload"]).to_pylist()
    interrupts = [e for e in events if e["kind"] == "interrupt"]
    assert [(e["trial"], json.loads(e["payload"])) for e in interrupts] == [
        (first.id, {"reason": "worker gone", "worker": "node3:9"})
    ]
    assert [e["kind"] for e in events if e["trial"] == first.id] == [
        "suggest", "start", "interrupt", "start", "evaluate", "update"
    ]  # fmt: skip
    # the worker given to ask() is logged on the trial's start and on its result
    assert {e["worker"] for e in events if e["trial"] == second.id
            and e["kind"] in ("start", "evaluate")} == {"node7:42"}  # fmt: skip


def test_ask_a_given_trial_again_or_keep_it_back(store_path: str) -> None:
    with tuner(store_path) as t:
        asked = [t.ask(), t.ask()]
    with tuner(store_path) as t:  # both were left untold: handed out again after resume
        fresh = t.ask(exclude=[a.id for a in asked])  # kept back: the scheduler's next one
        assert fresh.id == 2 and fresh.attempt == 1
        with pytest.raises(InvalidArgument, match="held"):
            t.ask(trial=fresh.id)
        chosen = t.ask(trial=asked[1].id)
        assert (chosen.id, chosen.config, chosen.attempt) == (asked[1].id, asked[1].config, 2)
        with pytest.raises(InvalidArgument, match="unknown"):
            t.ask(trial=99)
        for a in (fresh, chosen):
            t.tell(a, 1.0)
        with pytest.raises(InvalidArgument, match="finished"):
            t.ask(trial=chosen.id)
        assert t.ask().id == asked[0].id  # the one left


def test_ask_tell_report_logs_extra_keyword_metrics(store_path: str) -> None:
    searcher = RandomSearcher(SPACE, seed=1)
    scheduler = ASHAScheduler(searcher, eta=3, r_max=9, type="stopping")
    with HPOTuner(scheduler, store=store_path, study="s", verbose=False,
                  metric="validation_error", resource_attr="epoch") as t:  # fmt: skip
        trial = t.ask()
        assert trial.report(1, 0.5, train_loss=0.25, lr=np.float32(0.5)) is False
        trial.report(epoch=2, validation_error=0.4, train_loss=0.2)  # the keyword form
        trial.report(3, 0.3)  # no extras: logged as a v1 report
        with pytest.raises(InvalidArgument, match="finite number"):
            trial.report(4, 0.2, train_loss="low")
        t.tell(trial, {"validation_error": 0.3, "train_loss": 0.1})
    with open_store(store_path, read_only=True) as store:
        reports = [e for e in store.events("s", columns=["kind", "resource", "error", "payload"])
                   .to_pylist() if e["kind"] == "report"]  # fmt: skip
    assert [(e["resource"], e["error"]) for e in reports] == [(1, 0.5), (2, 0.4), (3, 0.3)]
    assert [json.loads(e["payload"]) if e["payload"] else None for e in reports] == [
        {"metrics": {"validation_error": 0.5, "train_loss": 0.25, "lr": 0.5}},
        {"metrics": {"validation_error": 0.4, "train_loss": 0.2}},
        None,
    ]
