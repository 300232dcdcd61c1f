"""A live study keeps its settled trials in its latest snapshot, not as objects: after each
snapshot the fold holds only what it is still changing (``snapshot.rebase``), the next snapshot
copies the columns of the previous one, and nothing the study does or answers changes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from hpostore import (
    ASHAScheduler,
    BasicScheduler,
    HPOTuner,
    HyperbandScheduler,
    MedianStoppingScheduler,
    RandomSearcher,
    SuccessiveHalvingScheduler,
    open_store,
    replay_table,
)
from hpostore.log import snapshot as snap
from hpostore.log._snaplayers import LayeredTrials
from hpostore.tuner import _snapshots
from hpostore.tuner._snapshots import load_state

SPACE = {"x": stats.uniform(0, 1), "y": stats.loguniform(1e-3, 1)}


def curve(x: float, y: float, max_epochs: int, report: Callable[[float, float], bool]) -> float:
    """Reports every epoch; fails in a region (failed trials are settled too)."""
    if x > 0.85:
        raise ValueError("a failing region")
    error = 1.0
    for epoch in range(1, int(max_epochs) + 1):
        error = (x - 0.3) ** 2 + y + 1.0 / epoch
        if report(epoch, error):
            break
    return error


def plain(x: float, y: float) -> float:
    if x > 0.85:
        raise ValueError("a failing region")
    return (x - 0.3) ** 2 + y


SCHEDULERS: dict[str, Callable[[], Any]] = {
    "random": lambda: BasicScheduler(RandomSearcher(SPACE, seed=1)),
    "asha-promotion": lambda: ASHAScheduler(RandomSearcher(SPACE, seed=2), eta=2, r_min=1, r_max=8),
    "asha-stopping": lambda: ASHAScheduler(RandomSearcher(SPACE, seed=3), eta=2, r_min=1,
                                           r_max=8, type="stopping"),
    "hyperband": lambda: HyperbandScheduler(RandomSearcher(SPACE, seed=4), eta=2, r_min=1, r_max=8),
    "median": lambda: MedianStoppingScheduler(RandomSearcher(SPACE, seed=5), grace_resource=2,
                                              resource_attr="max_epochs", r_max=8),
    "sh": lambda: SuccessiveHalvingScheduler(RandomSearcher(SPACE, seed=6), eta=2, r_min=1, r_max=8),
}  # fmt: skip


def _tuner(name: str, store: Any, study: str) -> HPOTuner:
    objective = plain if name == "random" else curve
    return HPOTuner(SCHEDULERS[name](), objective, store=store, study=study, verbose=False,
                    max_failures=None)  # fmt: skip


def _stream(store: Any, study: str) -> list[tuple[Any, ...]]:
    keep = ("suggest", "start", "report", "evaluate", "fail", "stop", "pause", "promote", "update")
    cols = ("kind", "trial", "config", "resource", "error", "payload")
    t = store.events(study)
    return [r for r in zip(*(t.column(c).to_pylist() for c in cols)) if r[0] in keep]


def _trials(state: Any) -> list[Any]:
    """Every trial as the fold holds it, less the parsed-config cache (filled when read)."""
    return [dataclasses.replace(t, _config=None) for t in state.trials.values()]


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_a_rebased_live_fold_runs_and_answers_as_one_never_rebased(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_snapshots, "EVERY_EVENTS", 40)  # a snapshot every 40 events
    rebases: list[int] = []
    real = snap.rebase

    def counted(state: Any, path: str, header: dict[str, Any]) -> bool:
        done = real(state, path, header)
        rebases.append(done)
        return done

    monkeypatch.setattr(snap, "rebase", counted)
    path = str(tmp_path / "log.duckdb")
    with _tuner(name, path, "s") as tuner:
        tuner.run(40)
        state = tuner.state
        cold, hot = state.trials.parts()
        # the settled trials live in the last snapshot's columns, not as objects
        assert sum(rebases) >= 3 and all(rebases)
        assert isinstance(cold, LayeredTrials) and len(hot) < len(state.trials)
        # each snapshot after the first is a layer with what changed, not a copy of it all
        assert len(cold.links) >= 3 and len(cold.layers[-1]) < len(state.trials) / 2
        full = replay_table("s", tuner.store.events("s"))
        assert state.evaluations == full.evaluations and state.calls == full.calls
        assert state.decisions == full.decisions
        assert state.summary() == full.summary()  # thaws everything: every trial equal
        assert _trials(state) == _trials(full)
        stream = _stream(tuner.store, "s")
    with _tuner(name, None, "ref") as ref:  # the same seeds, in memory: no snapshot at all
        ref.run(40)
        assert stream == _stream(ref.store, "ref")
    with open_store(path) as store:  # the snapshots a rebased fold wrote resume exactly
        for seq, file in snap.candidates(path + ".snapshots", "s"):
            resumed, used = load_state(store, "s")
            assert used == seq and resumed.summary() == full.summary()
            Path(file).rename(file + ".aside")


def test_a_resumed_study_snapshots_without_thawing_and_stays_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resumed study's next snapshots copy the columns it was resumed from: the trials a
    random search never reads stay columns while it runs on."""
    path = str(tmp_path / "log.duckdb")
    with _tuner("random", path, "s") as tuner:
        tuner.run(30)
    monkeypatch.setattr(_snapshots, "EVERY_EVENTS", 30)
    with _tuner("random", path, "s") as tuner:
        tuner.run(60)
        cold, hot = tuner.state.trials.parts()
        assert isinstance(cold, LayeredTrials) and len(hot) < 10 and len(cold) >= 55
        assert len(cold.links) >= 2  # layers on the snapshot the study was resumed from
        full = replay_table("s", tuner.store.events("s"))
        assert tuner.state.summary() == full.summary()
        stream = _stream(tuner.store, "s")
    with _tuner("random", None, "ref") as ref:
        ref.run(60)
        assert stream == _stream(ref.store, "ref")


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]


def test_a_damaged_or_missing_layer_is_never_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chain is used only whole: a layer with a flipped byte, a layer gone or replaced by
    another file makes every snapshot above it unusable; resume falls back to the chain below
    (or the full log) and stays exact."""
    monkeypatch.setattr(_snapshots, "EVERY_EVENTS", 25)
    path = str(tmp_path / "log.duckdb")
    with _tuner("asha-promotion", path, "s") as tuner:
        tuner.run(30)
    files = snap.candidates(path + ".snapshots", "s")  # newest first
    assert len(files) >= 4
    (mid_seq, mid), below = files[len(files) // 2], files[len(files) // 2 + 1][0]
    data = Path(mid).read_bytes()
    with open_store(path) as store:
        full = replay_table("s", store.events("s")).summary()
        assert load_state(store, "s")[1] == files[0][0]  # the whole chain, newest layer
        for i in range(0, len(data), max(1, len(data) // 60)):
            Path(mid).write_bytes(_flip(data, i))
            state, used = load_state(store, "s")
            assert used == below and state.summary() == full, f"byte {i} of a layer"
        Path(mid).write_bytes(data)
        Path(mid).rename(mid + ".aside")  # a layer gone: the layers above it are unusable
        state, used = load_state(store, "s")
        assert used == below and state.summary() == full
        # another snapshot file in its place (the right seq, not the file the next layer
        # was written on): refused by the checksum the next layer names
        Path(mid + ".aside").rename(mid)
        other = files[-1][1]  # the full snapshot at the bottom, renamed to the layer's seq
        Path(mid).write_bytes(Path(other).read_bytes())
        state, used = load_state(store, "s")
        assert used != files[0][0] and used <= mid_seq and state.summary() == full


def _layer(trials: list[tuple[int, str]]) -> Any:
    """A snapshot layer of ``trials`` ((id, status) each), as the reader sees it."""
    from hpostore.log import _snapcodec
    from hpostore.log._snaptables import ArrowTrials
    from hpostore.log.trial import TrialState, TrialStatus
    from hpostore.study import StudyState

    state = StudyState("s")
    for i, status in trials:
        state.trials[i] = TrialState(i, f'{{"x":{i}}}', TrialStatus(status))
    data = _snapcodec.encode(state, "anchor")
    assert data is not None
    _, tables = _snapcodec.read_header(data) or ({}, None)
    return ArrowTrials(tables)


def test_a_chain_finds_each_trial_in_its_newest_layer_and_refuses_ids_out_of_order() -> None:
    base = _layer([(0, "finished"), (1, "failed"), (2, "finished")])
    top = _layer([(1, "running"), (3, "suggested"), (4, "suggested")])  # 1 again, 3-4 new
    chain = LayeredTrials.of([base, top])
    assert len(chain) == 5 and chain.last == 4
    assert [t.trial for t in chain.thaw_all()] == [0, 1, 2, 3, 4]  # suggest order = id order
    assert [t.status.value for t in chain.thaw_all()] == [
        "finished", "running", "finished", "suggested", "suggested"
    ]  # fmt: skip
    assert chain.thaw(1).status.value == "running" and chain.thaw(7) is None  # type: ignore[union-attr]
    assert chain.has(2) and not chain.has(5) and not chain.has("2")
    assert chain.configs_of([4, 0, 1]) == ['{"x":4}', '{"x":0}', '{"x":1}']
    assert LayeredTrials.of([base]).extend(top).thaw(1).status.value == "running"  # type: ignore[union-attr]
    # a layer that brings a new trial whose id is below the chain's: suggest order would break
    with pytest.raises(ValueError, match="below an earlier layer"):
        LayeredTrials.of(
            [base, _layer([(1, "running"), (5, "suggested")]), _layer([(4, "suggested")])]
        )
    with pytest.raises(ValueError, match="do not increase"):
        LayeredTrials.of([base, _layer([(9, "suggested"), (8, "suggested")])])


def test_a_chain_of_ids_with_gaps_is_found_by_search_and_one_without_by_position() -> None:
    sparse = LayeredTrials.of(
        [_layer([(10, "finished"), (20, "finished")]), _layer([(20, "running"), (40, "suggested")])]
    )
    assert len(sparse) == 3 and sparse.last == 40
    assert [t.trial for t in sparse.thaw_all()] == [10, 20, 40]
    assert sparse.thaw(20).status.value == "running"  # type: ignore[union-attr]
    assert not any(sparse.has(i) for i in (0, 1, 2, 11, 30, 41, -1))
    assert sparse.configs_of([40, 10]) == ['{"x":40}', '{"x":10}']
    dense = LayeredTrials.of([_layer([(0, "finished"), (1, "finished")])]).extend(
        _layer([(1, "running"), (2, "suggested")])
    )
    assert dense._ids is None  # 6 bytes a trial: the position is the id
    assert [t.status.value for t in dense.thaw_all()] == ["finished", "running", "suggested"]
    assert not dense.has(-1) and not dense.has(3) and dense.has(2.0) and dense.has(True)
    gap = dense.extend(_layer([(5, "suggested")]))  # a gap: the ids are kept from then on
    assert gap._ids is not None and gap.has(5) and not gap.has(3) and gap.has(0)


@pytest.mark.parametrize(("name", "thaws_old"), [("asha-promotion", True), ("hyperband", False)])
def test_thawed_layers_beyond_the_cache_are_released_and_nothing_changes(
    name: str, thaws_old: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promotions thaw trials from old layers; only the layers used last keep their columns."""
    from hpostore.log import _snaplayers
    from hpostore.log._snaptables import ArrowTrials

    monkeypatch.setattr(_snapshots, "EVERY_EVENTS", 40)
    monkeypatch.setattr(_snaplayers, "COLD_CACHE_BYTES", 1)  # the layer used last, no other
    released: list[int] = []
    real = ArrowTrials.release

    def counted(self: ArrowTrials) -> None:
        released.append(len(self))
        real(self)

    monkeypatch.setattr(ArrowTrials, "release", counted)
    path = str(tmp_path / "log.duckdb")
    with _tuner(name, path, "s") as tuner:
        tuner.run(60)
        cold, _ = tuner.state.trials.parts()
        assert isinstance(cold, LayeredTrials) and len(cold.layers) >= 4
        assert len([layer for layer in cold.layers if layer.loaded_bytes()]) <= 1
        assert bool(released) == thaws_old  # promotions reached into layers, released again
        stream = _stream(tuner.store, "s")
        full = replay_table("s", tuner.store.events("s"))
        assert tuner.state.summary() == full.summary()
    with _tuner(name, None, "ref") as ref:
        ref.run(60)
        assert stream == _stream(ref.store, "ref")


def test_a_reader_behind_a_snapshot_gets_the_prefix_without_thawing_the_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_snapshots, "EVERY_EVENTS", 40)
    path = str(tmp_path / "log.duckdb")
    with _tuner("asha-promotion", path, "s") as tuner:
        tuner.run(50)
    with open_store(path) as store:
        state, used = load_state(store, "s")
        assert used > 0
        full = replay_table("s", store.events("s")).evaluations
        assert len(full) > 20
        for start in (0, 1, len(full) // 2, len(full) - 1, len(full), len(full) + 3):
            assert state.evaluations_since(start) == full[start:]
        assert "evaluations" in (state._cold_lists or {})  # still the snapshot's columns
        assert state.evaluations == full  # and thawed on a full read
