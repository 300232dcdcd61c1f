"""The DuckDB store's fold instance runs under a memory limit, and large folds still fit."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb
import pytest

from hpostore import open_store
from hpostore.log.events import Row
from hpostore.store import _folding
from hpostore.store._duckdb_io import create_store_file
from hpostore.store._folding import TableWriter
from hpostore.store.duckdb import DuckDBStore

TS = 1_700_000_000_000_000


def _rows(first: int, n: int, study: str = "big") -> list[Row]:
    config = '{"x": 0.123456789, "y": 0.00123456}'
    return [
        (study, seq, TS + seq, 1.0, "s" * 16, "evaluate", seq, config, None, 0.5, 0.001, None, None)
        for seq in range(first, first + n)
    ]


def _setting(con: duckdb.DuckDBPyConnection, name: str) -> str:
    return str(con.execute(f"SELECT current_setting('{name}')").fetchall()[0][0])


def _limit_text(limit: int) -> str:
    """How DuckDB spells the memory limit ``limit`` (bytes) that the fold sets."""
    ref = duckdb.connect(":memory:")
    try:
        ref.execute(f"SET memory_limit = '{limit // 1024}KiB'")
        return _setting(ref, "memory_limit")
    finally:
        ref.close()


def _table_rows(path: str) -> tuple[int, int, int]:
    con = duckdb.connect(path, read_only=True)
    try:
        row = con.execute("SELECT count(*), count(DISTINCT seq), max(seq) FROM events").fetchall()
        return row[0]
    finally:
        con.close()


def test_fold_instance_runs_under_the_limit(tmp_path: Path) -> None:
    path = str(tmp_path / "s.duckdb")
    with open_store(path, durability="batched") as store:
        assert isinstance(store, DuckDBStore)
        for trial in range(50):
            store.append("s", "suggest", elapsed=0.0, session="t", trial=trial, config="{}")
        store.flush()  # a fold
        table = store._table
        with table.mu:
            con = table.connect(5.0)
            try:
                assert _setting(con, "memory_limit") == _limit_text(_folding.FOLD_MEMORY_LIMIT)
                assert int(_setting(con, "threads")) == _folding.FOLD_THREADS
                spill = _setting(con, "temp_directory")
                # spilled blocks go to a directory of its own in the system's temporary
                # directory, not next to the store nor into the working directory
                assert os.path.dirname(spill) == tempfile.gettempdir()
                assert not spill.startswith(str(tmp_path))
                count = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
            finally:
                table.disconnect()
        assert count == 50
        assert table.limited


def test_large_fold_fits_under_the_limit(tmp_path: Path) -> None:
    path = str(tmp_path / "big.duckdb")
    create_store_file(path)
    table = TableWriter(path, path + ".tail")
    try:
        table.recover([])
        assert table.fold(_rows(1, 200_000), 5.0, background=False)
        # the limit held (no fallback), and the instance is back at its small limit
        assert table.limited
        assert table._limit == _folding.FOLD_MEMORY_LIMIT
        # recovery at open: every tail row the table does not hold, in one insert
        table.recover(_rows(1, 300_000))
        assert table.limited
        assert table.fold(_rows(300_001, 4_000), 5.0, background=False)
    finally:
        table.close()
    assert _table_rows(path) == (304_000, 304_000, 304_000)


def test_out_of_memory_retries_without_a_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fold DuckDB cannot fit under the limit (a limit far too small here) still folds."""
    monkeypatch.setattr(_folding, "FOLD_MEMORY_LIMIT", 1 << 20)
    monkeypatch.setattr(_folding, "FOLD_MEMORY_PER_BYTE", 0)
    path = str(tmp_path / "tight.duckdb")
    create_store_file(path)
    table = TableWriter(path, path + ".tail")
    try:
        table.recover([])
        assert table.fold(_rows(1, 200_000), 5.0, background=False)
        assert not table.limited
        assert table.fold(_rows(200_001, 1_000), 5.0, background=False)
    finally:
        table.close()
    assert _table_rows(path) == (201_000, 201_000, 201_000)
