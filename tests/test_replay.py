"""Replay is a pure fold: live state == replay(log); prefixes; encode/decode round trips."""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from hpostore import (
    BasicScheduler,
    Event,
    HPOTuner,
    Kind,
    RandomSearcher,
    TooManyFailures,
    open_store,
    replay,
    replay_table,
)
from hpostore.log.events import decode_line, encode_line, rows_to_table, table_to_events

text = st.text(max_size=20)
maybe_float = st.none() | st.floats(allow_nan=False, allow_infinity=False)
events = st.builds(
    Event,
    study=text,
    seq=st.integers(1, 2**62),
    ts=st.integers(0, 2**52),
    elapsed=st.floats(0, 1e9),
    session=text,
    kind=st.sampled_from([k.value for k in Kind]),
    trial=st.none() | st.integers(0, 2**62),
    config=st.none() | st.dictionaries(text, st.integers() | text).map(json.dumps),
    resource=maybe_float,
    error=maybe_float,
    runtime=maybe_float,
    worker=st.none() | text,
    payload=st.none() | st.dictionaries(text, text).map(json.dumps),
)


@given(events)
def test_event_line_round_trip(event: Event) -> None:
    assert Event.from_row(decode_line(encode_line(event.to_row()))) == event


@given(st.lists(events, max_size=20))
def test_event_arrow_round_trip(evs: list[Event]) -> None:
    table = rows_to_table([e.to_row() for e in evs])
    assert table_to_events(pa.Table.from_batches(table.to_batches(), schema=table.schema)) == evs


# A scripted objective: each trial's outcome is drawn by hypothesis (value, raise, NaN, None).
outcomes = st.lists(
    st.sampled_from(["ok", "ok", "ok", "raise", "nan", "none", "str"]) | st.floats(-5, 5).map(str),
    min_size=1,
    max_size=12,
)


def _scripted(script: list[str], seen: list[dict[str, Any]], tuner_ref: list[HPOTuner]):
    calls = iter(script * 100)

    def objective(x: float, y: int) -> Any:
        state = tuner_ref[0].state
        seen.append(state.summary())  # the live state the objective runs under
        outcome = next(calls)
        if outcome == "raise":
            raise RuntimeError("boom")
        if outcome == "nan":
            return math.nan
        if outcome == "none":
            return None
        if outcome == "str":
            return "0.3"
        return (x - 0.5) ** 2 + y / 10

    return objective


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(script=outcomes, n=st.integers(1, 6), durability=st.sampled_from(["durable", "batched"]))
def test_live_state_equals_replay_and_prefixes_replay_to_what_was_seen(
    tmp_path_factory: Any, script: list[str], n: int, durability: str
) -> None:
    path = str(tmp_path_factory.mktemp("replay") / "runs.duckdb")
    seen: list[dict[str, Any]] = []
    ref: list[HPOTuner] = []
    space = {"x": stats.uniform(0, 1), "y": stats.randint(0, 5)}
    store = open_store(path, durability=durability)
    tuner = HPOTuner(
        BasicScheduler(RandomSearcher(space, seed=3)),
        _scripted(script, seen, ref),
        store=store,
        study="p",
        verbose=False,
        max_failures=8,
    )
    ref.append(tuner)
    try:
        tuner.run(n)
    except TooManyFailures:
        assert tuner.state.n_failed >= 8 and tuner.state.last_kind == "end"
    table = store.events("p")
    assert replay_table("p", table).summary() == tuner.state.summary()
    assert replay("p", table_to_events(table)).summary() == tuner.state.summary()
    for snapshot in seen:  # a prefix of the log replays to the state seen at that point
        assert replay_table("p", table.slice(0, snapshot["seq"])).summary() == snapshot
    store.close()
    with open_store(path) as again:  # and a fresh process-equivalent reopen replays the same
        assert replay_table("p", again.events("p")).summary() == tuner.state.summary()
