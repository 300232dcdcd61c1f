"""A worker pool that breaks, even while a replacement is being built, never ends the study."""

from __future__ import annotations

import os
import random
import signal
import threading

import parallel_child as pc
import pytest
from scipy import stats

from hpostore import BasicScheduler, HPOTuner, RandomSearcher

SPACE = {"x": stats.uniform(0, 1)}


def _parents() -> dict[int, int]:
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            out[int(name)] = int(fields[1])
    return out


def _pool_workers() -> list[int]:
    """This process's grandchildren: the pool's workers (children of the fork server)."""
    parents = _parents()
    children = {p for p, parent in parents.items() if parent == os.getpid()}
    return [p for p, parent in parents.items() if parent in children]


def _kill_workers(stop: threading.Event, kills: list[int]) -> None:
    rng = random.Random(len(kills))
    while len(kills) < 6 and not stop.wait(0.4):
        workers = _pool_workers()
        if workers:
            victim = rng.choice(workers)
            try:
                os.kill(victim, signal.SIGKILL)
                kills.append(victim)
            except ProcessLookupError:
                pass


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds worker processes through /proc")
@pytest.mark.parametrize("run", range(3))
def test_a_pool_broken_by_dying_and_killed_workers_is_rebuilt_and_the_study_ends(
    run: int,
) -> None:
    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=run)), pc.flaky_worker,
                     n_workers=3, verbose=False, max_failures=None)  # fmt: skip
    stop, kills = threading.Event(), []
    killer = threading.Thread(target=_kill_workers, args=(stop, kills), daemon=True)
    killer.start()
    try:
        tuner.run(16)
    finally:
        stop.set()
        killer.join()
    state = tuner.state
    assert state.n_finished == 16 and kills
    assert all(t.status.value in ("finished", "failed") for t in state.trials.values())
    died = [t for t in state.trials.values() if t.status.value == "failed"]
    assert all("worker process died" in (t.message or "") for t in died)


def _pid() -> int:
    return os.getpid()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
def test_workers_exit_when_their_lifeline_to_the_tuner_is_cut() -> None:
    """Workers watch a pipe only the tuner holds (closed by the kernel if it dies, and never
    confused with a new process that reuses its pid), not the tuner's pid."""
    from hpostore.executors import local_pool

    pool = local_pool(2)
    pids = {pool.submit(_pid).result() for _ in range(6)}
    assert pids and all(_alive(p) for p in pids)
    pool.kill_workers()  # what a SIGKILL of the tuner does to the pipe
    stop = threading.Event()
    for _ in range(200):  # wait (up to ~20 s on a loaded machine) for them to go
        if not any(_alive(p) for p in pids):
            break
        stop.wait(0.1)
    assert not any(_alive(p) for p in pids)
    pool.shutdown(wait=False)
