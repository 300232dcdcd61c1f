"""One vocabulary: the fold, the SQL views and the CLI give every trial the same status and
every study the same counts and incumbent, on DuckDB and Parquet, for generated logs with
every kind and for every crash prefix of them (the log cut anywhere, then a ``session``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analysis
from hpostore import open_store
from hpostore.cli import _import_duckdb, main
from hpostore.errors import CorruptLogError
from hpostore.log.events import COLUMNS, Kind, Row, rows_to_table
from hpostore.log.fold import StudyState, replay_table
from hpostore.log.trial import TrialStatus
from hpostore.store.parquet import ParquetStore

SPEC = {"format_version": 1, "metric": "error", "mode": "min", "seed": 0, "scheduler": None}
Ev = dict[str, Any]
ERRORS = (0.1, 0.2, 0.3, 0.5)  # few values: ties for the incumbent happen


def _ev(kind: Kind, session: str, **fields: Any) -> Ev:
    return {"kind": kind.value, "session": session, **fields}


@st.composite
def logs(draw: st.DrawFn, max_steps: int = 40) -> list[Ev]:
    """A valid log: what a tuner with any scheduler could write, crashes and resumes included.

    The generator keeps its own minimal model of each trial (running, failed, has a result),
    independent of the fold, to know which events are valid next.
    """
    n_session = 1
    s = "s1"
    events = [_ev(Kind.STUDY, s, payload=json.dumps(SPEC)), _ev(Kind.SESSION, s)]
    running: set[int] = set()
    failed: set[int] = set()
    with_result: set[int] = set()
    started: set[int] = set()
    n_trials = 0
    for _ in range(draw(st.integers(0, max_steps))):
        suggested = set(range(n_trials))
        can_start = sorted(suggested - running - failed)
        actions = ["suggest", "crash", "end_resume"]
        actions += ["start"] * bool(can_start)
        actions += ["report", "evaluate", "evaluate", "fail", "interrupt"] * bool(running)
        actions += ["decide", "decide"] * bool(started)
        actions += ["update"] * bool(with_result)
        action = draw(st.sampled_from(actions))
        if action == "suggest":
            config = json.dumps({"x": draw(st.integers(0, 9)), "r": 1})
            events.append(_ev(Kind.SUGGEST, s, trial=n_trials, config=config))
            n_trials += 1
        elif action == "start":
            t = draw(st.sampled_from(can_start))
            config = None  # a resumed start (more resource) carries the config it runs with
            if t in with_result or draw(st.booleans()):
                config = json.dumps({"x": t, "r": draw(st.integers(2, 9))})
            events.append(_ev(Kind.START, s, trial=t, config=config, worker="w"))
            running.add(t)
            started.add(t)
        elif action in ("report", "evaluate", "fail", "interrupt"):
            t = draw(st.sampled_from(sorted(running)))
            error = draw(st.sampled_from(ERRORS))
            if action == "report":
                events.append(_ev(Kind.REPORT, s, trial=t, resource=1.0, error=error))
                continue
            running.discard(t)
            if action == "evaluate":
                events.append(_ev(Kind.EVALUATE, s, trial=t, error=error, runtime=1.0))
                with_result.add(t)
            elif action == "fail":
                events.append(_ev(Kind.FAIL, s, trial=t, payload='{"message":"boom"}'))
                failed.add(t)
            else:
                events.append(_ev(Kind.INTERRUPT, s, trial=t, payload='{"reason":"x"}'))
        elif action == "decide":
            t = draw(st.sampled_from(sorted(started)))
            kind = draw(st.sampled_from([Kind.STOP, Kind.PAUSE, Kind.PROMOTE]))
            events.append(_ev(kind, s, trial=t, payload='{"reason":"r"}'))
        elif action == "update":
            events.append(_ev(Kind.UPDATE, s, trial=draw(st.sampled_from(sorted(with_result)))))
        else:  # a crash (no end) or a clean end, then a resumed session
            if action == "end_resume":
                events.append(_ev(Kind.END, s, payload='{"reason":"completed"}'))
            n_session += 1
            s = f"s{n_session}"
            events.append(_ev(Kind.SESSION, s, payload='{"reason":"resume"}'))
            running.clear()
    return events


def crash_prefixes(events: list[Ev]) -> dict[str, list[Ev]]:
    """The whole log, and each prefix of it followed by the ``session`` of a resume."""
    out = {"whole": events}
    for k in range(2, len(events) + 1):
        out[f"cut{k:03d}"] = events[:k] + [_ev(Kind.SESSION, "resumed")]
    return out


def _rows(study: str, events: list[Ev]) -> list[Row]:
    return [
        (study, seq, 0, float(seq - 1), e["session"], e["kind"], e.get("trial"), e.get("config"),
         e.get("resource"), e.get("error"), e.get("runtime"), e.get("worker"), e.get("payload"))
        for seq, e in enumerate(events, 1)
    ]  # fmt: skip


def _write(path: str, studies: dict[str, list[Ev]]) -> None:
    """Through the write path: ``append`` one event at a time, then commit."""
    with open_store(path, durability="batched") as store:
        for study, events in studies.items():
            for row in _rows(study, events):
                fields: dict[str, Any] = dict(zip(COLUMNS[6:], row[6:]))
                store.append(study, row[5], elapsed=row[3], session=row[4], **fields)
        store.flush()


def _import(path: str, studies: dict[str, list[Ev]]) -> None:
    """Many studies at once, as ``hpostore export`` writes them (one batch per store)."""
    table = rows_to_table([r for study, evs in studies.items() for r in _rows(study, evs)])
    if path.endswith("/"):
        store = ParquetStore(path)
        try:
            store.import_events(table)
        finally:
            store.close()
    else:
        _import_duckdb(path, table)


def _fold(study: str, events: list[Ev]) -> StudyState:
    state = StudyState(study)
    for row in _rows(study, events):
        state.apply_row(row)
    return state


COUNTS = ("finished", "paused", "stopped", "failed", "interrupted", "running", "suggested")


def _expected(state: StudyState) -> dict[str, Any]:
    counts = state.status_counts()
    return {
        "trials": len(state.trials),
        "evaluations": len(state.evaluations),
        **{name: counts[TrialStatus(name)] for name in COUNTS},
        "best_error": state.incumbent_error,
        "incumbent_trial": state.incumbent_trial,
        "statuses": {t.trial: t.status.value for t in state.trials.values()},
    }


def _from_views(source: str) -> dict[str, dict[str, Any]]:
    con = analysis.views(source)
    cols = ", ".join(("study", "trials", "evaluations", *COUNTS, "best_error", "incumbent_trial"))
    out: dict[str, dict[str, Any]] = {}
    for row in con.execute(f"SELECT {cols} FROM studies").fetchall():
        out[row[0]] = {**dict(zip(cols.split(", ")[1:], row[1:])), "statuses": {}}
    for study, trial, status in con.execute("SELECT study, trial, status FROM trials").fetchall():
        out[study]["statuses"][trial] = status
    for study, trial, status in con.execute("SELECT * FROM trial_status").fetchall():
        assert out[study]["statuses"][trial] == status, (study, trial)
    # the anytime view ends at the incumbent
    for study, best in con.execute(
        "SELECT study, arg_max(best_error, seq) FROM anytime GROUP BY study"
    ).fetchall():
        assert best == out[study]["best_error"], study
    con.close()
    return out


# each example writes ~30 studies (the log and its crash prefixes) to two stores: few examples
@settings(max_examples=12, suppress_health_check=[HealthCheck.too_slow])
@given(events=logs(max_steps=30))
def test_fold_equals_views_on_duckdb_and_parquet_for_every_crash_prefix(
    events: list[Ev], tmp_path_factory: pytest.TempPathFactory
) -> None:
    studies = crash_prefixes(events)
    want = {name: _expected(_fold(name, evs)) for name, evs in studies.items()}
    tmp = tmp_path_factory.mktemp("logs")
    for path in (os.fspath(tmp / "runs.duckdb"), os.fspath(tmp / "runs") + "/"):
        _import(path, studies)
        got = _from_views(path.rstrip("/"))
        assert got == want, path
        with open_store(path, read_only=True) as store:  # the fold over what the store reads
            for name in ("whole", f"cut{len(events):03d}"):
                if name in studies:
                    state = replay_table(name, store.events(name))
                    assert _expected(state) == want[name]


@settings(max_examples=200)
@given(events=logs(max_steps=60))
def test_generated_logs_fold_and_a_result_means_finished_paused_or_stopped(
    events: list[Ev],
) -> None:
    state = _fold("s", events)
    for t in state.trials.values():
        assert t.status in TrialStatus
        assert (t.status in (TrialStatus.FINISHED, TrialStatus.PAUSED, TrialStatus.STOPPED)) == (
            t.has_result
        )
    assert sum(state.status_counts().values()) == len(state.trials)


# --- the reproducers of issue 9, item 2 ------------------------------------------------------
def _stopped_then_crashed() -> list[Ev]:
    """start -> report -> stop -> (SIGKILL) -> session: the trial was in flight."""
    return [
        _ev(Kind.STUDY, "a", payload=json.dumps(SPEC)),
        _ev(Kind.SESSION, "a"),
        _ev(Kind.SUGGEST, "a", trial=0, config='{"x":1}'),
        _ev(Kind.START, "a", trial=0),
        _ev(Kind.REPORT, "a", trial=0, resource=1.0, error=0.5),
        _ev(Kind.STOP, "a", trial=0, payload='{"reason":"worse than the median"}'),
        _ev(Kind.SESSION, "b", payload='{"reason":"resume"}'),
    ]


def _ctrl_c_after_promotion() -> list[Ev]:
    """Two trials paused at a rung, both promoted and resumed, then Ctrl-C: both have a result
    from their first rung, yet they are interrupted (re-run on resume), not finished."""
    events = [_ev(Kind.STUDY, "a", payload=json.dumps(SPEC)), _ev(Kind.SESSION, "a")]
    for t in range(3):
        events += [
            _ev(Kind.SUGGEST, "a", trial=t, config=json.dumps({"x": t, "r": 1})),
            _ev(Kind.START, "a", trial=t),
            _ev(Kind.EVALUATE, "a", trial=t, error=0.3 - 0.1 * t, resource=1.0),
            _ev(Kind.PAUSE, "a", trial=t, payload='{"reason":"rung 1"}'),
            _ev(Kind.UPDATE, "a", trial=t),
        ]
    for t in (1, 2):
        events += [
            _ev(Kind.PROMOTE, "a", trial=t, payload='{"reason":"top","resume":true}'),
            _ev(Kind.START, "a", trial=t, config=json.dumps({"x": t, "r": 3})),
        ]
    events += [_ev(Kind.INTERRUPT, "a", trial=t, payload='{"reason":"KeyboardInterrupt"}')
               for t in (1, 2)]  # fmt: skip
    return events + [_ev(Kind.END, "a", payload='{"reason":"interrupted"}')]


def _every_status() -> list[Ev]:
    """One trial in each of the seven statuses; the session is still open."""
    a = "a"
    events = [_ev(Kind.STUDY, a, payload=json.dumps(SPEC)), _ev(Kind.SESSION, a)]
    events += [_ev(Kind.SUGGEST, a, trial=t, config=json.dumps({"x": t})) for t in range(8)]
    events += [_ev(Kind.START, a, trial=t) for t in range(1, 8)]
    return events + [
        _ev(Kind.REPORT, a, trial=2, resource=1.0, error=0.4),
        _ev(Kind.EVALUATE, a, trial=2, error=0.4, resource=1.0),
        _ev(Kind.PAUSE, a, trial=2, payload='{"reason":"rung 1"}'),
        _ev(Kind.EVALUATE, a, trial=3, error=0.2),
        _ev(Kind.REPORT, a, trial=4, resource=1.0, error=0.9),
        _ev(Kind.STOP, a, trial=4, payload='{"reason":"worse than the median"}'),
        _ev(Kind.EVALUATE, a, trial=4, error=0.9, resource=1.0),
        _ev(Kind.FAIL, a, trial=5, payload='{"message":"ValueError"}'),
        _ev(Kind.INTERRUPT, a, trial=6, payload='{"reason":"worker died"}'),
        _ev(Kind.EVALUATE, a, trial=7, error=0.2),  # ties the incumbent: trial 3 keeps it
        _ev(Kind.PAUSE, a, trial=7, payload='{"reason":"rung 1"}'),
        _ev(Kind.PROMOTE, a, trial=7, payload='{"reason":"to trial 8"}'),  # waits no more
    ]


EVERY_STATUS = {
    0: "suggested", 1: "running", 2: "paused", 3: "finished", 4: "stopped", 5: "failed",
    6: "interrupted", 7: "finished",
}  # fmt: skip


@pytest.mark.parametrize("layout", ["duckdb", "parquet"])
def test_each_of_the_seven_statuses_reads_the_same_in_fold_views_and_cli(
    layout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = os.fspath(tmp_path / "runs.duckdb") if layout == "duckdb" else f"{tmp_path}/runs/"
    _write(path, {"e": _every_status()})
    state = _fold("e", _every_status())
    assert _expected(state)["statuses"] == EVERY_STATUS
    assert (state.incumbent_trial, state.incumbent_error) == (3, 0.2)
    views = _from_views(path.rstrip("/"))["e"]
    assert views == _expected(state)
    assert (views["finished"], views["evaluations"], views["incumbent_trial"]) == (2, 4, 3)
    assert main(["trials", path, "e"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:-1]]
    assert {int(r[0]): r[2] for r in rows} == EVERY_STATUS  # trial, x, status


@pytest.mark.parametrize("layout", ["duckdb", "parquet"])
def test_a_stopped_trial_cut_by_a_crash_is_interrupted_everywhere(
    layout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = os.fspath(tmp_path / "runs.duckdb") if layout == "duckdb" else f"{tmp_path}/runs/"
    _write(path, {"s": _stopped_then_crashed(), "c": _ctrl_c_after_promotion()})
    assert _fold("s", _stopped_then_crashed()).trials[0].status is TrialStatus.INTERRUPTED
    views = _from_views(path.rstrip("/"))
    assert views["s"]["statuses"] == {0: "interrupted"}
    assert views["c"]["statuses"] == {0: "paused", 1: "interrupted", 2: "interrupted"}
    assert main(["trials", path, "s"]) == 0
    assert " interrupted " in capsys.readouterr().out.splitlines()[2] + " "
    # `hpostore studies` and `hpostore show` count the same way
    assert main(["studies", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    row = next(line.split() for line in lines[2:] if line.startswith("c "))
    got = dict(zip(header, row))
    assert (got["finished"], got["paused"], got["interrupted"], got["evaluations"]) == (
        "0", "1", "2", "3",
    )  # fmt: skip
    assert main(["show", path, "c"]) == 0
    out = capsys.readouterr().out
    assert "trials      3: 2 interrupted, 1 paused; 3 evaluations" in out
    assert "incumbent   trial 2, error 0.1" in out


def test_sql_command_sees_the_views(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = os.fspath(tmp_path / "runs.duckdb")
    _write(path, {"c": _ctrl_c_after_promotion()})
    assert main(["sql", path, "SELECT interrupted, incumbent_trial FROM studies"]) == 0
    assert capsys.readouterr().out.splitlines()[2].split() == ["2", "2"]
    assert main(["sql", path, "SELECT count(*) FROM trials WHERE status = 'paused'"]) == 0
    assert capsys.readouterr().out.splitlines()[2].split() == ["1"]


@pytest.mark.parametrize(
    ("cut", "bad", "words"),
    [
        (3, _ev(Kind.EVALUATE, "a", trial=0, error=0.1), "evaluate of trial 0, which is suggested"),
        (3, _ev(Kind.REPORT, "a", trial=0, resource=1.0, error=0.1), "report of trial 0"),
        (3, _ev(Kind.STOP, "a", trial=0), "stop of trial 0, which is suggested"),
        (3, _ev(Kind.EVALUATE, "a", trial=7, error=0.1), "evaluate of trial 7, which was never"),
        (
            7,
            _ev(Kind.EVALUATE, "b", trial=0, error=0.1),
            "evaluate of trial 0, which is interrupted",
        ),
        (4, _ev(Kind.START, "a", trial=0), "start of trial 0, which is running"),
        (3, _ev(Kind.UPDATE, "a", trial=0), "update of trial 0"),
    ],
)
def test_an_impossible_transition_is_a_corrupt_log_naming_the_seq(
    cut: int, bad: Ev, words: str
) -> None:
    events = _stopped_then_crashed()[:cut] + [bad]
    with pytest.raises(CorruptLogError, match=f"seq {cut + 1}: {words}"):
        _fold("s", events)


def test_a_seq_that_is_not_the_next_is_a_corrupt_log() -> None:
    state = _fold("s", _stopped_then_crashed()[:3])
    row = ("s", 5, 0, 1.0, "a", "start", 0, None, None, None, None, None, None)
    with pytest.raises(CorruptLogError, match="expected seq 4 after 3, got 5"):
        state.apply_row(row)
    assert state.seq == 3 and state.trials[0].status is TrialStatus.SUGGESTED
