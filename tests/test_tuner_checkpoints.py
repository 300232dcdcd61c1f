"""Checkpoint directories: study names are data (never paths), and an opt-in cleanup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from scipy import stats

from hpostore import ASHAScheduler, BasicScheduler, HPOTuner, RandomSearcher
from hpostore.tuner import encode_study

SPACE = {"x": stats.uniform(0, 1)}
NAMES = ["../escape", "/abs", "..", ".", "a/b", "a\\b", "~x", "s%2Fx", "é" * 120, "x" * 300]


@pytest.mark.parametrize("name", NAMES)
def test_every_study_name_stays_under_the_checkpoint_root(tmp_path: Path, name: str) -> None:
    root = tmp_path / "ck"
    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=0)), lambda x: x, study=name,
                     checkpoint_root=root, verbose=False)  # fmt: skip
    directory = Path(tuner.checkpoint_dir(3)).resolve()
    assert directory.parent.parent == root.resolve()
    assert directory.name == "trial-3" and len(directory.parent.name) <= 100


def test_encoded_names_are_distinct_and_plain_names_unchanged() -> None:
    encoded = [encode_study(n) for n in NAMES + ["s", "lenet-1", "a.b"]]
    assert len(set(encoded)) == len(encoded)
    assert encoded[-3:] == ["s", "lenet-1", "a.b"]
    assert all("/" not in e and "\\" not in e and e not in (".", "..") for e in encoded)


def _saves(x: float, checkpoint_dir: str) -> float:
    Path(checkpoint_dir, "weights").write_text(str(x))
    if x > 0.8:
        raise ValueError("diverged")
    return (x - 0.3) ** 2


def _trials_with_checkpoints(root: Path) -> set[int]:
    (study,) = os.listdir(root)
    return {int(name[6:]) for name in os.listdir(root / study)}


def test_delete_checkpoints_keeps_only_the_incumbents(tmp_path: Path) -> None:
    root = tmp_path / "ck"
    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=0)), _saves, verbose=False,
                     checkpoint_root=root, delete_checkpoints=True, max_failures=None)  # fmt: skip
    tuner.run(8)
    assert _trials_with_checkpoints(root) == {tuner.state.incumbent_trial}
    kept = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=0)), _saves, verbose=False,
                    checkpoint_root=tmp_path / "kept", max_failures=None)  # fmt: skip
    kept.run(8)  # default: nothing deleted
    assert len(_trials_with_checkpoints(tmp_path / "kept")) == len(kept.state.trials)


def _epochs(x: float, max_epochs: int, checkpoint_dir: str) -> float:
    Path(checkpoint_dir, f"epoch-{max_epochs}").write_text(str(x))
    return (x - 0.3) ** 2 + 1 / max_epochs


def test_delete_checkpoints_keeps_those_a_scheduler_may_resume(tmp_path: Path) -> None:
    root = tmp_path / "ck"
    scheduler = ASHAScheduler(RandomSearcher(SPACE, seed=3), eta=2, r_min=1, r_max=4,
                              type="promotion")  # fmt: skip
    tuner = HPOTuner(scheduler, _epochs, verbose=False, checkpoint_root=root,
                     delete_checkpoints=True)  # fmt: skip
    tuner.run(40)
    state = tuner.state
    paused = {t.trial for t in state.trials.values() if t.status.value == "paused"}
    kept = _trials_with_checkpoints(root)
    assert paused and state.incumbent_trial in kept and paused <= kept
    assert kept < set(state.trials)  # something was deleted
