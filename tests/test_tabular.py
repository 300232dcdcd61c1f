"""A logged study as a benchmark: tabulate real per-epoch reports, look up, store, replay."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from hpostore import (
    ASHAScheduler,
    BasicScheduler,
    HPOTuner,
    InvalidArgument,
    RandomSearcher,
    open_store,
)
from hpostore.simulation import SimulatedClock
from hpostore.tabular import TabularBenchmark, TabularRow

EPOCHS = 4
SPACE: dict[str, Any] = {
    "lr": stats.loguniform(1e-4, 1.0),
    "width": stats.randint(1, 9),
    "act": ["relu", "tanh"],
}


def curve_error(lr: float, width: int, act: str, epoch: int) -> float:
    """A learning curve per config: better with epochs, best near lr = 1e-2, width 6, relu."""
    return (math.log10(lr) + 2) ** 2 / 4 + abs(width - 6) / 10 + (act == "tanh") / 5 + 1 / epoch


def epoch_seconds(width: int, epoch: int) -> float:
    """Seconds of one epoch: dyadic, so sums and differences of study time stay exact."""
    return 0.25 * width + 0.125 * epoch


def make_objective(clock: SimulatedClock, interrupt_call: int = 0) -> Callable[..., float]:
    """An objective that trains per epoch, advancing ``clock``, and reports each epoch; its
    ``interrupt_call``-th call (1-based; 0: none) is cut by a KeyboardInterrupt after 2 epochs."""
    calls = [0]

    def objective(
        lr: float, width: int, act: str, max_epochs: int, report: Callable[[float, float], bool]
    ) -> float:
        calls[0] += 1
        error = math.inf
        for epoch in range(1, int(max_epochs) + 1):
            clock.advance(epoch_seconds(width, epoch))
            error = curve_error(lr, width, act, epoch)
            if report(epoch, error):
                break
            if calls[0] == interrupt_call and epoch == 2:
                raise KeyboardInterrupt
        return error

    return objective


def random_study(store: Any, study: str, n: int = 12, seed: int = 0) -> SimulatedClock:
    clock = SimulatedClock()
    searcher = RandomSearcher({**SPACE, "max_epochs": EPOCHS}, seed=seed)
    HPOTuner(BasicScheduler(searcher), make_objective(clock), store=store, study=study,
             clock=clock, verbose=False).run(n)  # fmt: skip
    return clock


def expected(config: dict[str, Any], n: int = EPOCHS) -> tuple[list[float], list[float]]:
    lr, width, act = config["lr"], config["width"], config["act"]
    return (
        [curve_error(lr, width, act, e) for e in range(1, n + 1)],
        [epoch_seconds(width, e) for e in range(1, n + 1)],
    )


def test_a_logged_study_tabulates_its_curves_and_epoch_seconds_as_logged(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb"
    with open_store(str(path)) as store:
        clock = random_study(store, "sweep")
        table = TabularBenchmark.from_study(store, "sweep")
        configs = [t.config for t in store_trials(store, "sweep")]
    assert table.name == "sweep" and table.max_resource == EPOCHS
    assert [r.config for r in table.rows] == [
        {k: v for k, v in c.items() if k != "max_epochs"} for c in configs
    ]
    for row in table.rows:
        errors, seconds = expected(row.config)
        assert list(row.errors) == errors and list(row.seconds) == seconds  # exact
    assert sum(sum(r.seconds) for r in table.rows) == clock()
    assert sorted(table.config_space) == ["act", "lr", "width"]  # the resource is dropped
    finals = [r.errors[-1] for r in table.rows]
    assert table.optimum == min(finals) and table.reference_error == float(np.median(finals))
    # a path opens the store read-only; the same table comes out
    again = TabularBenchmark.from_study(str(path), "sweep", name="lenet-like")
    assert again.rows == table.rows and again.name == "lenet-like"
    # the Benchmark interface answers a logged config with its own curve
    row = table.rows[3]
    assert table.learning_curve(row.config) == expected(row.config)
    assert table.learning_curve(row.config, 2) == expected(row.config, 2)
    assert table.error(row.config, 3) == row.errors[2]
    assert table.cost(row.config) == sum(row.seconds)
    assert 0 < table.normalized_regret(table.optimum + 0.01) < 1


def test_a_parquet_log_directory_tabulates_alike(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "log") + "/") as store:
        random_study(store, "sweep", n=5)
    table = TabularBenchmark.from_study(tmp_path / "log", "sweep")
    assert len(table.rows) == 5
    for row in table.rows:
        assert (list(row.errors), list(row.seconds)) == expected(row.config)


def store_trials(store: Any, study: str) -> list[Any]:
    from hpostore.log.fold import replay_table

    state = replay_table(study, store.events(study))
    return [state.trials[t] for t in sorted(state.trials)]


def test_an_interrupted_trial_counts_only_its_last_attempt(tmp_path: Path) -> None:
    clock = SimulatedClock()

    def tuner(store: Any, objective: Callable[..., float]) -> HPOTuner:
        searcher = RandomSearcher({**SPACE, "max_epochs": EPOCHS}, seed=1)
        return HPOTuner(BasicScheduler(searcher), objective, store=store, study="s",
                        clock=clock, verbose=False)  # fmt: skip

    with open_store(str(tmp_path / "runs.duckdb")) as store:
        with pytest.raises(KeyboardInterrupt):  # the third trial is cut after 2 epochs
            tuner(store, make_objective(clock, interrupt_call=3)).run(5)
        clock.advance(100.0)  # downtime between the sessions (not study time)
        tuner(store, make_objective(clock)).run(5)  # resumes: trial 2 runs again, attempt 2
        events = store.events("s").to_pylist()
        table = TabularBenchmark.from_study(store, "s")
    starts = [(e["trial"], json.loads(e["payload"])["attempt"]) for e in events
              if e["kind"] == "start"]  # fmt: skip
    assert (2, 1) in starts and (2, 2) in starts
    reports = [e["resource"] for e in events if e["kind"] == "report" and e["trial"] == 2]
    assert reports == [1, 2, 1, 2, 3, 4]  # both attempts are in the log
    assert len(table.rows) == 5
    for row in table.rows:  # each curve and its epoch times as one clean attempt
        assert (list(row.errors), list(row.seconds)) == expected(row.config)


def test_a_trial_resumed_from_its_checkpoint_continues_its_curve() -> None:
    # a log written by hand: trial 0 pauses after epoch 1 and is resumed (a promotion with a
    # checkpoint: epochs 2 and 3 follow); trial 1 crashes after epoch 2 and starts over
    from hpostore import ConfigSpace

    store = open_store(":memory:")
    spec = {"format_version": 1, "space": {**ConfigSpace(SPACE).to_json(), "max_epochs": {
        "type": "constant", "value": 3}}}  # fmt: skip
    a = {"lr": 0.01, "width": 2, "act": "relu", "max_epochs": 3}
    b = {"lr": 0.1, "width": 5, "act": "tanh", "max_epochs": 3}
    log = [
        ("study", None, None, None, None, 0.0, json.dumps(spec)),
        ("session", None, None, None, None, 0.0, None),
        ("suggest", 0, json.dumps({**a, "max_epochs": 1}), None, None, 0.0, None),
        ("start", 0, None, None, None, 0.0, '{"attempt":1}'),
        ("report", 0, None, 1.0, 0.9, 2.0, None),
        ("evaluate", 0, None, 1.0, 0.9, 2.5, None),
        ("suggest", 1, json.dumps(b), None, None, 2.5, None),
        ("start", 1, None, None, None, 3.0, '{"attempt":1}'),
        ("report", 1, None, 1.0, 0.8, 4.0, None),
        ("report", 1, None, 2.0, 0.7, 5.5, None),
        ("session", None, None, None, None, 6.0, None),  # a crash, then a resume
        ("start", 1, None, None, None, 6.0, '{"attempt":2}'),
        ("report", 1, None, 1.0, 0.8, 7.0, None),
        ("report", 1, None, 2.0, 0.7, 7.5, None),
        ("report", 1, None, 3.0, 0.6, 8.0, None),
        ("evaluate", 1, None, 3.0, 0.6, 8.0, None),
        ("start", 0, json.dumps(a), None, None, 10.0, '{"attempt":2}'),  # resumed
        ("report", 0, None, 2.0, 0.5, 13.0, None),
        ("report", 0, None, 3.0, 0.25, 14.0, None),
        ("evaluate", 0, None, 3.0, 0.25, 14.0, None),
    ]
    for kind, trial, config, resource, error, elapsed, payload in log:
        store.append("s", kind, elapsed=elapsed, session="x", trial=trial, config=config,
                     resource=resource, error=error, payload=payload)  # fmt: skip
    table = TabularBenchmark.from_study(store, "s")
    strip = {k: v for k, v in a.items() if k != "max_epochs"}
    assert table.rows[0] == TabularRow(strip, (0.9, 0.5, 0.25), (2.0, 3.0, 1.0))
    assert table.rows[1].errors == (0.8, 0.7, 0.6) and table.rows[1].seconds == (1.0, 0.5, 0.5)
    assert table.max_resource == 3 and table.optimum == 0.25


def test_nearest_configuration_in_the_unit_cube() -> None:
    rows = [
        TabularRow({"lr": 1e-3, "width": 2, "act": "relu"}, (0.9, 0.5), (1.0, 1.0)),
        TabularRow({"lr": 1e-1, "width": 4, "act": "relu"}, (0.8, 0.4), (2.0, 2.0)),
        TabularRow({"lr": 1e-1, "width": 4, "act": "tanh"}, (0.7, 0.3), (3.0, 3.0)),
    ]
    table = TabularBenchmark(rows, SPACE, name="toy")

    def nearest(**config: Any) -> int:
        return table.nearest({"lr": 1e-1, "width": 4, "act": "relu", **config})

    # log scale: 0.02 is nearer 0.1 than 0.001 in decades, though not linearly
    assert nearest(lr=0.02, width=3) == 1
    assert nearest(lr=0.005, width=3) == 0
    # a category mismatch costs 1: more than 3 decades of lr (0.75 of the cube) and width
    assert nearest(lr=1.0, width=8, act="relu") == 1
    assert nearest(lr=1e-1, width=4, act="tanh") == 2
    # ties (width 3 is equally far from 2 and 4 at equal lr): the earlier row wins
    tie = TabularBenchmark(
        [
            TabularRow({"lr": 1e-2, "width": 4, "act": "relu"}, (0.1,), (1.0,)),
            TabularRow({"lr": 1e-2, "width": 2, "act": "relu"}, (0.2,), (1.0,)),
        ],
        SPACE,
    )
    assert tie.nearest({"lr": 1e-2, "width": 3, "act": "relu"}) == 0
    flipped = TabularBenchmark(list(reversed(tie.rows)), SPACE)
    assert flipped.nearest({"lr": 1e-2, "width": 3, "act": "relu"}) == 0
    # the answer: the nearest row's curve, cut to the resource; constants and extra keys ignored
    assert table.learning_curve({"lr": 0.02, "width": 3, "act": "relu", "max_epochs": 2}, 1) == (
        [0.8],
        [2.0],
    )
    # a brute-force check of the fast path on a few hundred random rows
    rng = np.random.default_rng(0)
    big = TabularBenchmark([TabularRow(random_config(rng), (float(i),), (1.0,)) for i in range(300)],
                           SPACE)  # fmt: skip
    points = np.array([point(r.config) for r in big.rows])
    queries = [random_config(rng) for _ in range(300)]
    for q in queries:
        d2 = ((points - point(q)) ** 2).sum(axis=1)
        assert big.nearest(q) == int(np.argmin(d2))
    start = time.perf_counter()
    for q in queries:
        big._cache.clear()
        big.learning_curve(q)
    per_lookup = (time.perf_counter() - start) / len(queries)
    assert per_lookup < 1e-3  # ~20-40 us on a busy CPU; the bound only catches a slow path


def random_config(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "lr": float(10 ** rng.uniform(-4, 0)),
        "width": int(rng.integers(1, 9)),
        "act": ["relu", "tanh"][int(rng.integers(2))],
    }


def point(config: dict[str, Any]) -> list[float]:
    """The unit-cube point of the module doc, written out: log lr, width bin centre, one-hot."""
    act = [config["act"] == "relu", config["act"] == "tanh"]
    return [
        (math.log(config["lr"]) - math.log(1e-4)) / (-math.log(1e-4)),
        (config["width"] - 1 + 0.5) / 8,
        *(math.sqrt(0.5) * a for a in act),
    ]


def test_partial_curves_are_dropped_or_kept_and_looked_up_where_they_reach() -> None:
    rows = [
        TabularRow({"lr": 1e-3, "width": 2, "act": "relu"}, (0.9, 0.5), (1.0, 1.0)),
        TabularRow({"lr": 1e-1, "width": 4, "act": "relu"}, (0.8, 0.4, 0.3, 0.2), (2.0,) * 4),
    ]
    table = TabularBenchmark(rows, SPACE)
    assert table.max_resource == 4 and table.optimum == 0.2 == table.reference_error
    near_short = {"lr": 1e-3, "width": 2, "act": "relu"}
    assert table.learning_curve(near_short, 2) == ([0.9, 0.5], [1.0, 1.0])
    assert table.learning_curve(near_short, 3) == ([0.8, 0.4, 0.3], [2.0] * 3)
    assert table.error(near_short) == 0.2


def asha_study(store: Any, study: str, type: str, n: int = 16) -> None:
    clock = SimulatedClock()
    asha = ASHAScheduler(RandomSearcher(SPACE, seed=3), eta=2, r_min=1, r_max=EPOCHS, type=type)
    HPOTuner(asha, make_objective(clock), store=store, study=study, clock=clock,
             verbose=False).run(n)  # fmt: skip


def test_stopped_and_promoted_trials(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "runs.duckdb")) as store:
        asha_study(store, "stopping", "stopping")
        asha_study(store, "promotion", "promotion")
        trials = store_trials(store, "stopping")
        n_full = sum(len(t.curve) == EPOCHS for t in trials)
        assert 0 < n_full < len(trials)  # some were stopped early
        full = TabularBenchmark.from_study(store, "stopping")
        assert len(full.rows) == n_full and all(r.epochs == EPOCHS for r in full.rows)
        kept = TabularBenchmark.from_study(store, "stopping", keep_partial=True)
        assert len(kept.rows) == len(trials) and kept.max_resource == EPOCHS
        short = min(kept.rows, key=lambda r: r.epochs)
        assert kept.nearest(short.config, short.epochs) == kept.rows.index(short)
        assert kept.rows[kept.nearest(short.config, EPOCHS)].epochs == EPOCHS
        cut = TabularBenchmark.from_study(store, "stopping", max_resource=2, keep_partial=True)
        assert cut.max_resource == 2 and all(r.epochs <= 2 for r in cut.rows)
        # promotion runs a config again with more epochs (as a new trial, or resuming the
        # paused one): one row per config, its longest curve, retrained from epoch 1
        promoted = TabularBenchmark.from_study(store, "promotion", keep_partial=True)
        events = store.events("promotion").to_pylist()
    epochs: dict[str, int] = {}
    for e in events:
        if e["kind"] == "report":
            key = json.dumps(trial_configs(events)[e["trial"]], sort_keys=True)
            epochs[key] = max(epochs.get(key, 0), int(e["resource"]))
    assert len(promoted.rows) == len(epochs) and max(epochs.values()) == EPOCHS
    for row in promoted.rows:
        n = epochs[json.dumps(row.config, sort_keys=True)]
        assert (list(row.errors), list(row.seconds)) == expected(row.config, n)


def trial_configs(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Each trial's config without the resource, from its suggest event."""
    return {
        e["trial"]: {k: v for k, v in json.loads(e["config"]).items() if k != "max_epochs"}
        for e in events
        if e["kind"] == "suggest"
    }


def test_parquet_round_trip_is_exact(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "runs.duckdb")) as store:
        random_study(store, "sweep", n=20)
        asha_study(store, "stopping", "stopping")
        tables = [
            TabularBenchmark.from_study(store, "sweep"),
            TabularBenchmark.from_study(store, "stopping", keep_partial=True),
        ]
    for k, table in enumerate(tables):
        path = tmp_path / f"table{k}.parquet"
        table.to_parquet(path)
        back = TabularBenchmark.from_parquet(path)
        assert back.rows == table.rows
        assert (back.name, back.max_resource, back.optimum, back.reference_error) == (
            table.name, table.max_resource, table.optimum, table.reference_error,
        )  # fmt: skip
        assert back.space.to_json() == table.space.to_json()
        rng = np.random.default_rng(k)
        for _ in range(50):
            q = random_config(rng)
            assert back.learning_curve(q, 3) == table.learning_curve(q, 3)
        raw = pq.read_table(path)  # the documented layout: one row per (config, epoch)
        assert raw.schema.names == ["config", "epoch", "error", "seconds"]
        assert [str(t) for t in raw.schema.types] == ["string", "int64", "double", "double"]
        assert raw.num_rows == sum(r.epochs for r in table.rows)
        meta = json.loads(raw.schema.metadata[b"hpostore.tabular"])
        assert meta["name"] == table.name and meta["max_resource"] == table.max_resource
        assert json.loads(raw.column("config")[0].as_py()) == table.rows[0].config


def replay_asha(table: TabularBenchmark, seed: int) -> list[tuple[Any, ...]]:
    clock = SimulatedClock()
    asha = ASHAScheduler(RandomSearcher(table.config_space, seed=seed), eta=3, r_min=1,
                         r_max=table.max_resource)  # fmt: skip
    with HPOTuner(asha, table.objective(clock), clock=clock, verbose=False) as tuner:
        tuner.run(30)
        rows = tuner.store.events("default").to_pylist()
        assert tuner.cumulative_runtime[-1] == clock()
    return [(e["kind"], e["trial"], e["config"], e["error"], e["runtime"], e["elapsed"])
            for e in rows if e["kind"] not in ("session", "study", "end")]  # fmt: skip


def test_the_simulator_replays_asha_on_the_table_deterministically(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "runs.duckdb")) as store:
        random_study(store, "sweep", n=20)
        table = TabularBenchmark.from_study(store, "sweep")
    first = replay_asha(table, seed=5)
    assert replay_asha(table, seed=5) == first
    assert replay_asha(table, seed=6) != first
    evaluated = [e for e in first if e[0] == "evaluate"]
    assert len(evaluated) >= 30  # one per finished trial (and per rung of a resumed one)
    finals = {r.errors[-1] for r in table.rows}
    configs: dict[int, dict[str, Any]] = {}  # the latest config of each trial (a promotion
    for kind, trial, config, error, runtime, _ in first:  # may resume it with more epochs)
        if kind in ("suggest", "start") and config is not None:
            configs[trial] = json.loads(config)
        if kind == "evaluate":  # every result is a logged one
            c = dict(configs[trial])
            r = int(c.pop("max_epochs"))
            row = table.rows[table.nearest(c)]
            assert error == row.errors[r - 1] and runtime == sum(row.seconds[:r])
    assert any(e[3] in finals for e in evaluated)  # some trial was promoted to full fidelity


def test_bad_input_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb"
    with open_store(str(path)) as store:
        HPOTuner(BasicScheduler(RandomSearcher({"x": stats.uniform()}, seed=0)),
                 lambda x: x, store=store, study="no-reports", verbose=False).run(3)  # fmt: skip
        with pytest.raises(InvalidArgument, match=r"per-epoch `report` events.*3 trials, 0 with"):
            TabularBenchmark.from_study(store, "no-reports")
        with pytest.raises(InvalidArgument, match=r"no study 'nope'.*'no-reports'"):
            TabularBenchmark.from_study(store, "nope")
        asha_study(store, "stopping", "stopping")
        with pytest.raises(InvalidArgument, match="no curve reaches 9 epochs.*keep_partial"):
            TabularBenchmark.from_study(store, "stopping", max_resource=9)
        with pytest.raises(InvalidArgument, match="max_resource must be a positive int"):
            TabularBenchmark.from_study(store, "stopping", max_resource=0)
        table = TabularBenchmark.from_study(store, "stopping")
    with pytest.raises(InvalidArgument, match="does not exist"):
        TabularBenchmark.from_study(tmp_path / "missing.duckdb", "s")
    with pytest.raises(InvalidArgument, match=r"lacks \['width'\]"):
        table.learning_curve({"lr": 0.1, "act": "relu"})
    with pytest.raises(InvalidArgument, match="cannot place config"):
        table.learning_curve({"lr": 0.1, "width": 3, "act": "gelu"})
    with pytest.raises(InvalidArgument, match="resource must be"):
        table.learning_curve({"lr": 0.1, "width": 3, "act": "relu"}, 0)
    with pytest.raises(InvalidArgument, match="at least one row"):
        TabularBenchmark([], SPACE)
    with pytest.raises(InvalidArgument, match="one error and one epoch time per epoch"):
        TabularBenchmark([TabularRow({"lr": 0.1, "width": 2, "act": "relu"}, (0.5,), ())], SPACE)
    with pytest.raises(InvalidArgument, match="does not fit the config space"):
        TabularBenchmark([TabularRow({"lr": 0.1, "act": "relu"}, (0.5,), (1.0,))], SPACE)
    # Parquet: a missing file, not Parquet, Parquet but not a table, wrong columns
    with pytest.raises(InvalidArgument, match="does not exist"):
        TabularBenchmark.from_parquet(tmp_path / "missing.parquet")
    (tmp_path / "text.parquet").write_text("not parquet")
    with pytest.raises(InvalidArgument, match="not a readable Parquet file"):
        TabularBenchmark.from_parquet(tmp_path / "text.parquet")
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "plain.parquet")
    with pytest.raises(InvalidArgument, match="not a tabular benchmark: its schema metadata"):
        TabularBenchmark.from_parquet(tmp_path / "plain.parquet")
    table.to_parquet(tmp_path / "good.parquet")
    good = pq.read_table(tmp_path / "good.parquet")
    pq.write_table(good.drop_columns(["seconds"]), tmp_path / "cols.parquet")
    with pytest.raises(InvalidArgument, match=r"these differ: \{'seconds': '\(absent\)'\}"):
        TabularBenchmark.from_parquet(tmp_path / "cols.parquet")
    pq.write_table(good.slice(1), tmp_path / "gap.parquet")  # the first config loses epoch 1
    with pytest.raises(InvalidArgument, match="each epoch 1, 2, ..., n once"):
        TabularBenchmark.from_parquet(tmp_path / "gap.parquet")


def test_make_lenet_table_tabulates_a_store_and_replays_without_keras(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "make_lenet_table.py"
    spec = importlib.util.spec_from_file_location("make_lenet_table", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    store, out = str(tmp_path / "runs.duckdb"), str(tmp_path / "table.parquet")
    with open_store(store) as log:
        random_study(log, "sweep", n=20)
    argv = ["--from-store", store, "--study", "sweep", "--out", out, "--replay",
            "--replay-seeds", "2", "--replay-budget", "10"]  # fmt: skip
    assert module.main(argv) == 0
    text = capsys.readouterr().out
    assert "table 'sweep': 20 configs (0 partial), 4 epochs" in text
    assert "replay on 'sweep'" in text and "\n  asha " in text and "\n  random " in text
    assert (
        TabularBenchmark.from_parquet(out).rows == TabularBenchmark.from_study(store, "sweep").rows
    )
    assert module.main(["--table", out]) == 0
    assert module.main(["--table", str(tmp_path / "missing.parquet")]) == 1
    assert "does not exist" in capsys.readouterr().err
