"""The store contract, run against every backend (see conftest.BACKENDS)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from hpostore import (
    CorruptLogError,
    EventLog,
    FormatVersionError,
    HPOStoreError,
    InvalidArgument,
    ReadOnlyStoreError,
    open_store,
)
from hpostore.log.events import COLUMNS, SCHEMA

PYTHON = sys.executable


def _append(
    store: EventLog, study: str, kind: str, trial: int | None = None, **kw: object
) -> tuple:
    return store.append(
        study, kind, elapsed=kw.pop("elapsed", 0.0), session="s1", trial=trial, **kw
    )  # type: ignore[arg-type]


def test_seq_is_assigned_gapless_per_study(fresh_store: EventLog) -> None:
    for i in range(5):
        _append(fresh_store, "a", "suggest", i, config=json.dumps({"i": i}))
        _append(fresh_store, "b", "suggest", i, config="{}")
        if i % 2:
            fresh_store.commit()
    fresh_store.commit(force=True)
    for study in ("a", "b"):
        table = fresh_store.events(study)
        assert table.column("seq").to_pylist() == [1, 2, 3, 4, 5]
        assert table.column("trial").to_pylist() == [0, 1, 2, 3, 4]
    assert sorted(fresh_store.studies()) == ["a", "b"]
    assert fresh_store.last_seq("a") == 5 and fresh_store.last_seq("nope") == 0


def test_events_table_has_the_documented_schema(fresh_store: EventLog) -> None:
    row = _append(
        fresh_store,
        "s",
        "evaluate",
        0,
        config='{"x":1}',
        resource=3.0,
        error=0.5,
        runtime=1.5,
        worker="w",
        payload='{"k":1}',
        elapsed=2.0,
    )
    table = fresh_store.events("s")
    assert table.schema.equals(SCHEMA, check_metadata=False)
    assert tuple(table.column_names) == COLUMNS
    got = table.to_pylist()[0]
    assert (got["study"], got["seq"], got["kind"], got["trial"], got["error"], got["worker"]) == (
        "s",
        1,
        "evaluate",
        0,
        0.5,
        "w",
    )
    assert got["ts"].timestamp() == pytest.approx(row[2] / 1e6)
    assert fresh_store.events("s", columns=["seq", "error"]).column_names == ["seq", "error"]
    with pytest.raises(HPOStoreError, match="unknown event columns"):
        fresh_store.events("s", columns=["nope"])


def test_sql_is_read_only_and_parameterised(fresh_store: EventLog) -> None:
    _append(fresh_store, "it's", "suggest", 0, config="{}")
    table = fresh_store.sql("SELECT count(*) AS n FROM events WHERE study = ?", ["it's"])
    assert table.column("n").to_pylist() == [1]
    for statement in (
        "DELETE FROM events",
        "DROP TABLE events",
        "INSERT INTO events SELECT * FROM events",
    ):
        with pytest.raises(ReadOnlyStoreError):
            fresh_store.sql(statement)
    with pytest.raises(HPOStoreError):
        fresh_store.sql("SELECT 1; SELECT 2")
    assert fresh_store.sql("SELECT count(*) AS n FROM events").column("n").to_pylist() == [1]


def test_unknown_kind_is_refused(fresh_store: EventLog) -> None:
    with pytest.raises(HPOStoreError, match="unknown event kind"):
        _append(fresh_store, "s", "explode")


@pytest.mark.parametrize("durability", ["durable", "batched"])
@pytest.mark.parametrize("backend", ["duckdb", "parquet"])
def test_text_that_is_not_utf8_is_refused_at_append_and_the_log_stays_usable(
    tmp_path: Path, backend: str, durability: str
) -> None:
    path = os.fspath(tmp_path / "runs") + ("/" if backend == "parquet" else ".duckdb")
    with open_store(path, durability=durability) as store:
        _append(store, "s", "suggest", 0, config='{"name":"\u00fc"}', worker="wörker")
        for field in ("config", "worker", "payload"):  # a lone surrogate, as from a bad decode
            with pytest.raises(InvalidArgument, match=f"{field} is not valid UTF-8.*nothing"):
                _append(store, "s", "suggest", 1, **{field: "caf\udce9"})
        with pytest.raises(InvalidArgument, match="session is not valid UTF-8"):
            store.append("s", "start", elapsed=0.0, session="\ud800")
        with pytest.raises(InvalidArgument, match="config must be a str, got dict"):
            _append(store, "s", "suggest", 1, config={"x": 1})
        _append(store, "s", "suggest", 1, config='{"x":1}')  # the seq the refused ones did not take
        store.commit(force=True)
    with open_store(path, read_only=True) as ro:  # the log opens, gapless, text as written
        events = ro.events("s")
        assert events.column("seq").to_pylist() == [1, 2]
        assert events.column("worker").to_pylist() == ["wörker", None]
        assert events.column("config").to_pylist()[0] == '{"name":"\u00fc"}'


def test_reopen_and_read_only_see_everything(store_path: str) -> None:
    with open_store(store_path) as store:
        for i in range(3):
            _append(store, "s", "suggest", i, config="{}")
        store.commit()
    with open_store(store_path, read_only=True) as ro:
        assert ro.events("s").column("seq").to_pylist() == [1, 2, 3]
        with pytest.raises(ReadOnlyStoreError):
            _append(ro, "s", "suggest", 3, config="{}")
    with open_store(store_path) as store:
        assert _append(store, "s", "suggest", 3, config="{}")[1] == 4


def test_durable_commit_writes_the_tail_before_the_table(store_path: str) -> None:
    store = open_store(store_path)
    store.flush()  # fold now, so the next commit is within the fold interval
    _append(store, "s", "suggest", 0, config="{}")
    store.commit()
    tail = Path(store_path + ".tail").read_bytes()
    assert b'"suggest"' in tail  # durable on disk, not yet folded into DuckDB
    store.close()
    assert Path(store_path + ".tail").read_bytes() == b""  # folded at close
    con = duckdb.connect(store_path, read_only=True)
    assert con.execute("SELECT kind FROM events").fetchall() == [("suggest",)]
    con.close()


def _child(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=120
    )


def test_sigkill_after_durable_commit_loses_nothing(store_path: str) -> None:
    proc = _child(
        """
        import os, signal, sys
        from hpostore import open_store
        store = open_store(sys.argv[1])
        for i in range(50):
            store.append("s", "suggest", elapsed=float(i), session="k", trial=i, config="{}")
            store.commit()
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        store_path,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with open_store(store_path, read_only=True) as ro:  # a reader sees the unfolded tail too
        assert ro.events("s").column("trial").to_pylist() == list(range(50))
    with open_store(store_path) as store:  # the next writer folds it
        assert store.events("s").column("seq").to_pylist() == list(range(1, 51))
    assert Path(store_path + ".tail").read_bytes() == b""


def test_batched_crash_loses_only_a_suffix(store_path: str) -> None:
    proc = _child(
        """
        import os, signal, sys, time
        from hpostore import open_store
        store = open_store(sys.argv[1], durability="batched")
        deadline = time.monotonic() + 0.8
        i = 0
        while time.monotonic() < deadline:
            store.append("s", "suggest", elapsed=0.0, session="k", trial=i, config="{}")
            store.commit()
            i += 1
        print(i, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        store_path,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    appended = int(proc.stdout)
    with open_store(store_path) as store:
        trials = store.events("s").column("trial").to_pylist()
    assert 0 < len(trials) <= appended
    assert trials == list(range(len(trials)))  # a prefix: no gap, no middle lost


def test_torn_last_tail_line_is_ignored_and_cut(store_path: str) -> None:
    with open_store(store_path) as store:
        _append(store, "s", "suggest", 0, config="{}")
    good = (
        json.dumps(["s", 2, 0, 0.0, "k", "suggest", 1, "{}", None, None, None, None, None]) + "\n"
    )
    Path(store_path + ".tail").write_text(good + '["s", 3, 0, 0.0, "k", "sugg')
    with open_store(store_path) as store:
        assert store.events("s").column("trial").to_pylist() == [0, 1]
        assert _append(store, "s", "suggest", 2, config="{}")[1] == 3


def test_corrupt_tail_line_in_the_middle_is_reported_with_file_and_offset(store_path: str) -> None:
    open_store(store_path).close()
    good = (
        json.dumps(["s", 1, 0, 0.0, "k", "suggest", 0, "{}", None, None, None, None, None]) + "\n"
    )
    Path(store_path + ".tail").write_text(good + "garbage\n" + good)
    with pytest.raises(
        CorruptLogError, match=rf"runs\.duckdb\.tail: the event at byte {len(good)}"
    ):
        open_store(store_path)
    assert "garbage" in Path(store_path + ".tail").read_text()  # nothing was thrown away


def test_gap_between_table_and_tail_is_corruption(store_path: str) -> None:
    open_store(store_path).close()
    line = (
        json.dumps(["s", 5, 0, 0.0, "k", "suggest", 0, "{}", None, None, None, None, None]) + "\n"
    )
    Path(store_path + ".tail").write_text(line)
    with pytest.raises(CorruptLogError, match="jumps from seq 0 to 5"):
        open_store(store_path)


def test_second_writer_gets_store_locked_and_first_keeps_writing(store_path: str) -> None:
    store = open_store(store_path)
    _append(store, "s", "suggest", 0, config="{}")
    store.commit()
    proc = _child(
        """
        import sys
        from hpostore import open_store, StoreLocked, HPOStoreError
        try:
            open_store(sys.argv[1])
        except StoreLocked as exc:
            assert isinstance(exc, HPOStoreError)
            print(exc)
            sys.exit(3)
        """,
        store_path,
    )
    assert proc.returncode == 3, proc.stderr
    assert f"locked for writing by pid {os.getpid()}" in proc.stdout
    assert "read_only=True" in proc.stdout
    _append(store, "s", "suggest", 1, config="{}")
    store.close()
    with open_store(store_path, read_only=True) as ro:
        assert ro.events("s").column("trial").to_pylist() == [0, 1]
    # In one process a second writer takes over (a re-run notebook cell); the first is closed.
    with open_store(store_path) as a, open_store(store_path) as b:
        with pytest.raises(HPOStoreError, match="took over"):
            _append(a, "s", "suggest", 2, config="{}")
        assert _append(b, "s", "suggest", 2, config="{}")[1] == 3


def test_lock_is_released_when_the_writer_dies(store_path: str) -> None:
    proc = _child(
        """
        import os, signal, sys
        from hpostore import open_store
        store = open_store(sys.argv[1])
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        store_path,
    )
    assert proc.returncode == -signal.SIGKILL
    open_store(store_path).close()


def test_a_foreign_duckdb_file_is_refused(store_path: str) -> None:
    con = duckdb.connect(store_path)
    con.execute("CREATE TABLE events (id INTEGER, name VARCHAR)")
    con.close()
    with pytest.raises(FormatVersionError, match="not the hpostore event-log columns"):
        open_store(store_path)


@pytest.mark.parametrize(
    "path, fragment",
    [("runs.csv", "expects a DuckDB file path"), ("missing.duckdb", "does not exist")],
)
def test_open_store_explains_bad_paths(tmp_path: Path, path: str, fragment: str) -> None:
    with pytest.raises(HPOStoreError, match=fragment):
        open_store(os.fspath(tmp_path / path), read_only=True)


def test_open_store_rejects_unknown_durability(store_path: str) -> None:
    with pytest.raises(HPOStoreError, match="durability must be one of"):
        open_store(store_path, durability="sometimes")
