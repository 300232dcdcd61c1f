"""Hand-built event logs with known answers, shared by the analysis and Parquet tests."""

from __future__ import annotations

import json

from hpostore import EventLog

SPEC_RANDOM = {
    "format_version": 1,
    "hpostore_version": "0.1.0",
    "metric": "error",
    "mode": "min",
    "seed": 7,
    "space": None,
    "scheduler": {
        "class": "hpostore.schedulers.base.BasicScheduler",
        "args": {"searcher": {"class": "hpostore.searchers.random.RandomSearcher", "args": {}}},
    },
}


def spec(searcher: str, scheduler: str, seed: int = 0) -> dict[str, object]:
    return {
        **SPEC_RANDOM,
        "seed": seed,
        "scheduler": {
            "class": f"pkg.{scheduler}",
            "args": {"searcher": {"class": f"pkg.{searcher}"}},
        },
    }


def write_resumed_study(store: EventLog, study: str = "resumed") -> None:
    """Two sessions an hour apart (wall clock); elapsed is study time, so it continues at 6.5.

    trial 0 finished 0.8 · trial 1 failed · trial 2 finished 0.5 · trial 3 in flight when
    session 1 died (no end event), re-run in session 2 and finished 0.9 (2 attempts) ·
    trial 4 reported 0.7 @1, 0.4 @2, finished 0.3 @3 · trial 5 interrupted by Ctrl-C.
    """

    def a(kind: str, elapsed: float, session: str, **kw: object) -> None:
        store.append(study, kind, elapsed=elapsed, session=session, **kw)  # type: ignore[arg-type]

    a("study", 0.0, "s1", payload=json.dumps(SPEC_RANDOM))
    a("session", 0.0, "s1", payload='{"reason":"new"}')
    a("suggest", 1.0, "s1", trial=0, config='{"lr":0.1,"batch":32,"act":"relu"}')
    a("start", 1.0, "s1", trial=0, worker="w1")
    a("evaluate", 3.0, "s1", trial=0, error=0.8, runtime=2.0)
    a("update", 3.0, "s1", trial=0)
    a("suggest", 3.0, "s1", trial=1, config='{"lr":10.0,"batch":64,"act":"tanh"}')
    a("start", 3.0, "s1", trial=1, worker="w1")
    a("fail", 4.0, "s1", trial=1, runtime=1.0, payload='{"message":"ValueError: diverged"}')
    a("suggest", 4.0, "s1", trial=2, config='{"lr":0.01,"batch":128,"act":"relu"}')
    a("start", 4.0, "s1", trial=2, worker="w1")
    a("evaluate", 6.0, "s1", trial=2, error=0.5, runtime=2.0)
    a("update", 6.0, "s1", trial=2)
    a("suggest", 6.0, "s1", trial=3, config='{"lr":0.5,"batch":16,"act":"tanh"}')
    a("start", 6.0, "s1", trial=3, worker="w1")
    # SIGKILL here; an hour later (wall clock) the study is resumed: elapsed goes on at 6.5
    a("session", 6.5, "s2", payload='{"reason":"resume"}')
    a("start", 6.5, "s2", trial=3, worker="w2")
    a("evaluate", 8.0, "s2", trial=3, error=0.9, runtime=1.5)
    a("update", 8.0, "s2", trial=3)
    a("suggest", 8.0, "s2", trial=4, config='{"lr":0.05,"batch":32,"act":"relu"}')
    a("start", 8.0, "s2", trial=4, worker="w2")
    a("report", 9.0, "s2", trial=4, resource=1.0, error=0.7)
    a("report", 10.0, "s2", trial=4, resource=2.0, error=0.4)
    a("promote", 10.0, "s2", trial=4, resource=2.0, payload='{"reason":"top 1/3 of rung 2"}')
    a("evaluate", 11.0, "s2", trial=4, resource=3.0, error=0.3, runtime=3.0)
    a("update", 11.0, "s2", trial=4)
    a("suggest", 11.0, "s2", trial=5, config='{"lr":0.2,"batch":64,"act":"relu"}')
    a("start", 11.0, "s2", trial=5, worker="w2")
    a("interrupt", 12.0, "s2", trial=5, runtime=1.0, payload='{"reason":"KeyboardInterrupt"}')
    a("end", 12.0, "s2", payload='{"reason":"interrupted"}')


def write_curve(
    store: EventLog,
    study: str,
    points: list[tuple[float, float]],
    *,
    searcher: str = "RandomSearcher",
    scheduler: str = "BasicScheduler",
    seed: int = 0,
    end: float | None = None,
) -> None:
    """A study whose trial i finishes at ``points[i] = (elapsed, error)``."""

    def a(kind: str, elapsed: float, **kw: object) -> None:
        store.append(study, kind, elapsed=elapsed, session="s", **kw)  # type: ignore[arg-type]

    a("study", 0.0, payload=json.dumps(spec(searcher, scheduler, seed)))
    a("session", 0.0)
    for i, (t, e) in enumerate(points):
        a("suggest", t, trial=i, config=json.dumps({"x": e}))
        a("start", t, trial=i, worker="w")
        a("evaluate", t, trial=i, error=e, runtime=0.0)
        a("update", t, trial=i)
    a("end", end if end is not None else (points[-1][0] if points else 0.0))
