"""Notebook first: objectives from ``python -c`` on workers, d2l's ``hparams``, Syne Tune reports."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from scipy import stats

from hpostore import ASHAScheduler, HPOTuner, HyperParameters, RandomSearcher, open_store

NOTEBOOK_CELL = """
import sys
from scipy import stats
from hpostore import BasicScheduler, HPOTuner, RandomSearcher

offset = 0.25  # a global of the notebook, read by the objective in the workers

def objective(x):  # defined in __main__: not importable by a worker process
    return (x - offset) ** 2

tuner = HPOTuner(BasicScheduler(RandomSearcher({"x": stats.uniform(-1, 2)}, seed=0)),
                 objective, store=sys.argv[1], study="nb", n_workers=2, verbose=False)
tuner.run(6)
print(tuner.state.n_finished, tuner.state.n_failed, len({t.worker for t in
      tuner.state.trials.values()}) > 1 or "one-worker")
"""


def test_an_objective_defined_in_python_c_runs_on_two_workers(store_path: str) -> None:
    out = subprocess.run([sys.executable, "-c", NOTEBOOK_CELL, store_path], capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    finished, failed, _ = out.stdout.split()
    assert (finished, failed) == ("6", "0")
    with open_store(store_path, read_only=True) as store:  # transport only: no bytes logged
        spec = store.events("nb", columns=["payload"]).column("payload").to_pylist()[0]
    assert "objective" in spec and "cloudpickle" not in spec and "\\\\x" not in spec


def test_a_lambda_runs_on_two_workers() -> None:
    searcher = RandomSearcher({"x": stats.uniform(-1, 2)}, seed=0)
    from hpostore import BasicScheduler

    with HPOTuner(BasicScheduler(searcher), lambda x: abs(x), n_workers=2, verbose=False) as t:
        t.run(4)
        assert t.state.n_finished == 4 and t.state.n_failed == 0


class Model(HyperParameters):
    def __init__(self, lr: float, num_hiddens: int = 256, _private: int = 0) -> None:
        self.save_hyperparameters()


def test_save_hyperparameters_sets_hparams_like_d2l() -> None:
    model = Model(0.1)
    assert model.hparams == {"lr": 0.1, "num_hiddens": 256}
    assert (model.lr, model.num_hiddens) == (0.1, 256)


def syne_tune_objective(x: float, max_epochs: int, report: Any) -> float:
    """The async chapter's form: report(epoch=..., validation_error=...)."""
    for epoch in range(1, max_epochs + 1):
        if report(epoch=epoch, validation_error=x * x + 1 / epoch):
            break
    return x * x + 1 / epoch


def test_report_takes_the_syne_tune_keyword_form(store_path: str) -> None:
    scheduler = ASHAScheduler(RandomSearcher({"x": stats.uniform(-1, 2)}, seed=0), r_max=9,
                              type="stopping")  # fmt: skip
    with HPOTuner(scheduler, syne_tune_objective, store=store_path, study="s", verbose=False,
                  resource_attr="epoch", metric="validation_error") as tuner:  # fmt: skip
        tuner.run(5)
        curves = [t.curve for t in tuner.state.trials.values()]
        assert tuner.state.n_failed == 0
        assert [r for r, _ in curves[0]] == [float(e) for e in range(1, 10)]
        assert any(len(c) == 1 for c in curves)  # stopped at the first rung by ASHA


README = __import__("pathlib").Path(__file__).parent.parent / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("```python\n", text.index(heading)) + len("```python\n")
    return text[start : text.index("```", start)]


def test_the_readme_quick_starts_run_as_written(tmp_path: Any) -> None:
    for heading, expected in (
        ("### Ask and tell (Optuna style)", "'layers'"),
        ("### Metrics, mode, keyword reports and callbacks", "best accuracy so far"),
    ):
        out = subprocess.run([sys.executable, "-c", _block_after(heading)], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert expected in out.stdout
        assert "Traceback" not in out.stderr
