"""A golden log written by hpostore 0.1.0 (format version 1) stays readable, forever."""

from __future__ import annotations

from pathlib import Path

from hpostore import Event, replay
from hpostore.events import decode_line, rows_to_table
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
