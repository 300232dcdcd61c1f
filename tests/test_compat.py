"""A golden log written by hpostore 0.1.0 (format version 1) stays readable, forever."""

from __future__ import annotations

from pathlib import Path

from hpostore import Event, replay
from hpostore.log.events import decode_line, rows_to_table
from hpostore.study import replay_table

GOLDEN = Path(__file__).parent / "compat" / "golden_v1.jsonl"


def test_golden_v1_log_replays_to_its_known_state() -> None:
    events = [
        Event.from_row(decode_line(line)) for line in GOLDEN.read_bytes().splitlines(keepends=True)
    ]
    state = replay("golden", events)
    assert state.spec is not None and state.spec["format_version"] == 1 and state.spec["seed"] == 42
    assert state.incumbent == {"learning_rate": 0.1, "batch_size": 128, "act": "relu"}
    assert state.incumbent_error == 0.05
    assert (len(state.trials), state.n_finished, state.n_failed) == (7, 6, 1)
    assert state.finished_elapsed == [1.5, 3.0, 4.5, 6.0, 7.5, 10.5]
    assert [t.status.value for t in state.trials.values()].count("failed") == 1
    assert state.last_kind == "end" and not state.session_open
    table_state = replay_table("golden", rows_to_table([e.to_row() for e in events]))
    assert table_state.summary() == state.summary()


def test_random_searcher_draws_are_pinned_across_versions() -> None:
    """A study started by one version must resume identically under the next one."""
    from scipy import stats

    from hpostore import RandomSearcher

    space = {
        "lr": stats.loguniform(1e-3, 1),
        "bs": stats.randint(32, 256),
        "u": stats.uniform(-1, 2),
        "z": stats.norm(0, 1),
        "g": stats.gamma(2.0),
        "act": ["relu", "tanh"],
    }
    searcher = RandomSearcher(space, seed=0)
    first, second = searcher.sample_configuration(), searcher.sample_configuration()
    assert first == {
        "lr": 0.1904445428739841,
        "bs": 246,
        "u": -0.9377575839113167,
        "z": 0.8287902157136052,
        "g": 3.253159633596354,
        "act": "relu",
    }
    assert second == {
        "lr": 0.016009341872900006,
        "bs": 133,
        "u": -0.06396638138070132,
        "z": -0.44227815146220634,
        "g": 1.3196387440808428,
        "act": "relu",
    }
