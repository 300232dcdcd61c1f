"""What importing hpostore, analysis and the CLI loads: never scipy (it costs about a second).

Import times themselves are measured by ``benchmarks/startup.py``; a test only checks which
modules a fresh interpreter ends up with, which does not depend on how busy the machine is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_CHECK = """
import sys
{body}
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {banned!r})
assert not heavy, f"{{heavy[:5]}} imported by {label!r}"
"""


def _fresh(body: str, label: str, banned: tuple[str, ...] = ("scipy",)) -> None:
    code = _CHECK.format(body=body, label=label, banned=banned)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "body",
    [
        "import hpostore",
        "import analysis",
        "import hpostore.cli",
        "from hpostore import HPOTuner, open_store, RandomSearcher, TPESearcher, BayesianSearcher",
        "from hpostore import ASHAScheduler, replay, StudyState",
    ],
)
def test_imports_do_not_load_scipy(body: str) -> None:
    _fresh(body, body)


def test_cli_studies_does_not_load_scipy_or_pandas(tmp_path: Path) -> None:
    from scipy import stats

    from hpostore import BasicScheduler, HPOTuner, RandomSearcher, open_store

    path = os.fspath(tmp_path / "runs.duckdb")
    searcher = RandomSearcher({"x": stats.uniform(-1, 2), "c": ["a", "b"]}, seed=0)
    store = open_store(path)
    tuner = HPOTuner(BasicScheduler(searcher), lambda x, c: x * x, store=store, study="q")
    tuner.run(number_of_trials=3)
    store.close()
    body = (
        "import contextlib, io\n"
        "from hpostore.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    assert main(['studies', {path!r}]) == 0\n"
        "assert 'q' in out.getvalue(), out.getvalue()\n"
    )
    # pandas too: pyarrow imports it (~0.5 s, when installed) to convert a zoned timestamp
    _fresh(body, "hpostore studies", banned=("scipy", "pandas"))


def test_random_search_on_closed_form_domains_does_not_load_scipy() -> None:
    # a space rebuilt from its logged JSON (as a resume or a reader does) samples uniform,
    # log-uniform, randint and normal domains by closed forms
    body = (
        "from hpostore import ConfigSpace, RandomSearcher\n"
        "space = ConfigSpace.from_json({\n"
        "    'x': {'type': 'scipy', 'dist': 'uniform', 'args': [-1, 2], 'kwds': {}},\n"
        "    'lr': {'type': 'scipy', 'dist': 'loguniform', 'args': [1e-4, 1], 'kwds': {}},\n"
        "    'n': {'type': 'scipy', 'dist': 'randint', 'args': [1, 9], 'kwds': {}},\n"
        "    'z': {'type': 'scipy', 'dist': 'norm', 'args': [0, 1], 'kwds': {}},\n"
        "    'c': {'type': 'choice', 'values': ['a', 'b']}})\n"
        "s = RandomSearcher(space, seed=3)\n"
        "configs = [s.sample_configuration() for _ in range(20)]\n"
        "assert all(-1 <= c['x'] <= 1 and 1 <= c['n'] <= 8 for c in configs), configs\n"
    )
    _fresh(body, "random search over a logged space")
