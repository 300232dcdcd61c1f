"""DuckDB store under faults: failed writes, a deleted lock file, hostile SQL, same-process
writers and readers, damaged files and bad paths, readers of a live store."""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import duckdb
import pytest

from hpostore import EventLog, HPOStoreError, ReadOnlyStoreError, open_store
from hpostore.log.events import Row
from hpostore.store import _tail_writer
from hpostore.store.duckdb import DuckDBStore, live_writer

PYTHON = sys.executable


def _append(store: EventLog, study: str = "s", kind: str = "suggest", trial: int = 0) -> int:
    return store.append(study, kind, elapsed=0.0, session="t", trial=trial, config="{}")[1]


def _seqs(path: str, study: str = "s") -> list[int]:
    with open_store(path, read_only=True) as ro:
        return ro.events(study).column("seq").to_pylist()


def _one_committed_one_pending(store_path: str) -> DuckDBStore:
    """A writer whose first event (seq 1) is committed and whose second is not yet."""
    store = open_store(store_path)
    assert isinstance(store, DuckDBStore)
    _append(store, trial=0)
    store.commit()
    _append(store, trial=1)
    return store


@contextlib.contextmanager
def _failing_writes(store: DuckDBStore, *, partial: bool = False) -> Iterator[None]:
    """os.pwrite on the store's tail raises ENOSPC (after writing half of it when ``partial``)."""
    real = os.pwrite

    def pwrite(fd: int, data: bytes | memoryview, offset: int) -> int:
        if store._tail is None or fd != store._tail.fd:
            return real(fd, data, offset)
        if partial and len(data) > 1:
            real(fd, bytes(data[: len(data) // 2]), offset)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    _tail_writer.os.pwrite = pwrite  # type: ignore[assignment]
    try:
        yield
    finally:
        _tail_writer.os.pwrite = real


# --- a failed write leaves the log gapless ------------------------------------------------
@pytest.mark.parametrize("partial", [False, True])
def test_failed_tail_write_keeps_the_events_and_the_study_resumes(
    store_path: str, partial: bool
) -> None:
    store = _one_committed_one_pending(store_path)
    with _failing_writes(store, partial=partial), pytest.raises(HPOStoreError) as info:
        store.commit()
    assert "runs.duckdb.tail" in str(info.value) and "kept" in str(info.value)
    assert Path(store_path + ".tail").read_bytes().count(b"\n") == 1  # the half line is cut off
    assert _append(store, "s", "end") == 3  # the next event continues after the kept one
    store.close()  # space is free again: the kept events are written now
    assert _seqs(store_path) == [1, 2, 3]
    with open_store(store_path) as again:
        assert _append(again, trial=2) == 4


def test_close_on_a_full_disk_raises_one_clear_error_and_keeps_a_gapless_prefix(
    store_path: str,
) -> None:
    store = _one_committed_one_pending(store_path)
    with _failing_writes(store):
        with pytest.raises(HPOStoreError):
            store.commit()
        _append(store, "s", "end")
        with pytest.raises(HPOStoreError, match="were not written") as info:
            store.close()
    assert not isinstance(info.value, duckdb.Error)
    assert live_writer(store_path) is None
    assert _seqs(store_path) == [1]
    with open_store(store_path) as again:  # resumable: the next seq follows the prefix
        assert _append(again, trial=1) == 2


def test_a_failing_fold_keeps_the_events_in_the_tail_and_close_does_not_raise(
    store_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpostore.store import _folding

    def no_space(con: object, rows: object, where: str, table: object = None) -> None:
        raise HPOStoreError(f"{where}: IO Error: Could not write .wal: No space left on device")

    store = open_store(store_path)
    _append(store, trial=0)
    store.flush()
    monkeypatch.setattr(_folding, "insert_rows", no_space)
    for i in range(1, 4):
        _append(store, trial=i)
        store.commit()  # durable in the tail: the fold is not on the commit path
    with pytest.raises(HPOStoreError, match="No space left"):
        store.flush()  # asked for explicitly, the fold says why it failed
    store.close()  # the committed events are safe in the tail: no error
    assert Path(store_path + ".tail").read_bytes().count(b"\n") == 3
    monkeypatch.undo()
    assert _seqs(store_path) == [1, 2, 3, 4]  # readers see the tail too
    with open_store(store_path) as again:  # and the next writer folds it
        assert _append(again, trial=4) == 5
    assert Path(store_path + ".tail").read_bytes() == b""


def test_a_large_commits_arrow_line_is_recovered_and_folded_as_written(
    store_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpostore.log.events import ARROW_LINE_ROWS
    from hpostore.store import _folding

    def no_space(con: object, rows: object, where: str, table: object = None) -> None:
        raise HPOStoreError(f"{where}: IO Error: Could not write .wal: No space left on device")

    store = open_store(store_path, durability="batched")
    monkeypatch.setattr(_folding, "insert_rows", no_space)
    # a small commit, a large one, a small one
    appended = _commits(store, (3, ARROW_LINE_ROWS + 5, 2), "suggest")
    store.close()  # the fold failed: everything is in the tail, the large commit as Arrow
    tail = Path(store_path + ".tail").read_bytes()
    assert tail.count(b"\n") == 3 and tail.count(b" @") == 1
    monkeypatch.undo()
    with open_store(store_path, read_only=True) as ro:  # read from the tail
        assert ro.events("s").to_pylist() == _as_dicts(appended)
    with open_store(store_path) as again:  # folded into the table at open
        assert again.events("s").to_pylist() == _as_dicts(appended)
    assert Path(store_path + ".tail").read_bytes() == b""
    with open_store(store_path, read_only=True) as ro:
        assert ro.events("s").to_pylist() == _as_dicts(appended)


def test_the_fold_inserts_a_large_commits_own_table(store_path: str) -> None:
    from hpostore.log.events import ARROW_LINE_ROWS

    with open_store(store_path, durability="batched") as store:
        appended = _commits(store, (2, ARROW_LINE_ROWS, 1), "evaluate")
        store.flush()
        assert Path(store_path + ".tail").read_bytes() == b""  # folded
        assert store.events("s").to_pylist() == _as_dicts(appended)


def _commits(store: EventLog, sizes: tuple[int, ...], kind: str) -> list[Row]:
    """Commits of ``sizes`` events each (with non-ASCII text and nulls); their rows."""
    appended: list[Row] = []
    for n in sizes:
        for _ in range(n):
            trial = len(appended)
            appended.append(
                store.append(
                    "s",
                    kind,
                    elapsed=trial / 7,
                    session="t",
                    trial=trial,
                    config=f'{{"x":{trial / 3!r},"w":"ü"}}' if kind == "suggest" else None,
                    error=None if trial % 9 == 0 or kind == "suggest" else trial / 3,
                )
            )
        store.commit(force=True)
    return appended


def _as_dicts(rows: list[Row]) -> list[dict[str, object]]:
    from hpostore.log.events import rows_to_table

    return rows_to_table(rows).to_pylist()


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", os.fspath(mount)],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip("mounting a small tmpfs is not permitted here")
    try:
        yield mount
    finally:
        gc.collect()
        subprocess.run(["umount", "-l", os.fspath(mount)], check=False)


def _fill(folder: Path) -> list[Path]:
    files = []
    chunk = b"x" * 4096
    with contextlib.suppress(OSError):
        for i in range(100_000):
            f = folder / f"filler{i}"
            files.append(f)
            with open(f, "wb") as out:
                for _ in range(64):
                    out.write(chunk)
                    out.flush()
    return files


def test_full_tmpfs_disk_study_resumes_after_space_is_freed(small_tmpfs: Path) -> None:
    path = os.fspath(small_tmpfs / "runs.duckdb")
    store = open_store(path)
    _append(store, trial=0)
    store.flush()
    filler = _fill(small_tmpfs)
    for i in range(1, 200):  # until the tail cannot grow
        _append(store, trial=i)
        try:
            store.commit()
        except HPOStoreError as exc:
            assert "runs.duckdb.tail" in str(exc) and "No space left" in str(exc)
            break
    else:
        pytest.fail("the disk never filled up")
    _append(store, "s", "end")
    with pytest.raises(HPOStoreError):  # never a raw duckdb TransactionException
        store.close()
    for f in filler:
        f.unlink(missing_ok=True)
    seqs = _seqs(path)
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 1
    with open_store(path) as again:
        assert _append(again, trial=999) == len(seqs) + 1


def test_open_on_a_full_disk_is_one_clear_error_and_leaves_no_broken_file(
    small_tmpfs: Path,
) -> None:
    filler = _fill(small_tmpfs)
    path = os.fspath(small_tmpfs / "runs.duckdb")
    with pytest.raises(HPOStoreError, match="runs.duckdb: the disk is full") as info:
        open_store(path)
    assert not isinstance(info.value, duckdb.Error)
    for f in filler:
        f.unlink(missing_ok=True)
    with open_store(path) as store:  # space freed: a fresh store, not "truncated or damaged"
        assert _append(store) == 1


# --- a lock nobody can delete away --------------------------------------------------------
def _child(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=120
    )


def test_deleting_the_lock_file_does_not_let_a_second_writer_in(store_path: str) -> None:
    store = open_store(store_path)
    _append(store, trial=0)
    store.commit()
    os.unlink(store_path + ".lock")
    proc = _child(
        """
        import sys
        from hpostore import open_store, StoreLocked
        try:
            store = open_store(sys.argv[1])
        except StoreLocked as exc:
            print(exc)
            sys.exit(3)
        store.append("s", "suggest", elapsed=0.0, session="intruder", trial=0, config="{}")
        store.close()
        """,
        store_path,
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"locked for writing by pid {os.getpid()}" in proc.stdout
    _append(store, trial=1)  # the first writer goes on, no duplicate key
    store.close()
    assert _seqs(store_path) == [1, 2]


# --- user SQL never writes ----------------------------------------------------------------
HOSTILE_SQL = [
    "WITH d AS (DELETE FROM events RETURNING *) SELECT count(*) FROM d",
    "WITH d AS (DELETE FROM log.events RETURNING *) SELECT count(*) FROM d",
    "WITH u AS (UPDATE events SET error = 0 RETURNING *) SELECT count(*) FROM u",
    "WITH i AS (INSERT INTO events SELECT * FROM events RETURNING *) SELECT count(*) FROM i",
    "WITH u AS (UPDATE log.events SET error = 0 RETURNING *) SELECT count(*) FROM u",
    "WITH i AS (INSERT INTO log.events SELECT * FROM log.events RETURNING *) SELECT 1",
    "UPDATE events SET error = 0",
    "INSERT INTO events SELECT * FROM events",
    "DETACH log",
    "ATTACH '{path}' AS rw",
    "COPY (SELECT * FROM events) TO '{dir}/out.csv'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_blob('{dir}/secret.txt')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SET enable_external_access = true",
]


@pytest.mark.parametrize("mode", ["writer", "read_only", "memory"])
@pytest.mark.parametrize("query", HOSTILE_SQL)
def test_user_sql_can_neither_write_nor_reach_files(
    store_path: str, tmp_path: Path, mode: str, query: str
) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    with open_store(store_path) as w:
        _append(w, trial=0)
    store = open_store(
        ":memory:" if mode == "memory" else store_path, read_only=mode == "read_only"
    )
    if mode == "memory":
        _append(store, trial=0)
    try:
        with pytest.raises(HPOStoreError):
            store.sql(query.format(path=store_path, dir=tmp_path))
        assert store.sql("SELECT count(*) AS n FROM events").column("n").to_pylist() == [1]
    finally:
        store.close()
    assert not (tmp_path / "out.csv").exists()
    assert _seqs(store_path) == [1]


def test_user_sql_still_reads_and_takes_parameters(store_path: str) -> None:
    with open_store(store_path) as store:
        _append(store, "it's", trial=0)
        store.commit()
        _append(store, "it's", trial=1)  # appended, not committed: still visible
        table = store.sql("SELECT count(*) AS n FROM events WHERE study = ?", ["it's"])
        assert table.column("n").to_pylist() == [2]
        with pytest.raises(ReadOnlyStoreError):
            store.sql("DELETE FROM events")


# --- the same process ---------------------------------------------------------------------
def test_a_failed_constructor_releases_the_lock(store_path: str) -> None:
    open_store(store_path).close()
    line = b'["s", 5, 0, 0.0, "k", "suggest", 0, "{}", null, null, null, null, null]\n'
    Path(store_path + ".tail").write_bytes(line)  # a gap: the open fails
    with pytest.raises(HPOStoreError):
        open_store(store_path)
    assert live_writer(store_path) is None
    Path(store_path + ".tail").write_bytes(b"")
    with open_store(store_path) as store:  # not "locked by pid <own pid>"
        assert _append(store) == 1


def test_a_second_writer_in_the_process_takes_over_an_abandoned_one(store_path: str) -> None:
    first = open_store(store_path)
    _append(first, trial=0)
    first.commit()
    _append(first, trial=1)  # appended, never committed nor closed (a re-run notebook cell)
    second = open_store(store_path)
    assert live_writer(store_path) is second
    with pytest.raises(HPOStoreError, match="took over"):
        _append(first, trial=9)
    assert _append(second, trial=2) == 3  # the first's events were flushed when it was closed
    second.close()
    assert live_writer(store_path) is None
    assert _seqs(store_path) == [1, 2, 3]


def test_an_unreachable_writer_is_taken_over(store_path: str) -> None:
    def abandon() -> None:
        store = open_store(store_path)
        store.cycle = store  # type: ignore[attr-defined]  # unreachable, not yet collected
        _append(store, trial=0)
        store.commit()

    abandon()
    with open_store(store_path) as store:
        assert _append(store, trial=1) == 2


def test_a_reader_in_the_same_process_reads_through_the_writer(store_path: str) -> None:
    writer = open_store(store_path)
    _append(writer, trial=0)
    writer.commit()
    _append(writer, trial=1)
    with open_store(store_path, read_only=True) as ro:
        assert ro.events("s").column("trial").to_pylist() == [0, 1]
        assert ro.sql("SELECT count(*) AS n FROM events").column("n").to_pylist() == [2]
        assert ro.studies() == ["s"]
        _append(writer, trial=2)
        writer.commit()
        assert ro.last_seq("s") == 3
    writer.close()
    with open_store(store_path, read_only=True) as ro:  # the writer is gone: the file itself
        assert ro.last_seq("s") == 3


# --- errors a user met --------------------------------------------------------------------
def test_a_truncated_duckdb_file_is_one_clear_error(store_path: str) -> None:
    with open_store(store_path) as store:
        for i in range(20):
            _append(store, trial=i)
    size = os.path.getsize(store_path)
    with open(store_path, "r+b") as f:
        f.truncate(size // 3)
    for read_only in (False, True):
        with pytest.raises(HPOStoreError, match="runs.duckdb is not a complete DuckDB file"):
            open_store(store_path, read_only=read_only)
    assert live_writer(store_path) is None


def test_a_store_in_a_missing_directory_says_so(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "nope" / "runs.duckdb")
    with pytest.raises(HPOStoreError, match="does not exist; create it first"):
        open_store(path)


def test_a_store_in_a_read_only_directory_says_so_and_still_reads(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", os.fspath(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    path = os.fspath(folder / "runs.duckdb")
    try:
        with open_store(path) as store:
            _append(store)
        subprocess.run(["mount", "-o", "remount,ro", os.fspath(folder)], check=True)
        for new in (path, os.fspath(folder / "new.duckdb")):
            with pytest.raises(HPOStoreError, match="not writable") as info:
                open_store(new)
            assert not isinstance(info.value, (duckdb.Error, OSError))
        assert _seqs(path) == [1]  # reading needs no write access
    finally:
        subprocess.run(["umount", "-l", os.fspath(folder)], check=False)


@pytest.mark.parametrize("name", ["bad\udcffname", "nul\x00name", ""])
def test_study_names_must_be_plain_text(fresh_store: EventLog, name: str) -> None:
    with pytest.raises(HPOStoreError, match="study name"):
        _append(fresh_store, name)
    assert fresh_store.studies() == []


# --- readers of a live store --------------------------------------------------------------
def test_new_files_use_a_storage_version_duckdb_1_1_reads(store_path: str) -> None:
    open_store(store_path).close()
    header = Path(store_path).read_bytes()[:20]
    assert header[8:12] == b"DUCK"
    assert int.from_bytes(header[12:20], "little") == 64  # storage version of DuckDB 1.1


def _poll(check: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def _count_with_duckdb(path: str) -> int | None:
    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.IOException:
        return None  # the writer is folding right now
    try:
        return int(con.execute("SELECT count(*) FROM events").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def test_plain_duckdb_and_hpostore_readers_read_a_running_study(store_path: str) -> None:
    writer = subprocess.Popen(
        [
            PYTHON,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                from hpostore import open_store
                store = open_store(sys.argv[1])
                i = 0
                while sys.stdin.readline().strip() == "next":
                    store.append("s", "suggest", elapsed=0.0, session="w", trial=i, config="{}")
                    store.commit()
                    print(i, flush=True)
                    i += 1
                store.close()
                """
            ),
            store_path,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    try:
        for n in (1, 2, 3):
            writer.stdin.write("next\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == str(n - 1)
            # the committed event reaches the table while the writer still runs
            assert _poll(lambda n=n: _count_with_duckdb(store_path) == n)  # type: ignore[misc]
        with open_store(store_path, read_only=True) as ro:  # hpostore's reader, another process
            assert ro.events("s").column("trial").to_pylist() == [0, 1, 2]
        held = duckdb.connect(store_path, read_only=True)  # a reader that stays connected
        try:
            for n in (4, 5):  # ... does not hold the writer back
                writer.stdin.write("next\n")
                writer.stdin.flush()
                assert writer.stdout.readline().strip() == str(n - 1)
        finally:
            held.close()
        assert _poll(lambda: _count_with_duckdb(store_path) == 5)
        writer.stdin.close()
        assert writer.wait(timeout=60) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert _seqs(store_path) == [1, 2, 3, 4, 5]


def test_a_forked_child_neither_writes_nor_flushes_the_parents_store(store_path: str) -> None:
    proc = _child(
        """
        import os, sys
        from pathlib import Path
        from hpostore import HPOStoreError, open_store
        path = sys.argv[1]
        store = open_store(path)
        store.append("s", "suggest", elapsed=0.0, session="p", trial=0, config="{}")
        store.flush()
        store.append("s", "suggest", elapsed=0.0, session="p", trial=1, config="{}")  # pending
        before = Path(path + ".tail").read_bytes()
        pid = os.fork()
        if pid == 0:  # the child exits normally: atexit runs, the store copy is collected
            try:
                store.commit()
            except HPOStoreError as exc:
                sys.exit(7 if "forked child" in str(exc) else 8)
            sys.exit(9)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 7, status
        assert Path(path + ".tail").read_bytes() == before  # the child wrote nothing
        store.close()
        """,
        store_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "failed" not in proc.stderr
    assert _seqs(store_path) == [1, 2]


def test_a_stop_that_lands_while_the_fold_thread_is_about_to_fold_ends_the_thread() -> None:
    """Regression: a stop() between the fold thread's wait and its ``wake.clear()`` used to be
    lost, so the thread waited forever and ``close()`` hung in its join (seen 1 run in ~60)."""
    from hpostore.store._folding import Foldable, FoldThread

    folds: list[float] = []

    class Table:
        def next_at(self) -> float:
            # The thread has passed its wait: stop now, from inside it (stop() does not join
            # the thread it is called from), exactly in the window the race needed.
            fold_thread.stop()
            return time.monotonic() - 1.0

    class Store:
        _table = Table()
        _unfolded: list[Row] = []

        def _fold(self, wait_s: float, *, background: bool = False) -> bool:
            folds.append(wait_s)
            return True

    store = Store()
    fold_thread = FoldThread(cast(Foldable, store), "test fold")  # a stand-in for the store
    thread = fold_thread._thread
    assert thread is not None
    fold_thread.wake()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the fold thread missed the stop and waits forever"
    assert folds == []  # a stopped thread leaves the last fold to close()
