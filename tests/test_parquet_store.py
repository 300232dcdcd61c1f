"""The Parquet directory backend beyond the shared contract: several processes, a second
writer on one study, torn and corrupt segments, compaction."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import analysis
from hpostore import CorruptLogError, HPOStoreError, open_store
from hpostore.errors import StudyWriterConflict
from hpostore.log.segments import write_segment
from hpostore.store.parquet import ParquetStore, list_segments, study_folder_name

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parents[1]

WRITER = textwrap.dedent(
    """
    import os, sys, time
    from scipy import stats
    from hpostore import BasicScheduler, HPOTuner, RandomSearcher, open_store
    path, worker, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    while not os.path.exists(go):  # start together
        time.sleep(0.005)
    store = open_store(path)
    for name in ("a", "b"):
        searcher = RandomSearcher({"x": stats.uniform(-1, 2)}, seed=worker)
        HPOTuner(BasicScheduler(searcher), lambda x: x * x, store=store,
                 study=f"w{worker}-{name}", verbose=False).run(15)
    store.close()
    """
)


def test_processes_write_different_studies_into_one_directory(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "runs") + "/"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [PYTHON, "-c", WRITER, path, str(w), os.fspath(go)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(3)
    ]
    time.sleep(0.5)
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with open_store(path, read_only=True) as store:
        assert sorted(store.studies()) == sorted(f"w{w}-{n}" for w in range(3) for n in "ab")
        for study in store.studies():
            events = store.events(study).to_pylist()
            # study, session, 15 x (suggest, start, evaluate, update), end
            assert [e["seq"] for e in events] == list(range(1, 64))
            kinds = [e["kind"] for e in events]
            assert kinds == ["study", "session"] + [
                "suggest",
                "start",
                "evaluate",
                "update",
            ] * 15 + ["end"]
            configs = {
                e["trial"]: json.loads(e["config"]) for e in events if e["kind"] == "suggest"
            }
            for e in events:
                if e["kind"] == "evaluate":
                    assert e["error"] == pytest.approx(configs[e["trial"]]["x"] ** 2)
            assert {e["study"] for e in events} == {study}
    # readable as-is by plain DuckDB: every event once (each writer merged its segments at close)
    con = duckdb.connect()
    glob = os.fspath(tmp_path / "runs" / "**" / "*.parquet")
    got = con.execute(
        "SELECT count(*), count(DISTINCT (study, seq)) FROM read_parquet(?)", [glob]
    ).fetchall()
    assert got == [(6 * 63, 6 * 63)]


def test_a_second_writer_on_the_same_study_gets_a_clear_error(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "runs") + "/"
    first = open_store(path)
    second = open_store(path)
    first.append("s", "study", elapsed=0.0, session="a", payload="{}")
    first.commit()
    with pytest.raises(
        StudyWriterConflict, match=r"study .s. .* is being written by writer .*\(pid"
    ):
        second.append("s", "session", elapsed=0.0, session="b")
    second.append("other", "study", elapsed=0.0, session="b", payload="{}")  # other studies: fine
    first.append("s", "session", elapsed=0.0, session="a")
    first.close()
    second.close()
    with open_store(path, read_only=True) as store:
        assert store.events("s").column("session").to_pylist() == ["a", "a"]
        assert store.last_seq("other") == 1


def test_a_writer_that_read_a_stale_study_is_refused(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "runs") + "/"
    late = open_store(path)
    assert late.last_seq("s") == 0  # it has read the study (empty) ...
    with open_store(path) as early:  # ... then another writer appends and leaves
        early.append("s", "study", elapsed=0.0, session="a", payload="{}")
    late._next_seq["s"] = 1
    with pytest.raises(StudyWriterConflict, match="grew to seq 1"):
        late.append("s", "study", elapsed=0.0, session="b", payload="{}")
    late.close()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from hpostore import open_store
    store = open_store(sys.argv[1])
    store.append("s", "study", elapsed=0.0, session="child", payload="{}")
    store.commit()
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_a_live_writer_in_another_process_blocks_and_a_dead_one_does_not(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "runs") + "/"
    child = subprocess.Popen(
        [PYTHON, "-c", HOLDER, path], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        with (
            open_store(path) as store,
            pytest.raises(StudyWriterConflict, match=f"pid {child.pid}"),
        ):
            store.append("s", "session", elapsed=0.0, session="parent")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with open_store(path) as store:  # the claim of a dead process on this host is taken over
        row = store.append("s", "session", elapsed=0.0, session="parent")
        assert row[1] == 2
    with open_store(path, read_only=True) as store:
        assert store.events("s").column("session").to_pylist() == ["child", "parent"]


def _write(path: str, study: str, n: int) -> None:
    with open_store(path) as store:
        for i in range(n):
            store.append(study, "suggest", elapsed=float(i), session="s", trial=i, config='{"x":1}')
            store.commit()


def test_a_torn_temporary_file_is_ignored_and_a_corrupt_segment_is_named(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "runs") + "/"
    _write(path, "good", 3)
    _write(path, "bad", 3)
    folder = tmp_path / "runs" / "bad"
    (folder / ".000000000004-000000000004.w.parquet.tmp").write_bytes(b"PAR1\x00torn")
    with open_store(path, read_only=True) as store:
        assert store.last_seq("bad") == 3 and store.events("bad").num_rows == 3
    [segment] = list_segments(folder)
    data = segment.path.read_bytes()
    segment.path.write_bytes(data[: len(data) // 2])  # a partial copy
    with open_store(path, read_only=True) as store:
        with pytest.raises(CorruptLogError, match=segment.path.name):
            store.events("bad")
        assert store.events("good").num_rows == 3  # the other studies stay readable
    with pytest.raises(CorruptLogError, match=segment.path.name):  # the same rule in analysis
        analysis.views(tmp_path / "runs").execute("SELECT count(*) FROM events").fetchall()


def test_a_missing_segment_is_a_gap_not_a_shorter_study(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "runs") + "/"
    store = ParquetStore(path)
    for i in range(3):
        store.append("s", "suggest", elapsed=0.0, session="s", trial=i, config="{}")
        store.commit()
    middle = sorted(list_segments(tmp_path / "runs" / "s"), key=lambda s: s.first)[1]
    middle.path.unlink()
    with pytest.raises(CorruptLogError, match="events 2..2 are missing"):
        store.events("s")
    store._published.clear()
    store.close()


def test_compaction_keeps_what_readers_see(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "runs") + "/"
    store = open_store(path)
    assert isinstance(store, ParquetStore)
    for i in range(10):
        store.append(
            "s", "suggest", elapsed=float(i), session="s", trial=i, config=json.dumps({"i": i})
        )
        store.commit()
    folder = tmp_path / "runs" / "s"
    assert len(list_segments(folder)) == 10
    before = store.events("s")
    # a compaction caught half-way: the merged segment is in place, the narrow ones not yet gone
    merged = pa.concat_tables(
        pq.read_table(seg.path) for seg in sorted(list_segments(folder), key=lambda s: s.first)[:5]
    )
    write_segment(folder, merged, 1, 5, "compact-x", durable=False)
    assert store.events("s").equals(before)
    assert analysis.views(tmp_path / "runs").execute("SELECT count(*) FROM events").fetchall() == [
        (10,)
    ]
    assert store.compact() == {"s": (11, 1)}
    assert store.events("s").equals(before)
    store.append("s", "end", elapsed=10.0, session="s")
    store.close()
    with open_store(path, read_only=True) as reader:
        assert reader.last_seq("s") == 11
        assert reader.sql("SELECT count(*) AS n FROM events").column("n").to_pylist() == [11]


def test_study_names_become_safe_folder_names(tmp_path: Path) -> None:
    assert study_folder_name("a/b") == "a%2Fb"
    assert study_folder_name("..") == "%2E%2E"
    with pytest.raises(HPOStoreError, match="at most"):
        study_folder_name("x" * 300)
    path = os.fspath(tmp_path / "runs") + "/"
    _write(path, "../escape", 2)
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["%2E%2E%2Fescape"]
    with open_store(path, read_only=True) as store:
        assert store.studies() == ["../escape"]


def test_read_only_needs_an_existing_directory(tmp_path: Path) -> None:
    with pytest.raises(HPOStoreError, match="does not exist"):
        open_store(os.fspath(tmp_path / "nope") + "/", read_only=True)


# --- issue 9: claims, publish, compaction beside writers, failed writes, names, user SQL -------
@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2]"])
def test_an_empty_or_garbage_claim_is_reclaimed(tmp_path: Path, content: bytes) -> None:
    """Reproducer 3: a kill between creating and writing the claim left it empty for good."""
    path = os.fspath(tmp_path / "runs") + "/"
    _write(path, "s", 2)
    claim = tmp_path / "runs" / "s" / "_writer.json"
    claim.write_bytes(content)
    with open_store(path) as store:
        assert store.append("s", "end", elapsed=2.0, session="s")[1] == 3
        assert isinstance(store, ParquetStore)
        assert json.loads(claim.read_bytes())["writer"] == store.writer  # linked whole
    assert not claim.exists()  # released at close
    assert not [p for p in claim.parent.iterdir() if p.name.startswith(".")]  # no leftovers
    with open_store(path, read_only=True) as store:
        assert store.last_seq("s") == 3


def test_a_writer_whose_claim_was_taken_cannot_publish_the_same_events(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "runs") + "/"
    first = open_store(path)
    first.append("s", "study", elapsed=0.0, session="a", payload="{}")
    first.commit()
    (tmp_path / "runs" / "s" / "_writer.json").unlink()  # e.g. a user deleted it
    second = open_store(path)
    second.append("s", "session", elapsed=0.0, session="b")
    second.commit()
    first.append("s", "session", elapsed=0.0, session="a")
    with pytest.raises(StudyWriterConflict, match="claim"):
        first.commit()
    assert isinstance(first, ParquetStore)
    first._pending.clear()
    first.close()
    second.close()
    with open_store(path, read_only=True) as store:
        assert store.events("s").column("session").to_pylist() == ["a", "b"]


def test_publish_never_replaces_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    rows = _table(3)
    seg = write_segment(folder, rows, 1, 3, "w", durable=False)
    seg.path.chmod(0o644)
    seg.path.write_bytes(b"someone else's bytes")
    with pytest.raises(HPOStoreError, match="cannot write the segment"):
        write_segment(folder, rows, 1, 3, "w", durable=False)
    assert seg.path.read_bytes() == b"someone else's bytes"
    assert [p.name for p in folder.iterdir()] == [seg.path.name]  # no temporary file left


def _table(n: int) -> pa.Table:
    from hpostore.log.events import rows_to_table

    return rows_to_table(
        [("s", i, 1_700_000_000_000_000, 0.0, "x", "suggest", i, "{}", None, None, None, None, None)
         for i in range(1, n + 1)]
    )  # fmt: skip


def test_a_failed_segment_write_keeps_the_events_and_a_later_commit_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reproducer 2 (Parquet): ENOSPC at the write call; no seq gap, nothing lost."""
    import errno

    import hpostore.log.segments as segments

    path = os.fspath(tmp_path / "runs") + "/"
    store = open_store(path)
    store.append("s", "study", elapsed=0.0, session="a", payload="{}")
    store.commit()
    real = segments._write_all

    def full_disk(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(segments, "_write_all", full_disk)
    store.append("s", "session", elapsed=0.0, session="a")
    store.append("s", "suggest", elapsed=0.0, session="a", trial=0, config="{}")
    with pytest.raises(
        HPOStoreError, match=r"cannot write the segment .*000000000002-000000000003"
    ):
        store.commit()
    with pytest.raises(HPOStoreError, match="No space left"):
        store.commit()  # still failing: still kept
    assert [p.name for p in (tmp_path / "runs" / "s").iterdir() if p.name.endswith(".tmp")] == []
    monkeypatch.setattr(segments, "_write_all", real)  # space freed
    store.append("s", "start", elapsed=0.0, session="a", trial=0)
    store.commit()
    store.close()
    with open_store(path, read_only=True) as reader:
        assert reader.events("s").column("seq").to_pylist() == [1, 2, 3, 4]


COMPACTOR = textwrap.dedent(
    """
    import sys
    from hpostore.store.parquet import ParquetStore
    store = ParquetStore(sys.argv[1])
    for _ in range(int(sys.argv[2])):
        store.compact("s")
    store.close()
    print("done")
    """
)


def test_compaction_beside_a_writer_and_a_reader_loses_nothing_and_never_fails(
    tmp_path: Path,
) -> None:
    """Reproducer 4: compact racing a writer exited with FileNotFoundError; readers failed."""
    path = os.fspath(tmp_path / "runs") + "/"
    _write(path, "s", 1)
    compactor = subprocess.Popen(
        [PYTHON, "-c", COMPACTOR, path, "150"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    con = analysis.views(tmp_path / "runs")  # a snapshot: compaction cannot pull files away
    writer = ParquetStore(path)
    with writer, open_store(path, read_only=True) as reader:
        for i in range(120):
            writer.append("s", "suggest", elapsed=float(i), session="w", trial=i, config='{"x":1}')
            writer.commit()
            assert reader.events("s").column("seq").to_pylist() == list(range(1, i + 3))
            if i % 10 == 0:
                writer.compact("s")
    out, err = compactor.communicate(timeout=300)
    assert compactor.returncode == 0 and out.strip() == "done", err
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(1,)]
    with open_store(path, read_only=True) as reader:
        assert reader.events("s").column("seq").to_pylist() == list(range(1, 122))


@pytest.mark.parametrize("study", ["../escape", "/abs/path", "a/../../b", ".", "~root"])
def test_every_study_name_stays_under_the_root(tmp_path: Path, study: str) -> None:
    path = os.fspath(tmp_path / "runs") + "/"
    _write(path, study, 1)
    [folder] = (tmp_path / "runs").iterdir()
    assert folder.parent == tmp_path / "runs" and "/" not in folder.name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    with open_store(path, read_only=True) as store:
        assert store.studies() == [study]


@pytest.mark.parametrize("study", ["nul\x00name", "bad-\udcff-utf8", ""])
def test_a_study_name_with_nul_or_invalid_utf8_is_a_clear_error(tmp_path: Path, study: str) -> None:
    from hpostore.errors import InvalidArgument

    with (
        open_store(os.fspath(tmp_path / "runs") + "/") as store,
        pytest.raises(InvalidArgument, match="study name"),
    ):
        store.append(study, "study", elapsed=0.0, session="s", payload="{}")


def test_user_sql_on_a_parquet_store_and_in_analysis_cannot_write_or_read_files(
    tmp_path: Path,
) -> None:
    """Reproducer 6 (read side): analysis.query ran DETACH/ATTACH/DELETE and read any file."""
    from hpostore.errors import SQLNotAllowed

    path = os.fspath(tmp_path / "runs") + "/"
    _write(path, "s", 3)
    db = tmp_path / "runs.duckdb"
    _write(os.fspath(db), "s", 1)
    outside = tmp_path / "leak.csv"
    attacks = [
        f"DETACH hpostore_log; ATTACH '{db}' AS rw; DELETE FROM rw.events",
        "SELECT * FROM read_csv('/etc/passwd')",
        f"COPY (SELECT * FROM events) TO '{outside}'",
        "WITH d AS (DELETE FROM events RETURNING *) SELECT count(*) FROM d",
        "SET enable_external_access = true",
    ]
    with open_store(path) as store:
        for sql in attacks:
            with pytest.raises(HPOStoreError):
                store.sql(sql)
        with pytest.raises(SQLNotAllowed):
            store.sql("SELECT * FROM read_csv('/etc/passwd')")
        assert store.sql("SELECT count(*) AS n FROM events").column("n").to_pylist() == [3]
    for source in (tmp_path / "runs", db):
        assert analysis.query(source, "SELECT count(*) FROM trials").num_rows == 1
        for sql in attacks:
            with pytest.raises(HPOStoreError):
                analysis.query(source, sql)
        with pytest.raises(SQLNotAllowed, match="outside the event log"):
            analysis.query(source, "SELECT * FROM read_csv('/etc/passwd')")
        con = analysis.views(source)  # the connection handed to the user is locked down too
        with pytest.raises(duckdb.Error):
            con.execute("SELECT * FROM read_csv('/etc/passwd')")
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
    assert not outside.exists()
    secret = pa.table({"password": ["hunter2"]})  # a Python variable is not a table to user SQL
    with pytest.raises(HPOStoreError):
        analysis.query(db, "SELECT * FROM secret")
    with open_store(path) as store, pytest.raises(HPOStoreError):
        store.sql("SELECT * FROM secret")
    assert secret.num_rows == 1
    with open_store(os.fspath(db), read_only=True) as store:
        assert store.last_seq("s") == 1
    assert issubclass(analysis.AnalysisError, HPOStoreError)


def test_views_of_a_duckdb_file_this_process_is_writing(tmp_path: Path) -> None:
    """Reproducer 9 (read side): analysis.views(path) beside this process's own writer."""
    path = os.fspath(tmp_path / "live.duckdb")
    with open_store(path) as store:
        store.append("s", "study", elapsed=0.0, session="a", payload="{}")
        store.append("s", "session", elapsed=0.0, session="a")
        store.commit()
        con = analysis.views(path)
        assert con.execute("SELECT max(seq) FROM events").fetchall() == [(2,)]
        store.append("s", "end", elapsed=1.0, session="a")
    assert analysis.query(path, "SELECT count(*) AS n FROM events").column("n").to_pylist() == [3]


TAKER = textwrap.dedent(
    """
    import os, sys, time
    from hpostore import open_store
    from hpostore.errors import StudyWriterConflict
    path, go, done = sys.argv[1], sys.argv[2], sys.argv[3]
    store = open_store(path)
    store.last_seq("s")
    while not os.path.exists(go):
        time.sleep(0.001)
    try:
        store.append("s", "end", elapsed=1.0, session=str(os.getpid()))
        store.commit()
        print("won", flush=True)
        while not os.path.exists(done):  # hold the claim until every taker has tried
            time.sleep(0.01)
    except StudyWriterConflict:
        print("lost", flush=True)
    store.close()
    """
)


def test_racing_takers_of_a_garbage_claim_leave_exactly_one_writer(tmp_path: Path) -> None:
    """Reproducer 3: claim takeover was check-then-unlink and could let two writers in."""
    path = os.fspath(tmp_path / "runs") + "/"
    _write(path, "s", 1)
    (tmp_path / "runs" / "s" / "_writer.json").write_bytes(b"")
    go, done = tmp_path / "go", tmp_path / "done"
    takers = [
        subprocess.Popen(
            [PYTHON, "-c", TAKER, path, os.fspath(go), os.fspath(done)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(4)
    ]
    time.sleep(1.0)  # let them import; the race itself does not depend on this
    go.touch()
    results = [p.stdout.readline().strip() for p in takers if p.stdout is not None]
    done.touch()
    for p in takers:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    assert sorted(results) == ["lost", "lost", "lost", "won"]
    with open_store(path, read_only=True) as store:
        assert store.events("s").column("kind").to_pylist() == ["suggest", "end"]


def test_a_claim_of_a_store_object_dropped_unclosed_in_this_process_is_taken(
    tmp_path: Path,
) -> None:
    """Reproducer 9 (Parquet): a re-run notebook cell met its own process's old claim."""
    import gc

    path = os.fspath(tmp_path / "runs") + "/"
    old = open_store(path)
    old.append("s", "study", elapsed=0.0, session="a", payload="{}")
    old.commit()
    other = open_store(path)
    with pytest.raises(StudyWriterConflict, match=f"pid {os.getpid()}: another store object"):
        other.append("s", "session", elapsed=0.0, session="b")  # the old one is still open
    del old
    gc.collect()
    with open_store(path) as store:
        assert store.append("s", "session", elapsed=0.0, session="b")[1] == 2
    other.close()
    with open_store(path, read_only=True) as store:
        assert store.events("s").column("session").to_pylist() == ["a", "b"]
