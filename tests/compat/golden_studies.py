"""The studies of the v1 golden logs: how they were written, and how a test resumes them.

Written once by hpostore 0.1.0 (the code before the second core pass) with::

    PYTHONPATH=<a checkout of that version> python tests/compat/golden_studies.py tests/compat

which writes ``golden_v1.duckdb`` and ``golden_v1_parquet/`` (the same three studies in each)
and ``golden_v1_expected.json`` (what the log holds, read back by that version's fold). Do not
re-run it with a newer version: the point of the files is that an *older* writer made them.

Studies (each with a user Ctrl-C inside a trial, a SIGKILL of a child process inside a
trial, and a resumed session that finishes the study):

- ``random``: random search (seed 7, an initial config); some configs fail (a multiple of 5
  in ``batch_size`` raises, ``act == "bad"`` returns NaN): suggest, start, evaluate, fail,
  update, interrupt, session (new/resume), end.
- ``asha_promotion``: promotion-type ASHA (eta 2, epochs 1..4) over an objective that reports
  every epoch: report, pause, promote, and a resumed ``start`` that carries its larger config.
- ``asha_stopping``: stopping-type ASHA: report and stop.

Time is a :class:`hpostore.simulation.SimulatedClock` the objectives advance, so ``elapsed`` is
the same on every machine.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from scipy import stats

from hpostore import ASHAScheduler, BasicScheduler, HPOTuner, RandomSearcher, open_store
from hpostore.simulation import SimulatedClock

STUDIES = ("random", "asha_promotion", "asha_stopping")
#: the studies of the crashed prefixes (``golden_v1_crashed.duckdb``, ``golden_v1_crashed_parquet``)
CRASHED = ("random", "asha_promotion")
N_RESULTS = {"random": 10, "asha_promotion": 12, "asha_stopping": 8}
#: the objective call (counted per process) that raises KeyboardInterrupt in the first session
INTERRUPT_AT = {"random": 4, "asha_promotion": 5, "asha_stopping": 3}
#: the objective call (counted per process) inside which the child process SIGKILLs itself
KILL_AT = {"random": 3, "asha_promotion": 4, "asha_stopping": 2}

SPACE = {
    "learning_rate": stats.loguniform(1e-2, 1),
    "batch_size": stats.randint(32, 256),
    "act": ["relu", "tanh", "bad"],
}
INITIAL = {"learning_rate": 0.1, "batch_size": 128, "act": "relu"}

CLOCK = SimulatedClock()
_calls = {"n": 0, "interrupt_at": 0, "kill_at": 0}


def _tick() -> None:
    _calls["n"] += 1
    if _calls["n"] == _calls["interrupt_at"]:
        raise KeyboardInterrupt
    if _calls["n"] == _calls["kill_at"]:
        os.kill(os.getpid(), signal.SIGKILL)


def base_error(learning_rate: float, batch_size: int) -> float:
    return round((math.log10(learning_rate) + 1) ** 2 + (batch_size - 100) ** 2 / 1e4, 6)


def plain_objective(learning_rate: float, batch_size: int, act: str) -> float:
    """Random search's objective: fails on some configs, deterministically."""
    _tick()
    CLOCK.advance(1.5)
    if batch_size % 5 == 0:
        raise ValueError(f"batch_size {batch_size} is a multiple of 5")
    if act == "bad":
        return math.nan
    return base_error(learning_rate, batch_size)


def epoch_objective(
    learning_rate: float, batch_size: int, act: str, max_epochs: int, report: Any
) -> float:
    """ASHA's objective: reports the error after each epoch, ends early when told to stop."""
    _tick()
    error = math.inf
    for epoch in range(1, int(max_epochs) + 1):
        CLOCK.advance(0.5)
        error = round(
            base_error(learning_rate, batch_size) + (1.0 if act == "bad" else 0) + 1 / epoch, 6
        )
        if report(epoch, error):
            break
    return error


def scheduler(study: str) -> Any:
    searcher = RandomSearcher(SPACE, initial_config=INITIAL, seed=7)
    if study == "random":
        return BasicScheduler(searcher)
    kind = "promotion" if study == "asha_promotion" else "stopping"
    return ASHAScheduler(searcher, eta=2, r_min=1, r_max=4, type=kind)


def tuner(study: str, store: Any) -> HPOTuner:
    objective = plain_objective if study == "random" else epoch_objective
    return HPOTuner(
        scheduler(study), objective, store=store, study=study, verbose=False, clock=CLOCK
    )


def _session(path: str, study: str, *, interrupt_at: int = 0, kill_at: int = 0) -> None:
    _calls.update(n=0, interrupt_at=interrupt_at, kill_at=kill_at)
    # the Ctrl-C session ends "interrupted"; the store still closes cleanly
    with open_store(path) as store, contextlib.suppress(KeyboardInterrupt):
        tuner(study, store).run(N_RESULTS[study])


def write(path: str) -> None:
    """Write the three studies into ``path`` (a DuckDB file or a Parquet directory)."""
    for study in STUDIES:
        _session(path, study, interrupt_at=INTERRUPT_AT[study])  # Ctrl-C inside a trial
        child = subprocess.run(
            [sys.executable, __file__, "--child", path, study], env=os.environ, check=False
        )
        assert child.returncode == -signal.SIGKILL, child.returncode  # killed inside a trial
        _session(path, study)  # resume to the end


def write_crashed(path: str) -> None:
    """A Ctrl-C, then a SIGKILL inside a trial, and nothing after: the prefix a crash leaves
    (a DuckDB tail not yet folded into the table; Parquet segments without an ``end``)."""
    for study in CRASHED:
        _session(path, study, interrupt_at=INTERRUPT_AT[study])
        child = subprocess.run(
            [sys.executable, __file__, "--child", path, study], env=os.environ, check=False
        )
        assert child.returncode == -signal.SIGKILL, child.returncode


def expected(path: str, studies: tuple[str, ...] = STUDIES) -> dict[str, Any]:
    """What the log at ``path`` holds, per study, as the writing version's fold reads it."""
    from hpostore import replay_table

    out: dict[str, Any] = {}
    with open_store(path, read_only=True) as store:
        for study in studies:
            table = store.events(study)
            state = replay_table(study, table)
            rows = table.to_pylist()
            out[study] = {
                "n_events": len(rows),
                "kinds": _count([r["kind"] for r in rows]),
                "stream": [
                    [r["kind"], r["trial"], r["config"], r["resource"], r["error"]]
                    for r in rows
                    if r["kind"] not in ("study", "session", "end")
                ],
                "sessions": [
                    json.loads(r["payload"])["reason"] for r in rows if r["kind"] == "session"
                ],
                "ends": [json.loads(r["payload"])["reason"] for r in rows if r["kind"] == "end"],
                "elapsed": [r["elapsed"] for r in rows],
                "n_trials": len(state.trials),
                "n_finished": state.n_finished,
                "n_failed": state.n_failed,
                "status": {str(t.trial): t.status.value for t in state.trials.values()},
                "attempts": {str(t.trial): t.attempts for t in state.trials.values()},
                "incumbent": state.incumbent,
                "incumbent_error": state.incumbent_error,
                "trajectory": list(state.trajectory),
            }
    return out


def _count(items: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items()))


def _fresh(duck: Path, parquet: Path) -> None:
    for p in (duck, *(Path(f"{duck}{s}") for s in (".lock", ".tail", ".wal", ".tar.gz"))):
        p.unlink(missing_ok=True)
    shutil.rmtree(parquet, ignore_errors=True)
    parquet.mkdir()


def main(out: Path) -> None:
    """Write the golden files into ``out``; the DuckDB files are stored gzipped (a DuckDB file
    of a few hundred events is ~1 MB of mostly empty blocks)."""
    duck, parquet = out / "golden_v1.duckdb", out / "golden_v1_parquet"
    crashed, crashed_pq = out / "golden_v1_crashed.duckdb", out / "golden_v1_crashed_parquet"
    _fresh(duck, parquet)
    _fresh(crashed, crashed_pq)
    write(str(duck))
    write(f"{parquet}/")
    write_crashed(str(crashed))
    write_crashed(f"{crashed_pq}/")
    # the expectations of the crashed prefixes are read from copies: a read of the original
    # would fold its tail (DuckDB) before the files are stored as the crash left them
    exp = {"duckdb": expected(str(duck)), "parquet": expected(f"{parquet}/")}
    for name, src in (("crashed_duckdb", crashed), ("crashed_parquet", crashed_pq)):
        copy = out / f"copy-{src.name}"
        if src.is_dir():
            shutil.copytree(src, copy)
            exp[name] = expected(f"{copy}/", CRASHED)
            shutil.rmtree(copy)
        else:
            for suffix in ("", ".wal", ".tail"):
                if Path(f"{src}{suffix}").exists():
                    shutil.copy(f"{src}{suffix}", f"{copy}{suffix}")
            exp[name] = expected(str(copy), CRASHED)
            for leftover in out.glob(f"{copy.name}*"):
                leftover.unlink()
    (out / "golden_v1_expected.json").write_text(json.dumps(exp, indent=1, sort_keys=True) + "\n")
    for claim in crashed_pq.glob("*/_writer.json"):
        claim.unlink()  # a dead process's claim names this machine's host and pid: not portable
    # the DuckDB files as the writer left them (file, WAL, tail; not the lock), in one archive
    for db in (duck, crashed):
        with tarfile.open(f"{db}.tar.gz", "w:gz", compresslevel=9) as tar:
            for suffix in ("", ".wal", ".tail"):
                if Path(f"{db}{suffix}").exists():
                    tar.add(f"{db}{suffix}", arcname=f"{db.name}{suffix}")


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        _session(sys.argv[2], sys.argv[3], kill_at=KILL_AT[sys.argv[3]])
        sys.exit("the child should have been killed inside a trial")
    main(Path(sys.argv[1]))
