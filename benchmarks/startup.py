"""Start-up cost: ``import hpostore``, ``import analysis``, ``hpostore studies``, ``import optuna``.

A script, not a test::

    .venv/bin/python benchmarks/startup.py                # builds a small store in a temp dir
    .venv/bin/python benchmarks/startup.py runs.duckdb    # or reads yours
    .venv/bin/python benchmarks/startup.py --repeat 9

Each case runs in ``--repeat`` (default 5) fresh interpreters; the median wall-clock and CPU
(user + system) seconds are printed, beside a bare interpreter (``python -c pass``) so the
interpreter's own start can be subtracted. CPU seconds move less than wall seconds on a busy
machine. The last column lists the heavy modules each case loaded (scipy should never be one;
pandas is loaded by pyarrow when it converts a timestamp with a time zone and pandas is
installed). Targets (issue 12): ``import hpostore`` <= 0.5 s, ``hpostore studies`` <= 0.8 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: issue 12's targets, wall seconds of a fresh interpreter (its start included)
TARGETS = {"import hpostore": 0.5, "hpostore studies": 0.8}
HEAVY = ("scipy", "pandas", "duckdb", "pyarrow", "numpy", "matplotlib")
_REPORT = "import json, sys; print('\\n@@' + json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"


def _ok(value: float, target: float) -> str:
    return "ok" if value <= target else "MISS"


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _cli(*args: str) -> list[str]:
    return _python(f"from hpostore.cli import main\nassert main({list(args)!r}) == 0")


def _without_pandas(argv: list[str]) -> list[str]:
    """``argv`` with pandas hidden (as if not installed): pyarrow then never imports it."""
    hide = (
        "import sys\n"
        "class _NoPandas:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pandas' or name.startswith('pandas.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, _NoPandas())\n"
    )
    return _python(hide + argv[-1])


def _run_once(argv: list[str]) -> tuple[float, float]:
    before = os.times()
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def _loaded(argv: list[str]) -> list[str]:
    code = argv[-1] + "\n" + _REPORT.format(heavy=HEAVY)
    proc = subprocess.run(_python(code), capture_output=True, text=True)
    marker = proc.stdout.rfind("@@")
    return json.loads(proc.stdout[marker + 2 :]) if marker >= 0 else ["(failed)"]


def _available(module: str) -> bool:
    return subprocess.run(_python(f"import {module}"), capture_output=True).returncode == 0


def _build_store(directory: str) -> str:
    """A small DuckDB store (one study, 50 random-search trials), written by a child process."""
    path = os.path.join(directory, "runs.duckdb")
    code = (
        "from scipy import stats\n"
        "from hpostore import BasicScheduler, HPOTuner, RandomSearcher, open_store\n"
        f"store = open_store({path!r})\n"
        "s = RandomSearcher({'x': stats.uniform(-1, 2), 'act': ['relu', 'tanh']}, seed=0)\n"
        "t = HPOTuner(BasicScheduler(s), lambda x, act: x * x, store=store, study='startup')\n"
        "t.run(number_of_trials=50)\n"
        "store.close()\n"
    )
    subprocess.run(_python(code), check=True, stdout=subprocess.DEVNULL)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", nargs="?", help="a store for `hpostore studies` (default: built)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or _build_store(tmp)
        cases = [
            ("python -c pass", _python("pass"), True),
            ("import hpostore", _python("import hpostore"), True),
            ("import analysis", _python("import analysis"), True),
            ("hpostore studies", _cli("studies", store), True),
            ("  without pandas", _without_pandas(_cli("studies", store)), True),
            ("import optuna", _python("import optuna"), _available("optuna")),
        ]
        print(f"{'case':<18} {'wall s':>7} {'cpu s':>7}  {'target (wall; CPU)':<29} "
              f"heavy modules loaded ({args.repeat} runs)")  # fmt: skip
        for label, argv, available in cases:
            if not available:
                print(f"{label:<18} {'-':>7} {'-':>7}  not installed (pip install -e '.[bench]')")
                continue
            runs = [_run_once(argv) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            heavy = ", ".join(_loaded(argv)) or "-"
            target = TARGETS.get(label)
            mark = "-"
            if target:
                mark = f"<= {target:g} s: {_ok(wall, target)} ({_ok(cpu, target)} in CPU)"
            print(f"{label:<18} {wall:>7.3f} {cpu:>7.3f}  {mark:<29} {heavy}")
    print(
        f"({Path(sys.executable).name} {sys.version.split()[0]}; wall and CPU include the "
        "interpreter's own start, the first row; Optuna's peer figure: import optuna)"
    )


if __name__ == "__main__":
    main()
