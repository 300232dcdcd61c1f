"""Snapshots of the fold: resume = newest valid snapshot + the log's tail, and any snapshot that
is corrupt, stale, of another study/log or of another version is ignored (the log wins)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from hpostore import (
    ASHAScheduler,
    BasicScheduler,
    HPOSearcher,
    HPOTuner,
    RandomSearcher,
    open_store,
    replay_table,
)
from hpostore.log import _snapcodec
from hpostore.log import snapshot as snap
from hpostore.tuner import _snapshots
from hpostore.tuner._snapshots import load_state

SPACE = {"x": stats.uniform(0, 1), "y": stats.loguniform(1e-3, 1)}
STUDY = "s/../ü 1"  # names are data: the snapshot files are named by a hash


def curve(x: float, y: float, max_epochs: int, report: Callable[[float, float], bool]) -> float:
    """Reports every epoch; fails for some configs (fail events, messages in the fold)."""
    if x > 0.75:
        raise ValueError("a failing region")
    error = 1.0
    for epoch in range(1, int(max_epochs) + 1):
        error = (x - 0.3) ** 2 + y + 1.0 / epoch
        if report(epoch, error):
            break
    return error


def _asha() -> ASHAScheduler:
    return ASHAScheduler(RandomSearcher(SPACE, seed=3), eta=2, r_min=1, r_max=4)


def _tuner(store: Any, study: str = STUDY) -> HPOTuner:
    return HPOTuner(_asha(), curve, store=store, study=study, verbose=False, max_failures=None)


def _stream(store: Any, study: str = STUDY) -> list[tuple[Any, ...]]:
    keep = ("suggest", "start", "report", "evaluate", "fail", "stop", "pause", "promote", "update")
    cols = ("kind", "trial", "config", "resource", "error")
    t = store.events(study)
    return [r for r in zip(*(t.column(c).to_pylist() for c in cols)) if r[0] in keep]


def _full(store: Any, study: str = STUDY) -> dict[str, Any]:
    return replay_table(study, store.events(study)).summary()


def _files(path: Path | str, study: str = STUDY) -> list[tuple[int, str]]:
    directory = snap.snapshot_dir(str(path))
    assert directory is not None
    return snap.candidates(directory, study)


@pytest.fixture(params=["duckdb", "parquet"])
def store_path(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "log.duckdb") if request.param == "duckdb" else f"{tmp_path}/log/"


def test_resume_from_a_snapshot_is_exact(store_path: str) -> None:
    with _tuner(store_path) as tuner:
        tuner.run(10)
    [(seq, _)] = _files(store_path)
    with open_store(store_path) as store:
        state, used = load_state(store, STUDY)
        assert used == seq == state.seq  # the snapshot covers the whole log
        assert state.summary() == _full(store)
        assert state.n_failed and state.decisions and any(t.curve for t in state.trials.values())
    with _tuner(store_path) as tuner:  # resumed from the snapshot, then more trials
        tuner.run(25)
        resumed = _stream(tuner.store)
    with _tuner(None, "ref") as ref:  # one uninterrupted run
        ref.run(25)
        assert resumed == _stream(ref.store, "ref")


def test_an_older_snapshot_plus_a_long_tail_is_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_snapshots, "EVERY_EVENTS", 20)  # snapshots while the study runs
    path = tmp_path / "log.duckdb"
    with _tuner(str(path)) as tuner:
        tuner.run(30)
    files = _files(path)
    assert len(files) >= 2  # a chain: a full snapshot and the layers on it
    os.unlink(files[0][1])  # the newest gone: the older one and the events after it
    with open_store(str(path)) as store:
        state, used = load_state(store, STUDY)
        assert 0 < used == files[1][0] < store.last_seq(STUDY)
        assert state.summary() == _full(store)


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]


def test_every_flipped_byte_is_ignored_and_resume_stays_exact(tmp_path: Path) -> None:
    path = tmp_path / "log.duckdb"
    with _tuner(str(path)) as tuner:
        tuner.run(3)
    [(_, file)] = _files(path)
    data = Path(file).read_bytes()
    assert snap.read(file, STUDY) is not None
    for i in range(len(data)):  # the gate every snapshot passes: magic, checksum, version
        Path(file).write_bytes(_flip(data, i))
        assert snap.read(file, STUDY) is None, f"byte {i} flipped was not noticed"
    with open_store(str(path)) as store:
        full = _full(store)
        for i in range(0, len(data), max(1, len(data) // 25)):  # end to end on a sample
            Path(file).write_bytes(_flip(data, i))
            state, used = load_state(store, STUDY)
            assert used == 0 and state.summary() == full
        Path(file).write_bytes(data[: len(data) // 2])  # a torn file
        assert load_state(store, STUDY)[1] == 0
    Path(file).write_bytes(_flip(data, len(data) - 1))
    with _tuner(str(path)) as tuner:
        tuner.run(12)
        resumed = _stream(tuner.store)
    with _tuner(None, "ref") as ref:
        ref.run(12)
        assert resumed == _stream(ref.store, "ref")


def test_a_snapshot_of_another_version_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log.duckdb"
    monkeypatch.setattr(_snapcodec, "VERSION", snap.VERSION + 1)  # the codec writes it
    with _tuner(str(path)) as tuner:
        tuner.run(4)
    monkeypatch.undo()
    assert _files(path)
    with open_store(str(path)) as store:
        state, used = load_state(store, STUDY)
        assert used == 0 and state.summary() == _full(store)


def test_a_snapshot_of_another_log_or_study_is_ignored(tmp_path: Path) -> None:
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    for path in (a, b):  # the same study, seed and objective: the same configs, other sessions
        with _tuner(str(path)) as tuner:
            tuner.run(5)
        with _tuner(str(path), "other") as tuner:
            tuner.run(3)
    shutil.rmtree(str(b) + ".snapshots")
    shutil.copytree(str(a) + ".snapshots", str(b) + ".snapshots")  # a's snapshots beside b
    [(_, other)] = _files(b, "other")
    [(seq, mine)] = _files(b)
    os.replace(other, mine.replace(f".{seq:020d}", f".{10**9:020d}"))  # renamed to STUDY's
    with open_store(str(b)) as store:
        for study in (STUDY, "other"):
            state, used = load_state(store, study)
            assert used == 0 and state.summary() == _full(store, study)
    with open_store(str(a)) as store:
        assert load_state(store, STUDY)[1] > 0  # in its own log it is valid


def test_a_snapshot_past_the_end_of_the_log_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "log.duckdb"
    with _tuner(str(path)) as tuner:
        tuner.run(4)
    shutil.copy(path, tmp_path / "prefix.duckdb")
    with _tuner(str(path)) as tuner:
        tuner.run(9)
    os.replace(tmp_path / "prefix.duckdb", path)  # the log lost its suffix, the snapshot not
    (newest, _), (older, _) = _files(path)
    with open_store(str(path)) as store:
        assert store.last_seq(STUDY) == older < newest
        state, used = load_state(store, STUDY)  # the newest is ignored, the older one fits
        assert used == older and state.summary() == _full(store)


class TextbookSearcher(HPOSearcher):
    """A user's searcher: only the textbook methods, so it is resumed by re-execution."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.best = 1.0

    def sample_configuration(self) -> dict[str, Any]:
        return {"x": float(self.rng.uniform(0, self.best)), "y": 0.5}

    def update(self, config: dict[str, Any], error: float, additional_info: Any = None) -> None:
        self.best = min(self.best, max(config["x"], 0.1))


def _textbook(store: Any, study: str = "t") -> HPOTuner:
    scheduler = BasicScheduler(TextbookSearcher(seed=1))
    return HPOTuner(scheduler, lambda x, y: (x - 0.3) ** 2 + y, store=store, study=study,
                    verbose=False)  # fmt: skip


def test_a_user_searcher_resumes_by_reexecution_from_a_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "log.duckdb"
    with _textbook(str(path)) as tuner:
        tuner.run(6)
    with open_store(str(path)) as store:
        assert load_state(store, "t")[1] > 0
    with _textbook(str(path)) as tuner:  # re-executes the 6 logged suggest/update calls
        tuner.run(15)
        resumed = _stream(tuner.store, "t")
    with _textbook(None, "ref") as ref:
        ref.run(15)
        assert resumed == _stream(ref.store, "ref")
