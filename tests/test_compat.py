"""Logs written by an earlier hpostore stay readable, replay to what they held, and resume.

Two generations of golden logs, both written by hpostore 0.1.0 (format version 1):

- ``compat/golden_v1.jsonl``: tail lines of one small random-search study.
- ``compat/golden_v1.duckdb.tar.gz`` and ``compat/golden_v1_parquet/``: the three studies of
  ``compat/golden_studies.py`` (random search with failures; promotion- and stopping-type
  ASHA with per-epoch reports), each with a Ctrl-C inside a trial, a SIGKILL inside a trial
  and a resumed session; between them every kind. ``golden_v1_crashed.*`` are the same
  studies cut off by the SIGKILL (a DuckDB file, its WAL and its unfolded tail, as the
  crash left them). ``compat/golden_v1_expected.json`` holds what each log held, read back by
  the version that wrote it.

The current code opens each, checks the events and the fold against the expectations,
resumes one more session and checks the fold against the SQL views. Draws of the searcher are
compared with the log's own values (with a float tolerance), never with pinned scipy floats.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpostore import Event, open_store, replay
from hpostore.log.events import decode_line, rows_to_table
from hpostore.study import replay_table

COMPAT = Path(__file__).parent / "compat"
GOLDEN = COMPAT / "golden_v1.jsonl"
EXPECTED: dict[str, dict[str, Any]] = json.loads((COMPAT / "golden_v1_expected.json").read_text())
#: the kinds whose (kind, trial, config, resource, error) a resumed study must reproduce
DECISIONS = ("suggest", "start", "report", "evaluate", "fail", "stop", "pause", "promote", "update")


def _golden_studies() -> Any:
    spec = importlib.util.spec_from_file_location("golden_studies", COMPAT / "golden_studies.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("golden_studies", module)
    spec.loader.exec_module(module)
    return module


def _duckdb(name: str) -> Callable[[Path], str]:
    def unpack(tmp: Path) -> str:
        with tarfile.open(COMPAT / f"{name}.tar.gz") as tar:
            tar.extractall(tmp, filter="data")
        return str(tmp / name)

    return unpack


def _parquet(name: str) -> Callable[[Path], str]:
    def copy(tmp: Path) -> str:
        shutil.copytree(COMPAT / name, tmp / name)
        return f"{tmp / name}/"

    return copy


SOURCES: dict[str, Callable[[Path], str]] = {
    "duckdb": _duckdb("golden_v1.duckdb"),
    "parquet": _parquet("golden_v1_parquet"),
    "crashed_duckdb": _duckdb("golden_v1_crashed.duckdb"),
    "crashed_parquet": _parquet("golden_v1_crashed_parquet"),
}


# --- comparing streams: exact, except floats that a library upgrade may move in the last bits
def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, (int, float))
            and isinstance(b, (int, float))
            and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return bool(a == b)


def _same_stream(got: list[list[Any]], want: list[list[Any]]) -> bool:
    def parsed(row: list[Any]) -> list[Any]:
        kind, trial, config, resource, error = row
        return [kind, trial, json.loads(config) if config else None, resource, error]

    return len(got) == len(want) and all(
        all(_close(a, b) for a, b in zip(parsed(g), parsed(w), strict=True))
        for g, w in zip(got, want, strict=True)
    )


def _stream(rows: list[dict[str, Any]], kinds: tuple[str, ...] | None = None) -> list[list[Any]]:
    skip = ("study", "session", "end")
    return [
        [r["kind"], r["trial"], r["config"], r["resource"], r["error"]]
        for r in rows
        if (r["kind"] in kinds if kinds else r["kind"] not in skip)
    ]


def _allowed_status(want: str, trial: int, stream: list[list[Any]]) -> set[str]:
    """The statuses the current vocabulary may give a trial 0.1.0 folded to ``want``.

    0.1.0 called a trial paused by promotion-type ASHA, or stopped and then returned,
    ``finished``, and one in flight when its process died ``running``; DESIGN.md's vocabulary
    may say ``paused``/``stopped``/``interrupted`` for them. Nothing else may change."""
    kinds = [row[0] for row in stream if row[1] == trial]
    allowed = {want}
    if want == "finished" and "pause" in kinds:
        last = max(i for i, k in enumerate(kinds) if k in ("start", "pause", "promote"))
        if kinds[last] == "pause":
            allowed.add("paused")
    if want == "finished" and "stop" in kinds:
        allowed.add("stopped")
    if want == "running":
        allowed.add("interrupted")
    return allowed


def _check_against_expected(source: str, store: Any) -> None:
    for study, want in EXPECTED[source].items():
        rows = store.events(study).to_pylist()
        assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
        assert len(rows) == want["n_events"]
        assert _stream(rows) == want["stream"]  # what the log holds: exactly
        assert [r["elapsed"] for r in rows] == want["elapsed"]
        sessions = [json.loads(r["payload"])["reason"] for r in rows if r["kind"] == "session"]
        ends = [json.loads(r["payload"])["reason"] for r in rows if r["kind"] == "end"]
        assert (sessions, ends) == (want["sessions"], want["ends"])
        state = replay_table(study, store.events(study))
        assert state.spec is not None and state.spec["format_version"] == 1
        assert len(state.trials) == want["n_trials"]
        assert state.n_failed == want["n_failed"]
        assert {str(t.trial): t.attempts for t in state.trials.values()} == want["attempts"]
        for t in state.trials.values():
            allowed = _allowed_status(want["status"][str(t.trial)], t.trial, want["stream"])
            assert t.status.value in allowed, (study, t.trial, t.status.value, allowed)
        assert state.incumbent == want["incumbent"]
        assert state.incumbent_error == want["incumbent_error"]
        assert list(state.trajectory) == want["trajectory"]


def test_golden_logs_cover_every_kind() -> None:
    kinds = {k for by_study in EXPECTED["duckdb"].values() for k in by_study["kinds"]}
    assert kinds == {
        "study", "session", "suggest", "start", "report", "evaluate", "fail", "interrupt",
        "stop", "promote", "pause", "update", "end",
    }  # fmt: skip
    resumed_with_config = [
        row
        for row in EXPECTED["duckdb"]["asha_promotion"]["stream"]
        if row[0] == "start" and row[2]
    ]
    assert resumed_with_config  # promotion-type ASHA: a start carrying the larger config
    for source in ("duckdb", "parquet"):
        for want in EXPECTED[source].values():
            assert want["sessions"] == ["new", "resume", "resume"]
            assert want["ends"] == ["interrupted", "completed"]  # Ctrl-C; SIGKILL has no end


@pytest.mark.parametrize("source", SOURCES)
def test_golden_log_reads_to_what_it_held(source: str, tmp_path: Path) -> None:
    path = SOURCES[source](tmp_path)
    with open_store(path, read_only=True) as store:
        assert sorted(store.studies()) == sorted(EXPECTED[source])
        _check_against_expected(source, store)


@pytest.mark.parametrize("source", SOURCES)
def test_golden_log_resumes_and_views_agree_with_the_fold(source: str, tmp_path: Path) -> None:
    """One more session on each study; the old prefix stays as it was; fold == views."""
    golden = _golden_studies()
    path = SOURCES[source](tmp_path)
    crashed = source.startswith("crashed")
    complete = EXPECTED[source.removeprefix("crashed_")]
    for study, want in EXPECTED[source].items():
        golden._calls.update(n=0, interrupt_at=0, kill_at=0)
        n = golden.N_RESULTS[study] + (0 if crashed else 3)
        with open_store(path) as store:
            tuner = golden.tuner(study, store)
            tuner.run(n)
            rows = store.events(study).to_pylist()
        assert _stream(rows[: want["n_events"]]) == want["stream"]  # the old prefix, untouched
        new = rows[want["n_events"] :]
        assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
        assert new[0]["kind"] == "session" and json.loads(new[0]["payload"])["reason"] == "resume"
        assert new[-1]["kind"] == "end" and json.loads(new[-1]["payload"])["reason"] == "completed"
        state = tuner.state
        assert len(state.evaluations) >= golden.N_RESULTS[study]
        if crashed:  # resume equivalence across versions: the uninterrupted study's decisions
            full = [row for row in complete[study]["stream"] if row[0] in DECISIONS]
            assert _same_stream(_stream(rows, DECISIONS), full)
            assert _close(state.incumbent_error, complete[study]["incumbent_error"])
        else:
            assert len(state.evaluations) > len(want["trajectory"])
        _check_views(path, study, state)


def _check_views(path: str, study: str, state: Any) -> None:
    import analysis

    con = analysis.views(path)
    studies = con.sql(
        "SELECT trials, finished, evaluations, failed, best_error FROM studies WHERE study = ?",
        params=[study],
    ).fetchall()
    trials, finished, evaluations, failed, best = studies[0]
    assert trials == len(state.trials)
    assert finished == sum(1 for t in state.trials.values() if t.status.value == "finished")
    assert evaluations == len(state.evaluations)
    assert failed == sum(1 for t in state.trials.values() if t.status.value == "failed")
    assert best == state.incumbent_error
    view = dict(
        con.sql(
            "SELECT trial, status FROM trials WHERE study = ? ORDER BY trial", params=[study]
        ).fetchall()
    )
    assert view == {t.trial: t.status.value for t in state.trials.values()}
    con.close()


STATUS_COLUMNS = ("suggested", "running", "paused", "finished", "stopped", "failed", "interrupted")


@pytest.mark.parametrize("source", SOURCES)
def test_fold_counts_as_the_studies_view_does(source: str, tmp_path: Path) -> None:
    """One vocabulary: per status, the fold's count is the ``studies`` view's column."""
    import analysis

    path = SOURCES[source](tmp_path)
    con = analysis.views(path)
    for study in EXPECTED[source]:
        with open_store(path, read_only=True) as store:
            state = replay_table(study, store.events(study))
        columns = ", ".join(STATUS_COLUMNS)
        [row] = con.sql(
            f"SELECT {columns}, evaluations FROM studies WHERE study = ?", params=[study]
        ).fetchall()
        counts = {status.value: n for status, n in state.status_counts().items()}
        assert dict(zip(STATUS_COLUMNS, row[:-1], strict=True)) == {
            c: counts.get(c, 0) for c in STATUS_COLUMNS
        }
        assert row[-1] == len(state.evaluations) == EXPECTED[source][study]["kinds"]["evaluate"]
    con.close()


def test_golden_v1_log_replays_to_its_known_state() -> None:
    events = [
        Event.from_row(decode_line(line)) for line in GOLDEN.read_bytes().splitlines(keepends=True)
    ]
    state = replay("golden", events)
    assert state.spec is not None and state.spec["format_version"] == 1 and state.spec["seed"] == 42
    assert state.incumbent == {"learning_rate": 0.1, "batch_size": 128, "act": "relu"}
    assert state.incumbent_error == 0.05
    assert (len(state.trials), state.n_failed) == (7, 1)
    assert sum(1 for t in state.trials.values() if t.status.value == "finished") == 6
    assert state.finished_elapsed == [1.5, 3.0, 4.5, 6.0, 7.5, 10.5]
    assert [t.status.value for t in state.trials.values()].count("failed") == 1
    assert state.last_kind == "end" and not state.session_open
    table_state = replay_table("golden", rows_to_table([e.to_row() for e in events]))
    assert table_state.summary() == state.summary()


@pytest.mark.parametrize("source", ["duckdb", "parquet"])
def test_random_searcher_redraws_the_golden_configs(source: str) -> None:
    """A study started by 0.1.0 resumes identically under this version: the seeded searcher
    draws the configs the golden log holds (floats within 1e-9, ints and choices exactly)."""
    golden = _golden_studies()
    searcher = golden.scheduler("random").searcher
    logged = [
        json.loads(row[2]) for row in EXPECTED[source]["random"]["stream"] if row[0] == "suggest"
    ]
    drawn = [searcher.sample_configuration() for _ in logged]
    assert len(logged) == 17
    for trial, (got, want) in enumerate(zip(drawn, logged, strict=True)):
        assert _close(dict(got), want), (trial, got, want)


def test_random_searcher_draws_stay_within_a_float_tolerance_across_versions() -> None:
    """Draws of every kind of domain (closed-form and numeric inverse CDFs) stay what 0.1.0
    drew, within 1e-9 relative (a scipy upgrade may move the last bits, not the values)."""
    from scipy import stats

    from hpostore import RandomSearcher

    space = {
        "lr": stats.loguniform(1e-3, 1),
        "bs": stats.randint(32, 256),
        "u": stats.uniform(-1, 2),
        "z": stats.norm(0, 1),
        "g": stats.gamma(2.0),
        "act": ["relu", "tanh"],
    }
    searcher = RandomSearcher(space, seed=0)
    first, second = searcher.sample_configuration(), searcher.sample_configuration()
    assert _close(
        dict(first),
        {
            "lr": 0.1904445428739841,
            "bs": 246,
            "u": -0.9377575839113167,
            "z": 0.8287902157136052,
            "g": 3.253159633596354,
            "act": "relu",
        },
    )
    assert _close(
        dict(second),
        {
            "lr": 0.016009341872900006,
            "bs": 133,
            "u": -0.06396638138070132,
            "z": -0.44227815146220634,
            "g": 1.3196387440808428,
            "act": "relu",
        },
    )
