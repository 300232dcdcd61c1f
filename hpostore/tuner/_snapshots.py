"""Resume from a snapshot of the fold plus the log's tail; write snapshots at close and as it grows.

The format and its checks are :mod:`hpostore.log.snapshot`; this module ties them to a store:
it reads the event a snapshot is anchored to and the events after it in one query, and falls
back to replaying the whole log whenever no snapshot is valid (the log always wins).

What a snapshot saves is the fold (replaying every event). The scheduler and searcher are then
caught up from the fold as before: built-in ones by ``restore(state)`` (Random/Grid in O(1),
model-based searchers in one pass over the results, no refit); a user's searcher or scheduler
with only the textbook methods is re-executed: each logged ``suggest``/``update`` call is made
again on it and checked against the log, once per tuner, whatever the snapshot. That costs
what those calls cost in the original run (a searcher whose ``sample_configuration`` takes
1 ms adds ~1 s per 1000 trials to the first ``run()`` after opening the study).
"""

from __future__ import annotations

import logging

import pyarrow as pa

from ..log import snapshot as snap
from ..log.events import Row
from ..store.base import EventLog
from ..study import REPLAY_COLUMNS, StudyState, replay_table

log = logging.getLogger("hpostore")

#: a snapshot is written whenever the log has grown by this many events since the last one (or
#: by 1/128 of the log, if more). The first is a full snapshot, the next ones layers on it with
#: what changed (O(events since) each), and after each one the live fold keeps only its trials
#: in flight as objects: this bounds a long study's memory (~1 KB a trial as objects, 4 events
#: a trial for random search: ~10k trials, ~12 MB) and the number of layers (~100 at 4M events).
EVERY_EVENTS = 40_000
#: errors that a damaged (but checksum-valid, e.g. hand-made) snapshot may raise when decoded
_DECODE_ERRORS = (ValueError, KeyError, TypeError, IndexError, pa.ArrowException, OSError,
                  snap.SnapshotChanged)  # fmt: skip


def _events_from(store: EventLog, study: str, seq: int) -> pa.Table:
    """The study's events with ``seq >= seq``, in order, with the anchor's columns."""
    query = f"SELECT {snap.ANCHOR_SELECT} FROM events WHERE study = ? AND seq >= ? ORDER BY seq"
    return store.sql(query, [study, seq])


def load_state(store: EventLog, study: str) -> tuple[StudyState, int]:
    """The study's fold: the newest valid snapshot plus the events after it, else a full
    replay. Returns (state, seq of the snapshot used, 0 when none was)."""
    directory = snap.snapshot_dir(store.path)
    cache: dict[str, object] = {}  # the files read so far (a chain shares its lower layers)
    for seq, path in snap.candidates(directory, study) if directory else []:
        try:
            loaded = snap.load(directory, study, seq, path, cache)  # type: ignore[arg-type]
        except _DECODE_ERRORS as exc:
            log.debug("snapshot %s ignored: %s", path, exc)
            continue
        if loaded is None:
            continue
        header, state = loaded
        table = _events_from(store, study, seq)
        if table.num_rows == 0:
            log.debug("snapshot %s ignored: the log of %r ends before seq %d", path, study, seq)
            continue
        first = [table.column(i)[0].as_py() for i in range(table.num_columns)]
        if first[0] != seq or snap.anchor(study, first) != header["anchor"]:
            log.debug("snapshot %s ignored: the log's event at seq %d differs", path, seq)
            continue
        if state.seq != seq:
            continue
        state = replay_table(study, table.slice(1), into=state)
        store.note_last_seq(study, state.seq)  # the query ran to the log's end
        return state, seq
    state = replay_table(study, store.events(study, columns=REPLAY_COLUMNS))
    store.note_last_seq(study, state.seq)
    return state, 0


class SnapshotWriter:
    """Writes a study's snapshots beside its store: whenever the log has grown by
    :data:`EVERY_EVENTS` since the last snapshot, and at the end of a session unless the last
    snapshot lags by less than 1/64 of the log (a session that ran a few trials on a large study
    does not write one). After each one written while the study runs, the snapshot holds the
    live fold's trials that are no longer in flight (``snapshot.rebase``)."""

    def __init__(self, store: EventLog, study: str, covered: int) -> None:
        self.directory = snap.snapshot_dir(store.path)
        self.study = study
        self.covered = covered  # the seq of the newest snapshot (0: none)
        #: the seq at which the next snapshot is due: the recorder compares each appended
        #: event's seq with it and calls :meth:`write` (one comparison per event)
        self.next_due = self._due(covered)

    @staticmethod
    def _due(seq: int) -> int:
        return seq + max(EVERY_EVENTS, seq // 128)

    def session_end(self, state: StudyState, row: Row) -> None:
        """Called once the session's ``end`` is committed."""
        if state.seq - self.covered >= max(1, state.seq // 64):
            self.write(state, row, rebase=False)  # the session is over: nothing grows

    def write(self, state: StudyState, row: Row, *, rebase: bool = True) -> None:
        """Snapshot ``state``, whose last event is ``row`` (the store's appended row); with
        ``rebase``, the snapshot then holds the state's settled trials (see the class doc)."""
        self.next_due = self._due(state.seq)
        if self.directory is None or row[1] != state.seq:
            return
        written = snap.write(self.directory, state, snap.anchor(self.study, row[1:]))
        if written is not None:
            self.covered = state.seq
            if rebase:
                snap.rebase(state, *written)
