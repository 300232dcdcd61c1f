"""The SQL views and any-time analysis against hand-built logs with known answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import analysis
from hpostore import open_store, replay_table
from tests.analysis_logs import SPEC_RANDOM, write_curve, write_resumed_study


@pytest.fixture
def resumed_file(tmp_path: Path) -> str:
    path = os.fspath(tmp_path / "runs.duckdb")
    with open_store(path) as store:
        write_resumed_study(store)
        store.append("open", "study", elapsed=0.0, session="s9", payload=json.dumps(SPEC_RANDOM))
        store.append("open", "session", elapsed=0.0, session="s9")
        store.append("open", "suggest", elapsed=0.0, session="s9", trial=0, config='{"lr":1}')
        store.append("open", "start", elapsed=0.0, session="s9", trial=0)
    return path


def _rows(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None
) -> list[tuple]:
    return con.execute(sql, params).fetchall()


def test_trials_view_statuses_and_columns(resumed_file: str) -> None:
    con = analysis.views(resumed_file)
    got = _rows(
        con,
        "SELECT trial, status, error, resource, attempts, reports, started_at, finished_at, "
        "worker, message, lr, batch, act FROM trials WHERE study = ? ORDER BY trial",
        ["resumed"],
    )
    assert got == [
        (0, "finished", 0.8, None, 1, 0, 1.0, 3.0, "w1", None, 0.1, 32, "relu"),
        (1, "failed", None, None, 1, 0, 3.0, 4.0, "w1", "ValueError: diverged", 10.0, 64, "tanh"),
        (2, "finished", 0.5, None, 1, 0, 4.0, 6.0, "w1", None, 0.01, 128, "relu"),
        (3, "finished", 0.9, None, 2, 0, 6.5, 8.0, "w2", None, 0.5, 16, "tanh"),
        (4, "finished", 0.3, 3.0, 1, 2, 8.0, 11.0, "w2", None, 0.05, 32, "relu"),
        (5, "interrupted", None, None, 1, 0, 11.0, None, "w2", None, 0.2, 64, "relu"),
    ]
    types = dict(_rows(con, "SELECT column_name, column_type FROM (DESCRIBE trials)"))
    assert (types["lr"], types["batch"], types["act"]) == ("DOUBLE", "BIGINT", "VARCHAR")
    assert _rows(con, "SELECT status FROM trials WHERE study = 'open'") == [("running",)]


def test_trials_view_agrees_with_replay(resumed_file: str) -> None:
    con = analysis.views(resumed_file)
    with open_store(resumed_file, read_only=True) as store:
        state = replay_table("resumed", store.events("resumed"))
    replayed = {t.trial: (t.status.value, t.error, t.attempts) for t in state.trials.values()}
    viewed = {
        trial: (status, error, attempts)
        for trial, status, error, attempts in _rows(
            con, "SELECT trial, status, error, attempts FROM trials WHERE study = 'resumed'"
        )
    }
    assert viewed == replayed


def test_a_trial_in_flight_when_its_session_died_is_interrupted(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "r.duckdb")
    with open_store(path) as store:
        write_resumed_study(store)
        store.append("resumed", "session", elapsed=12.0, session="s3")
        store.append("resumed", "suggest", elapsed=12.0, session="s3", trial=6, config="{}")
        store.append("resumed", "start", elapsed=12.0, session="s3", trial=6)
        store.append("resumed", "end", elapsed=13.0, session="s3")  # died uncleanly: no result
    con = analysis.views(path)
    assert _rows(con, "SELECT status FROM trials WHERE trial = 6") == [("interrupted",)]


def test_anytime_view_counts_study_time_not_downtime(resumed_file: str) -> None:
    con = analysis.views(resumed_file)
    got = _rows(
        con,
        "SELECT elapsed, n_finished, trial, best_error FROM anytime WHERE study = ? ORDER BY seq",
        ["resumed"],
    )
    # the 0.9 of trial 3 is no improvement; the resumed session's results are at 8 and 11 s
    assert got == [(3.0, 1, 0, 0.8), (6.0, 2, 2, 0.5), (11.0, 4, 4, 0.3)]
    studies = _rows(
        con,
        "SELECT study, trials, finished, failed, sessions, best_error, elapsed_s, searcher FROM studies ORDER BY study",
    )
    assert studies[1] == (
        "resumed",
        6,
        4,
        1,
        2,
        0.3,
        12.0,
        "hpostore.searchers.random.RandomSearcher",
    )


def test_learning_curves_and_decisions(resumed_file: str) -> None:
    con = analysis.views(resumed_file)
    assert _rows(
        con, "SELECT trial, kind, resource, error FROM learning_curves WHERE trial = 4 ORDER BY seq"
    ) == [
        (4, "report", 1.0, 0.7),
        (4, "report", 2.0, 0.4),
        (4, "evaluate", 3.0, 0.3),
    ]
    assert _rows(con, "SELECT count(*) FROM learning_curves WHERE study = 'resumed'") == [(6,)]
    assert _rows(con, "SELECT trial, decision, reason, resource FROM decisions") == [
        (4, "promote", "top 1/3 of rung 2", 2.0)
    ]


def test_views_see_the_unfolded_tail_of_a_live_writer(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "live.duckdb")
    store = open_store(path)
    try:
        write_curve(store, "live", [(1.0, 0.5), (2.0, 0.25)])
        store.flush()
        store.append("live", "suggest", elapsed=3.0, session="s", trial=2, config='{"x":0.1}')
        store.append("live", "start", elapsed=3.0, session="s", trial=2)
        store.append("live", "evaluate", elapsed=3.0, session="s", trial=2, error=0.1)
        store.commit()  # durable in the tail, not yet folded into the table
        con = analysis.views(store)
        assert _rows(con, "SELECT best_error FROM anytime ORDER BY seq") == [
            (0.5,),
            (0.25,),
            (0.1,),
        ]
    finally:
        store.close()


def test_views_wait_out_another_process_holding_duckdbs_lock(tmp_path: Path) -> None:
    """A writer holds DuckDB's file lock while it folds: the views retry (as the store's
    readers do) instead of failing at once."""
    path = os.fspath(tmp_path / "held.duckdb")
    with open_store(path) as store:
        write_curve(store, "s", [(1.0, 0.5)])
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            """
            import sys, time, duckdb
            con = duckdb.connect(sys.argv[1])  # read-write: DuckDB's exclusive file lock
            print("held", flush=True)
            time.sleep(1.0)
            con.close()
            """
        ), path],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        con = analysis.views(path)  # attached once the holder lets go
        assert _rows(con, "SELECT best_error FROM anytime") == [(0.5,)]
    finally:
        holder.wait(timeout=60)


def test_views_over_a_parquet_directory_and_an_open_store_agree(
    resumed_file: str, tmp_path: Path
) -> None:
    with open_store(resumed_file, read_only=True) as store:
        table = store.sql("SELECT * FROM events ORDER BY study, seq")
        from_store = analysis.views(store)
        expected = _rows(from_store, "SELECT * EXCLUDE (config) FROM trials ORDER BY study, trial")
    n = table.num_rows
    for study in sorted(set(table.column("study").to_pylist())):  # hpostore 0.1 names: no hash
        part = table.filter(pc.equal(table.column("study"), study))
        folder = tmp_path / "runs" / study
        folder.mkdir(parents=True)
        last = part.num_rows
        pq.write_table(part, folder / f"{1:012d}-{last:012d}.writer1.parquet", compression="zstd")
        if last > 5:  # a segment the wider one holds (a compaction in progress)
            pq.write_table(part.slice(0, 5), folder / f"{1:012d}-{5:012d}.writer1.parquet")
        (folder / ".tmp-partial.parquet.tmp").write_bytes(b"PAR1 torn")
    con = analysis.views(tmp_path / "runs")
    assert _rows(con, "SELECT * EXCLUDE (config) FROM trials ORDER BY study, trial") == expected
    assert _rows(con, "SELECT count(*) FROM events") == [(n,)]


def test_the_sql_files_run_with_plain_duckdb_without_hpostore(
    resumed_file: str, tmp_path: Path
) -> None:
    with open_store(resumed_file, read_only=True) as store:
        table = store.sql("SELECT * FROM events")
    (tmp_path / "pq" / "resumed").mkdir(parents=True)
    pq.write_table(table, tmp_path / "pq" / "resumed" / "000000000001-000000000030.w.parquet")
    script = textwrap.dedent(
        """
        import sys, duckdb
        sql_dir, db, pq_dir = sys.argv[1:]
        out = []
        for source in ("file", "parquet"):
            if source == "file":
                con = duckdb.connect(db, read_only=True)
            else:
                con = duckdb.connect()
                con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{pq_dir}/**/*.parquet')")
            for name in ("studies", "trials", "anytime", "learning_curves", "decisions"):
                con.execute(open(f"{sql_dir}/{name}.sql").read())
            out.append(con.execute(
                "SELECT trial, status, error, lr FROM trials WHERE study = ? ORDER BY trial", ["resumed"]
            ).fetchall())
            out.append(con.execute("SELECT best_error FROM anytime WHERE study = 'resumed' ORDER BY seq").fetchall())
        assert "hpostore" not in sys.modules and "analysis" not in sys.modules
        print(repr(out))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, os.fspath(analysis.sql_dir()), resumed_file, os.fspath(tmp_path / "pq")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    trials = [(0, "finished", 0.8, 0.1), (1, "failed", None, 10.0), (2, "finished", 0.5, 0.01),
              (3, "finished", 0.9, 0.5), (4, "finished", 0.3, 0.05), (5, "interrupted", None, 0.2)]  # fmt: skip
    anytime = [(0.8,), (0.5,), (0.3,)]
    assert eval(result.stdout) == [trials, anytime, trials, anytime]  # noqa: S307 - our own repr


def test_a_log_without_hyperparameters_still_has_a_trials_view() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events AS SELECT * FROM (SELECT 's' AS study, 1::BIGINT AS seq, now() AS ts, 0.0::DOUBLE AS elapsed, 'x' AS session, 'study' AS kind, NULL::BIGINT AS trial, NULL AS config, NULL::DOUBLE AS resource, NULL::DOUBLE AS error, NULL::DOUBLE AS runtime, NULL AS worker, NULL AS payload)"
    )
    analysis.views(con)
    assert _rows(con, "SELECT count(*) FROM trials") == [(0,)]


def test_views_refuse_what_is_not_an_event_log(tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(os.fspath(other))
    con.execute("CREATE TABLE events (a INT)")
    con.close()
    with pytest.raises(analysis.AnalysisError, match="not the hpostore event-log columns"):
        analysis.views(other)
    with pytest.raises(analysis.AnalysisError, match="no event log at"):
        analysis.views(tmp_path / "missing.duckdb")


def test_analysis_reads_through_hpostore_log_and_does_not_import_matplotlib() -> None:
    script = (
        "import sys, analysis; "
        "print(sorted(m for m in ('hpostore.log.tail', 'hpostore.log.segments', 'matplotlib')"
        " if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=root
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['hpostore.log.segments', 'hpostore.log.tail']"
