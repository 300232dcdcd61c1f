"""A study run as a child process by tests/test_crash_resume.py, which SIGKILLs it on purpose.

Usage: ``python crash_child.py STORE STUDY N DURABILITY SCHEDULER`` with DURABILITY in
``durable|batched`` and SCHEDULER in ``random|stateful``. The same command, run again, resumes.

Kill points (environment variables; each is a real ``SIGKILL`` of this process):

- ``KILL_IN_TRIAL=k``: inside the objective of trial ``k`` (first attempt only: a marker file
  ``STORE.killed-k`` is created before the kill, and its presence disables the kill).
- ``KILL_AFTER_APPEND=n``: right after the n-th ``store.append`` of this process.
- ``KILL_AFTER_COMMIT=n``: right after the n-th ``store.commit`` of this process returned.
- ``SLEEP_IN_TRIAL=k``: in trial ``k`` (first attempt), print ``READY k`` and sleep (the test
  sends SIGINT).

Before a kill it prints ``KILL {"appends": A, "commits": M, "committed": C, "forced": F}``: C (F)
is how many of this process's appends had been made when ``commit`` (``commit(force=True)``)
last returned. A normal exit prints ``DONE {...}`` with the same counts.

``python crash_child.py --serve`` is a zygote that forks such runs on request (see :func:`serve`):
the tests use it to skip the ~1.5 s of imports per child process.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
import traceback

import numpy as np

np.random.seed(0)  # textbook style: the user searcher draws from numpy's global RNG

from scipy import stats  # noqa: E402

from hpostore import (  # noqa: E402
    BasicScheduler,
    HPOScheduler,
    HPOSearcher,
    HPOTuner,
    RandomSearcher,
    TrialStatus,
    open_store,
)

CONFIG_SPACE = {
    "learning_rate": stats.loguniform(1e-2, 1),
    "batch_size": stats.randint(32, 256),
}
INITIAL_CONFIG = {"learning_rate": 0.1, "batch_size": 128}


class UserRandomSearcher(HPOSearcher):
    """The textbook's random searcher: ``domain.rvs()`` from numpy's global RNG."""

    def __init__(self, config_space, initial_config=None):
        self.save_hyperparameters()

    def sample_configuration(self):
        if self.initial_config is not None:
            result = dict(self.initial_config)
            self.initial_config = None
        else:
            result = {name: domain.rvs() for name, domain in self.config_space.items()}
        return result


class UserSuccessiveHalving(HPOScheduler):
    """The textbook's successive halving (eta=2, rungs 1, 2, 4): a queue, no ``restore()``."""

    def __init__(self, searcher, eta=2, r_min=1, r_max=4):
        self.save_hyperparameters()
        self.rung_levels = [1, 2, 4]
        self.K = len(self.rung_levels) - 1
        self.observed_error_at_rungs = {r: [] for r in self.rung_levels}
        self.queue = []

    def suggest(self):
        if not self.queue:
            for _ in range(self.eta**self.K):
                config = self.searcher.sample_configuration()
                config["max_epochs"] = self.r_min
                self.queue.append(config)
        return self.queue.pop()

    def update(self, config, error, info=None):
        ri = int(config["max_epochs"])
        self.searcher.update(config, error, additional_info=info)
        if ri >= self.r_max:
            return
        rung = self.observed_error_at_rungs[ri]
        rung.append((dict(config), error))
        ki = self.K - self.rung_levels.index(ri)
        if len(rung) >= self.eta**ki:
            best = [c for c, _ in sorted(rung, key=lambda x: x[1])[: self.eta ** (ki - 1)]]
            nxt = self.rung_levels[self.K - ki + 1]
            self.queue = [dict(c, max_epochs=nxt) for c in best] + self.queue
            self.observed_error_at_rungs[ri] = []


def main() -> int:
    path, study, n, durability, kind = sys.argv[1:6]
    kill_in_trial = int(os.environ.get("KILL_IN_TRIAL", "-1"))
    sleep_in_trial = int(os.environ.get("SLEEP_IN_TRIAL", "-1"))
    kill_after_append = int(os.environ.get("KILL_AFTER_APPEND", "0"))
    kill_after_commit = int(os.environ.get("KILL_AFTER_COMMIT", "0"))
    counts = {"appends": 0, "commits": 0, "committed": 0, "forced": 0}

    def die() -> None:
        print("KILL", json.dumps(counts), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    tuner: HPOTuner | None = None

    def running_trial() -> int:
        assert tuner is not None
        (trial,) = [t.trial for t in tuner.state.trials.values() if t.status is TrialStatus.RUNNING]
        return trial

    def objective(learning_rate, batch_size, max_epochs=4):
        trial = running_trial()
        marker = f"{path}.killed-{trial}"
        if trial in (kill_in_trial, sleep_in_trial) and not os.path.exists(marker):
            open(marker, "w").close()
            if trial == kill_in_trial:
                die()
            print("READY", trial, flush=True)
            time.sleep(60)
        time.sleep(0.02)
        if batch_size % 5 == 0:  # deterministic failures, part of the stream too
            raise ValueError(f"batch_size {batch_size} is a multiple of 5")
        return (math.log10(learning_rate) + 1) ** 2 + (batch_size - 100) ** 2 / 1e4 + 1 / max_epochs

    with open_store(path, durability=durability) as store:
        append, commit = store.append, store.commit

        def counting_append(*args, **kwargs):
            row = append(*args, **kwargs)
            counts["appends"] += 1
            if counts["appends"] == kill_after_append:
                die()
            return row

        def counting_commit(*args, **kwargs):
            commit(*args, **kwargs)
            counts["commits"] += 1
            counts["committed"] = counts["appends"]
            if kwargs.get("force"):
                counts["forced"] = counts["appends"]
            if counts["commits"] == kill_after_commit:
                die()

        store.append = counting_append
        store.commit = counting_commit
        if kind == "random":
            scheduler = BasicScheduler(
                RandomSearcher(CONFIG_SPACE, initial_config=INITIAL_CONFIG, seed=7)
            )
        else:
            scheduler = UserSuccessiveHalving(
                UserRandomSearcher(CONFIG_SPACE, initial_config=INITIAL_CONFIG)
            )
        tuner = HPOTuner(scheduler, objective, store=store, study=study, verbose=False)
        tuner.run(number_of_trials=int(n))
    print("DONE", json.dumps(counts), flush=True)
    return 0


def serve() -> int:
    """Zygote mode (``--serve``): pay for the imports once, fork one child per request.

    Each stdin line is a JSON request ``{"argv", "env", "cwd", "stdout", "stderr", "timeout"}``;
    a forked child runs :func:`main` as a fresh ``python crash_child.py ARGV...`` would (same
    environment, working directory, argv, seeded global RNG), with its output in the named
    files, and dies by SIGALRM after ``timeout`` seconds. The reply line is the child's exit
    code (negative: the signal that killed it), as ``subprocess`` reports it.
    """
    import pyarrow as pa

    pa.array([0])  # pyarrow's first conversion imports pandas (if installed): pay that once too
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _forked(request)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
    return 0


def _forked(request: dict) -> None:
    code = 1
    try:
        os.chdir(request["cwd"])
        for fd, name, flags in (
            (0, os.devnull, os.O_RDONLY),
            (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
            (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        ):
            os.dup2(os.open(name, flags, 0o644), fd)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [__file__, *request["argv"]]
        np.random.seed(0)  # as at the top of a fresh run
        signal.alarm(int(request["timeout"]))
        code = main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else main())
