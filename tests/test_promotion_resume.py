"""Promotion-type ASHA resumes the paused trial: the log, the checkpoint directory, the fold,
the analysis views and the simulator all see one trial that ran rung after rung."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

import analysis
from hpostore import ASHAScheduler, HPOTuner, InvalidArgument, RandomSearcher, replay_table
from hpostore.schedulers import Suggestion, TrialScheduler
from hpostore.simulation import Branin, SimulatedExecutor

SPACE = {"x": stats.uniform(0, 1)}


def checkpointing(
    x: float, max_epochs: int, report: Callable[[float, float], bool], checkpoint_dir: str
) -> float:
    """Trains from the epoch its checkpoint holds; logs the epochs it actually ran."""
    progress = Path(checkpoint_dir) / "epoch"
    start = int(progress.read_text()) if progress.exists() else 0
    error = 1.0
    for epoch in range(start + 1, int(max_epochs) + 1):
        error = (x - 0.3) ** 2 + 1.0 / epoch
        with open(Path(checkpoint_dir) / "ran", "a") as f:
            f.write(f"{epoch}\n")
        progress.write_text(str(epoch))
        if report(epoch, error):
            break
    return error


def _asha() -> ASHAScheduler:
    return ASHAScheduler(RandomSearcher(SPACE, seed=7), eta=2, r_min=1, r_max=4)


def test_a_promoted_trial_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    store = tmp_path / "asha.duckdb"
    with HPOTuner(_asha(), checkpointing, store=store, study="s", verbose=False) as tuner:
        tuner.run(12)
        events = tuner.store.events("s").to_pylist()
        state = tuner.state
        replayed = replay_table("s", tuner.store.events("s")).summary()
    promoted = {e["trial"] for e in events if e["kind"] == "promote"}
    assert promoted and all(json.loads(e["payload"])["resume"] for e in events
                            if e["kind"] == "promote")  # fmt: skip
    assert state.next_trial == len({e["trial"] for e in events if e["kind"] == "suggest"})
    for trial in promoted:
        t = state.trials[trial]
        mine = [e for e in events if e["trial"] == trial]
        starts = [e for e in mine if e["kind"] == "start"]
        assert len(starts) == t.attempts >= 2 and starts[0]["config"] is None
        assert [json.loads(s["config"] or mine[0]["config"])["max_epochs"] for s in starts] == [
            s["resource"] for s in starts
        ]
        # each epoch ran once: the resumed run went on from the checkpoint
        ran = (tmp_path / "asha.duckdb.checkpoints" / "s" / f"trial-{trial}" / "ran").read_text()
        assert ran.split() == [str(e) for e in range(1, int(t.config["max_epochs"]) + 1)]
        assert [r for r, _ in t.results] == [s["resource"] for s in starts][: len(t.results)]
        assert [r for r, _ in t.curve] == list(range(1, len(t.curve) + 1))
    # records: one per result; the incumbent config carries the resource it was measured at
    assert len(tuner.records) == 12 == sum(e["kind"] == "evaluate" for e in events)
    best = min(range(12), key=lambda i: tuner.records[i]["error"])
    assert tuner.incumbent == tuner.records[best]["config"]
    assert tuner.incumbent_error == tuner.records[best]["error"] == min(tuner.incumbent_trajectory)
    assert replayed == state.summary()
    # the trials view: one row per trial, at the highest resource it reached
    rows = analysis.query(
        store,
        "SELECT trial, status, resource, attempts, max_epochs FROM trials WHERE study = 's' "
        "ORDER BY trial",
    ).to_pylist()
    assert all(r["max_epochs"] == r["resource"] for r in rows)  # the config it ran last
    (study,) = analysis.query(store, "SELECT * FROM studies").to_pylist()
    with_result = study["finished"] + study["paused"] + study["stopped"]  # one vocabulary
    assert (with_result, study["evaluations"]) == (len(rows), 12)
    rows = [(r["trial"], r["status"], r["resource"], r["attempts"]) for r in rows]
    assert [r[0] for r in rows] == sorted(state.trials)
    for trial, status, resource, attempts in rows:
        t = state.trials[trial]
        assert (status, resource, attempts) == (t.status.value, t.config["max_epochs"], t.attempts)
        assert status in ("finished", "paused")  # paused: waits at its rung


def _stream(tuner: HPOTuner, study: str) -> list[tuple[Any, ...]]:
    keep = ("suggest", "promote", "report", "evaluate", "pause", "update")
    events = tuner.store.events(study).to_pylist()
    return [(e["kind"], e["trial"], e["resource"], e["error"]) for e in events if e["kind"] in keep]


def test_a_resumed_trial_interrupted_is_rerun_with_its_larger_resource(tmp_path: Path) -> None:
    reference = HPOTuner(_asha(), checkpointing, study="ref", verbose=False)
    reference.run(14)
    calls: list[int] = []

    def interrupted(
        x: float, max_epochs: int, report: Callable[[float, float], bool], checkpoint_dir: str
    ) -> float:
        if max_epochs > 1 and not calls:  # the first resumed run: Ctrl-C
            calls.append(1)
            raise KeyboardInterrupt
        return checkpointing(x, max_epochs, report, checkpoint_dir)

    store = tmp_path / "asha.duckdb"
    with pytest.raises(KeyboardInterrupt):
        HPOTuner(_asha(), interrupted, store=store, study="s", verbose=False).run(14)
    with HPOTuner(_asha(), checkpointing, store=store, study="s", verbose=False) as tuner:
        (trial,) = [t.trial for t in tuner.state.unfinished()]
        resource = tuner.state.trials[trial].config["max_epochs"]
        assert resource > 1  # it re-runs with the larger resource
        tuner.run(14)
        # rung 1, the interrupted run, its re-run (and maybe later promotions)
        assert tuner.state.trials[trial].attempts >= 3
        assert [r for r, _ in tuner.state.trials[trial].results][:2] == [1, resource]
        assert _stream(tuner, "s") == _stream(reference, "ref")


def test_checkpoint_dirs_are_per_trial_stable_and_the_name_is_reserved(tmp_path: Path) -> None:
    seen: dict[int, set[str]] = {}

    def objective(x: float, max_epochs: int, checkpoint_dir: str) -> float:
        assert os.path.isdir(checkpoint_dir)
        seen.setdefault(int(Path(checkpoint_dir).name.split("-")[1]), set()).add(checkpoint_dir)
        return x / max_epochs

    tuner = HPOTuner(_asha(), objective, verbose=False, checkpoint_root=tmp_path / "ck")
    tuner.run(10)
    assert all(len(dirs) == 1 for dirs in seen.values())
    assert all(Path(d).parent == tmp_path / "ck" / "default" for ds in seen.values() for d in ds)
    assert any(t.attempts > 1 for t in tuner.state.trials.values())
    # an in-memory store keeps checkpoints in a temporary directory, removed at close
    tuner = HPOTuner(_asha(), objective, verbose=False)
    tuner.run(2)
    root = Path(tuner.checkpoint_dir(0)).parents[1]
    assert root.is_dir()
    tuner.close()
    assert not root.exists()

    def clash(x: float, checkpoint_dir: str) -> float:
        return x

    space = {"x": stats.uniform(0, 1), "checkpoint_dir": "here"}
    from hpostore import BasicScheduler, ObjectiveSignatureError

    with pytest.raises(ObjectiveSignatureError, match="'checkpoint_dir' entry"):
        HPOTuner(BasicScheduler(RandomSearcher(space, seed=0)), clash, verbose=False).run(1)


class _BadResume(TrialScheduler):
    searcher = RandomSearcher(SPACE, seed=0)

    def __init__(self) -> None:
        self.save_hyperparameters()

    def suggest_trial(self, trial: int) -> Suggestion | None:
        if trial == 0:
            return Suggestion({"x": 0.5})
        return Suggestion({"x": 0.5}, promoted_from=5, reason="no such trial", resume=True)

    def on_result(self, trial: int, error: float | None, resource: float | None) -> list[Any]:
        return []

    def restore(self, state: Any) -> None:
        pass

    def snapshot(self) -> dict[str, Any]:
        return {}


def test_a_resume_of_an_unknown_trial_is_refused() -> None:
    tuner = HPOTuner(_BadResume(), lambda x: x, verbose=False)
    with pytest.raises(InvalidArgument, match="resume trial 5, which is unknown"):
        tuner.run(3)
    assert tuner.state.n_finished == 1  # what ran is logged
    with pytest.raises(InvalidArgument, match="names the paused trial"):
        Suggestion({"x": 1}, payload={"rung": 1}, promoted_from=0, reason="r", resume=True)


def test_the_simulator_resumes_a_paused_trial_where_it_stopped() -> None:
    bench = Branin(max_resource=9)
    executor = SimulatedExecutor(3)
    scheduler = ASHAScheduler(RandomSearcher(bench.config_space, seed=3), eta=3, r_max=9)
    tuner = HPOTuner(scheduler, bench.curve_objective(), executor=executor, verbose=False)
    tuner.run(40)
    events = tuner.store.events("default").to_pylist()
    configs = {e["trial"]: json.loads(e["config"]) for e in events if e["kind"] == "suggest"}
    resumed = {e["trial"] for e in events if e["kind"] == "promote"}
    assert resumed
    for trial in resumed:
        mine = [e for e in events if e["trial"] == trial]
        reports = [e["resource"] for e in mine if e["kind"] == "report"]
        assert reports == [float(r) for r in range(1, int(max(reports)) + 1)]  # no epoch twice
        runtime = sum(e["runtime"] for e in mine if e["kind"] == "evaluate")
        assert runtime == pytest.approx(bench.cost(configs[trial], max(reports)))
