"""A snapshot's trials and lists stay columns until read: what a resume asks is answered
without thawing them, what it thaws equals the full replay, and a snapshot whose columns are
not the ones this version writes is ignored (the log wins)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from hpostore import (
    ASHAScheduler,
    HPOTuner,
    RandomSearcher,
    SnapshotChanged,
    open_store,
    replay_table,
)
from hpostore.log import _snapcodec
from hpostore.log import snapshot as snap
from hpostore.log._coldfold import TrialMap
from hpostore.log.events import COLUMNS
from hpostore.study import StudyState
from hpostore.tuner import _snapshots
from hpostore.tuner._snapshots import load_state

SPACE = {"x": stats.uniform(0, 1)}


def objective(x: float, max_epochs: int, report: Callable[[float, float], bool]) -> float:
    if x > 0.8:
        raise ValueError("a failing region")
    error = 1.0
    for epoch in range(1, int(max_epochs) + 1):
        error = (x - 0.3) ** 2 + 1.0 / epoch
        if report(epoch, error):
            break
    return error


def _run(path: Path, n: int) -> None:
    asha = ASHAScheduler(RandomSearcher(SPACE, seed=5), eta=2, r_min=1, r_max=4)  # promotions
    with HPOTuner(asha, objective, store=str(path), study="s", verbose=False,
                  max_failures=None) as tuner:  # fmt: skip
        tuner.run(n)


def _full(store: Any) -> StudyState:
    return replay_table("s", store.events("s"))


def test_a_resumed_fold_answers_without_thawing_and_thaws_to_the_full_replay(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.duckdb"
    _run(path, 14)
    with open_store(str(path)) as store:
        state, used = load_state(store, "s")
        full = _full(store)
    assert used == full.seq
    trials = state.trials
    assert isinstance(trials, TrialMap) and trials._cold is not None
    # the questions every resume asks: counts, next id, pending updates, open trials
    assert len(trials) == len(full.trials) and state.n_finished == full.n_finished
    assert state.next_trial == full.next_trial and state.not_updated() == full.not_updated()
    assert state.unfinished() == full.unfinished()
    assert trials._cold is not None and state._cold_lists and "finished" in state._cold_lists
    # one trial at a time, equal to the replay's; ids it does not hold are not there
    some = sorted(full.trials)[:: max(1, len(full.trials) // 4)]
    assert [trials[i] for i in some] == [full.trials[i] for i in some]
    assert trials.get(10**6) is None and 10**6 not in trials and None not in trials
    last = some[-1]  # looked up as a dict would match it: a numpy int, a float that is an int
    assert np.int64(last) in trials and float(last) in trials and str(last) not in trials
    assert trials.get(np.int64(last)) == full.trials[last] and trials.get(last + 0.5) is None
    with pytest.raises(KeyError):
        trials[10**6]
    with pytest.raises(TypeError):
        del trials[some[0]]
    assert trials._cold is not None  # still columns
    assert state.summary() == full.summary()  # everything thawed, in suggest order
    assert trials._cold is None and list(trials) == list(full.trials)


def test_the_tail_after_a_snapshot_changes_its_trials_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promotions after the snapshot resume trials it holds (a ``start`` with a new config):
    the thawed trials change, while the results logged before keep the config they ran with."""
    monkeypatch.setattr(_snapshots, "EVERY_EVENTS", 25)
    path = tmp_path / "log.duckdb"
    _run(path, 30)
    files = snap.candidates(str(path) + ".snapshots", "s")
    with open_store(str(path)) as store:
        for seq, file in files:  # each kept snapshot, older ones by hiding the newer
            state, used = load_state(store, "s")
            full = _full(store)
            assert used == seq < full.seq or used == seq == full.seq
            assert state.evaluations == full.evaluations
            assert state.summary() == full.summary()
            Path(file).rename(file + ".aside")


def _rewrite(file: str, change: Callable[[dict[str, pa.Table]], None]) -> None:
    """The snapshot at ``file`` with its tables changed by ``change``, checksums made valid."""
    header, source = _snapcodec.read_header(Path(file).read_bytes()) or ({}, None)
    assert source is not None
    tables = {name: source[name] for name, *_ in header["tables"]}
    change(tables)
    blobs = {name: _ipc(t) for name, t in tables.items()}
    header["tables"] = [[name, b.size, hashlib.sha256(b).hexdigest(), tables[name].num_rows]
                        for name, b in blobs.items()]  # fmt: skip
    head = json.dumps(header).encode()
    rest = b"".join(bytes(b) for b in blobs.values()) + head + struct.pack("<I", len(head))
    Path(file).write_bytes(_snapcodec.MAGIC + hashlib.sha256(rest).digest() + rest)


def _ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.update(calls=t["calls"].cast(pa.schema([("code", pa.int32()),
                                                            ("trial", pa.int64())]))),
        lambda t: t.update(trials=t["trials"].drop_columns(["message"])),
        lambda t: t.pop("decisions"),
        lambda t: t.update(keys=t["keys"].set_column(
            1, "status", pa.array(["bogus"] * t["keys"].num_rows).dictionary_encode())),
    ],
    ids=["a column of another type", "a missing column", "a missing table", "a bogus status"],
)  # fmt: skip
def test_a_checksum_valid_snapshot_with_other_columns_is_ignored(
    tmp_path: Path, change: Callable[[dict[str, pa.Table]], None]
) -> None:
    path = tmp_path / "log.duckdb"
    _run(path, 6)
    [(_, file)] = snap.candidates(str(path) + ".snapshots", "s")
    _rewrite(file, change)
    assert snap.read(file, "s") is not None  # it passes the checksum
    with open_store(str(path)) as store:
        state, used = load_state(store, "s")
        assert used == 0 and state.summary() == _full(store).summary()


def test_trial_ids_out_of_order_are_decoded_at_once() -> None:
    """The fold accepts any new trial id; a snapshot whose ids do not increase is decoded
    eagerly (no binary search over them) and equals its fold."""
    state = StudyState("s")
    rows = [
        ("study", None, None, json.dumps({"format_version": 1, "space": {}})),
        ("session", None, None, None),
        ("suggest", 5, '{"x":1}', None),
        ("suggest", 2, '{"x":2}', None),
        ("start", 2, None, None),
        ("report", 2, None, None),
        ("evaluate", 2, None, None),
        ("start", 5, None, None),
    ]
    for seq, (kind, trial, config, payload) in enumerate(rows, 1):
        state.apply_row(("s", seq, seq, float(seq), "abc", kind, trial, config, 1.0,
                         0.5 if kind in ("evaluate", "report") else None, None, "w", payload))  # fmt: skip
    assert list(state.trials) == [5, 2] and len(COLUMNS) == 13
    data = _snapcodec.encode(state, "anchor")
    assert data is not None
    header, tables = _snapcodec.read_header(data) or ({}, None)
    assert tables is not None
    decoded = _snapcodec.decode(header, tables)
    assert isinstance(decoded.trials, TrialMap) and decoded.trials._cold is None
    assert decoded.summary() == state.summary()


def _open_fds(path: str) -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == os.path.realpath(path))


def test_a_resume_reads_only_the_tables_it_needs_and_checks_each(tmp_path: Path) -> None:
    path = tmp_path / "log.duckdb"
    _run(path, 10)
    [(_, file)] = snap.candidates(str(path) + ".snapshots", "s")
    with open_store(str(path)) as store:
        state, used = load_state(store, "s")
        full = _full(store)
        assert used and _open_fds(file) == 0  # reopened when a table is first read
        tables = state.trials._cold.layers[0].tables  # type: ignore[union-attr]
        assert set(tables._loaded) == set()  # the keys table was read, kept as compact arrays
        assert state.n_finished == full.n_finished and state.not_updated() == full.not_updated()
        assert set(tables._loaded) == set()
        first = next(iter(full.trials))
        assert state.trials[first] == full.trials[first]
        assert set(tables._loaded) == {"trials", "curves", "results"}
        # the file changes in place after it was checked: a table read later is refused
        data = bytearray(Path(file).read_bytes())
        entries = snap.read(file, "s")["tables"]  # type: ignore[index]
        data[40 + sum(e[1] for e in entries) - 20] ^= 0xFF  # in the last table (decisions)
        Path(file).write_bytes(bytes(data))
        with pytest.raises(SnapshotChanged, match="changed on disk after the study was opened"):
            len(state.decisions)
        Path(file).write_bytes(bytes(data[: len(data) // 2]))  # cut short
        with pytest.raises(SnapshotChanged, match="cut short"):
            len(state.evaluations)
        os.unlink(file)  # removed
        with pytest.raises(SnapshotChanged, match="can no longer be read"):
            len(state.calls)
        assert _open_fds(file) == 0
