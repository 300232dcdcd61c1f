"""Plots (labels, files) and the `hpostore plot/show/export/compact` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from analysis import AnalysisError, plots
from analysis._importance import correlation_ratio
from hpostore import open_store
from hpostore.cli import build_parser, main
from tests.analysis_logs import spec, write_curve, write_resumed_study

NEW_COMMANDS = ("show", "plot", "export", "compact")


@pytest.fixture
def log(tmp_path: Path) -> str:
    path = os.fspath(tmp_path / "runs.duckdb")
    with open_store(path) as store:
        write_resumed_study(store)
        for seed in range(3):
            points = [(1.0 + i + seed, 1.0 / (i + 1 + seed)) for i in range(5)]
            write_curve(
                store, f"bo-{seed}", points, searcher="BayesSearcher", scheduler="ASHA", seed=seed
            )
        stops = {"trial": 0, "reason": "bottom of rung 1"}
        store.append("bo-0", "stop", elapsed=2.0, session="s", trial=0, payload=json.dumps(stops))
    return path


def _texts(fig: Figure) -> list[str]:
    out = []
    for ax in fig.axes:
        out += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
        legend = ax.get_legend()
        if legend is not None:
            out += [t.get_text() for t in legend.get_texts()] + [legend.get_title().get_text()]
    for legend in fig.legends:
        out += [t.get_text() for t in legend.get_texts()] + [legend.get_title().get_text()]
    out.append(fig.get_suptitle())
    return out


def test_anytime_plot_names_axes_units_and_algorithms(log: str, tmp_path: Path) -> None:
    fig = plots.anytime_plot(log, path=tmp_path / "a.png")
    texts = _texts(fig)
    assert "study time (s, summed over sessions)" in texts
    assert "best error so far (incumbent, lowest is best)" in texts
    assert "BayesSearcher + ASHA: median of 3 studies" in texts
    assert "RandomSearcher + BasicScheduler (resumed)" in texts
    assert any(t.startswith("Any-time performance") for t in texts)
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    by_trials = plots.anytime_plot(
        log, ["bo-0", "bo-1"], group_by="study", x="n_finished", log_y=True
    )
    assert "finished trials" in _texts(by_trials)
    assert by_trials.axes[0].get_yscale() == "log"


def test_learning_curves_and_scatter_plots(log: str, tmp_path: Path) -> None:
    fig = plots.learning_curves_plot(log, "resumed", path=tmp_path / "lc.svg")
    texts = _texts(fig)
    assert "resource (epochs / steps reached)" in texts and "error" in texts
    assert "promoted (1)" in texts and "final error of the trial" in texts
    assert (tmp_path / "lc.svg").read_text().lstrip().startswith("<?xml")
    fig = plots.scatter_plot(log, "resumed", path=tmp_path / "sc.pdf")
    texts = _texts(fig)
    assert {"lr", "batch", "act", "final error"} <= set(texts)
    assert any("RandomSearcher + BasicScheduler" in t for t in texts)
    assert (tmp_path / "sc.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(Exception, match="use one of"):
        plots.save(fig, tmp_path / "x.gif")


def test_every_new_command_has_help_text() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in NEW_COMMANDS:
        command = sub.choices[name]  # type: ignore[index]
        assert command.description and len(command.description) > 40
        assert all(a.help for a in command._actions if a.dest != "help")


def test_show(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", log, "resumed"]) == 0
    out = capsys.readouterr().out
    assert "hpostore.searchers.random.RandomSearcher" in out
    assert "trials      6: 1 interrupted, 4 finished, 1 failed" in out
    assert "incumbent   trial 4, error 0.3" in out
    assert "elapsed     12.0 s of study time over 2 session(s)" in out
    assert "last event  seq 30 end" in out
    assert main(["show", log, "nope"]) == 1
    assert "no study 'nope'" in capsys.readouterr().err


def test_plot_command_writes_each_kind(
    log: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "anytime.png"
    assert main(["plot", log, "bo-0", "bo-1", "bo-2", "resumed", "-o", os.fspath(out)]) == 0
    assert out.stat().st_size > 10_000
    for kind, name in (("learning-curves", "lc.pdf"), ("scatter", "sc.svg")):
        assert main(["plot", log, "resumed", "--kind", kind, "-o", os.fspath(tmp_path / name)]) == 0
        assert (tmp_path / name).stat().st_size > 1000
    assert (
        main(
            ["plot", log, "bo-0", "bo-1", "--kind", "scatter", "-o", os.fspath(tmp_path / "x.png")]
        )
        == 1
    )
    assert "plots one study" in capsys.readouterr().err


def test_export_to_parquet_and_back_keeps_every_event(
    log: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = os.fspath(tmp_path / "runs") + "/"
    back = os.fspath(tmp_path / "back.duckdb")
    assert main(["export", log, "--parquet", folder]) == 0
    assert main(["export", folder, "--duckdb", back]) == 0
    assert main(["export", log, "--parquet", folder, "--study", "resumed"]) == 1
    assert "already holds study 'resumed'" in capsys.readouterr().err
    with (
        open_store(log, read_only=True) as a,
        open_store(folder, read_only=True) as b,
        open_store(back, read_only=True) as c,
    ):
        assert sorted(a.studies()) == sorted(b.studies()) == sorted(c.studies())
        for study in a.studies():
            assert a.events(study).equals(b.events(study))
            assert a.events(study).equals(c.events(study))


def test_compact_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = os.fspath(tmp_path / "runs") + "/"
    store = open_store(folder)
    for i in range(5):
        store.append("s", "suggest", elapsed=float(i), session="s", trial=i, config="{}")
        store.commit()  # durable: one segment per commit
    store._published.clear()  # type: ignore[attr-defined]  # leave them as a crashed writer would (no merge at close)
    store.close()
    assert main(["compact", folder]) == 0
    assert capsys.readouterr().out.splitlines()[2].split() == ["s", "5", "1"]
    assert len(list((tmp_path / "runs" / "s").glob("*.parquet"))) == 1


def test_spec_helper_has_the_legend_fields() -> None:
    payload = spec("Bayes", "ASHA")
    assert payload["scheduler"] == {
        "class": "pkg.ASHA",
        "args": {"searcher": {"class": "pkg.Bayes"}},
    }


# --- issue 11 item 5: the plot defects and the new kinds -----------------------------------

SPACE_JSON = {
    "width": {"type": "scipy", "dist": "uniform", "args": [1, 200], "kwds": {}},
    "lr": {"type": "scipy", "dist": "loguniform", "args": [1e-4, 1], "kwds": {}},
    "act": {"type": "choice", "values": ["relu", "tanh"]},
    "fixed": {"type": "constant", "value": 10},
}


def _write_space_study(
    store: object, study: str, n: int, *, metric: str = "error", mode: str = "min"
) -> None:
    """n trials on two workers; the error grows with width (the parameter that matters)."""

    def a(kind: str, elapsed: float, **kw: object) -> None:
        store.append(study, kind, elapsed=elapsed, session="s", **kw)  # type: ignore[attr-defined]

    payload = {**spec("RandomSearcher", "BasicScheduler"), "space": SPACE_JSON}
    a("study", 0.0, payload=json.dumps({**payload, "metric": metric, "mode": mode}))
    a("session", 0.0)
    for i in range(n):
        width = 2.0 + 188.0 * i / max(1, n - 1)  # spans ~100x, uniformly sampled
        config = {"width": width, "lr": 10.0 ** -(i % 4), "act": ["relu", "tanh"][i % 2],
                  "fixed": 10}  # fmt: skip
        a("suggest", float(i), trial=i, config=json.dumps(config))
        a("start", float(i), trial=i, worker=f"w{i % 2}")
        a("evaluate", i + 0.9, trial=i, error=width / 100 + 0.01 * (i % 2), runtime=0.9)
        a("update", i + 0.9, trial=i)


@pytest.fixture
def space_log(tmp_path: Path) -> str:
    path = os.fspath(tmp_path / "space.duckdb")
    with open_store(path) as store:
        _write_space_study(store, "space", 12)
        _write_space_study(store, "acc", 5, metric="accuracy", mode="max")
    return path


def test_plots_leave_the_global_backend_and_pyplot_alone(log: str) -> None:
    code = (
        "import sys, matplotlib\n"
        "matplotlib.use('pdf')\n"
        "from analysis import plots\n"
        f"plots.anytime_plot({log!r}, path=None).savefig(sys.argv[1])\n"
        "assert matplotlib.get_backend() == 'pdf', matplotlib.get_backend()\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    out = Path(log).with_name("x.png")
    proc = subprocess.run([sys.executable, "-c", code, os.fspath(out)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_scatter_axes_follow_the_logged_distribution_and_skip_constants(space_log: str) -> None:
    fig = plots.scatter_plot(space_log, "space")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in panels] == ["width", "lr (log scale)", "act"]
    # width spans ~100x but is sampled uniformly: a linear axis; lr is loguniform
    assert [ax.get_xscale() for ax in panels] == ["linear", "log", "linear"]
    assert "one value in every trial, not drawn: fixed=10" in fig.get_suptitle()


def test_anytime_curves_end_where_their_studies_end(log: str) -> None:
    # bo-0..2 end at 5..7 s; "resumed" runs to 12 s: the band must not go on to 12
    fig = plots.anytime_plot(log)
    ax = fig.axes[0]
    ends = {
        str(line.get_label()): float(np.max(np.asarray(line.get_xdata())))
        for line in ax.get_lines()
        if not str(line.get_label()).startswith("_")
    }
    assert ends["BayesSearcher + ASHA: median of 3 studies"] == pytest.approx(7.0)
    assert ends["RandomSearcher + BasicScheduler (resumed)"] == pytest.approx(12.0)
    assert ax.get_legend() is None and len(fig.legends) == 1  # beside the axes, not over them
    assert fig.legends[0].get_title().get_text() == "searcher + scheduler"


def test_one_study_legend_has_no_group_title(log: str) -> None:
    fig = plots.anytime_plot(log, ["resumed"])
    (legend,) = fig.legends
    assert legend.get_title().get_text() == ""
    assert [t.get_text() for t in legend.get_texts()] == [
        "RandomSearcher + BasicScheduler (resumed)"
    ]


def test_studies_of_different_objectives_are_refused_on_one_axis(space_log: str) -> None:
    with pytest.raises(AnalysisError, match="different objectives.*accuracy \\(max\\)"):
        plots.anytime_plot(space_log)
    fig = plots.anytime_plot(space_log, ["acc"])
    assert fig.axes[0].get_ylabel() == "best accuracy so far (incumbent, highest is best)"


def test_learning_curves_say_how_many_of_how_many(log: str) -> None:
    with open_store(log) as store:
        for trial, final in ((0, 0.5), (1, 0.2), (2, 0.9)):
            store.append("lc", "suggest", elapsed=0.0, session="s", trial=trial, config="{}")
            for r in (1.0, 2.0):
                store.append("lc", "report", elapsed=r, session="s", trial=trial, resource=r,
                             error=final + 1 / r)  # fmt: skip
                store.append("lc", "pause", elapsed=r, session="s", trial=trial, resource=r)
            store.append("lc", "evaluate", elapsed=3.0, session="s", trial=trial, resource=3.0,
                         error=final)  # fmt: skip
    fig = plots.learning_curves_plot(log, "lc", max_trials=2)
    ax = fig.axes[0]
    assert ax.get_title().startswith("Learning curves of the best 2 of 3 trials: lc")
    curves = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    assert len(curves) == 2
    # four pauses of the kept trials: one light mark layer under the curves, not four
    (pauses,) = [ln for ln in ax.get_lines() if str(ln.get_label()).startswith("paused")]
    assert pauses.get_label() == "paused (4)" and np.asarray(pauses.get_xdata()).size == 4
    assert pauses.get_zorder() < min(line.get_zorder() for line in curves)
    assert fig.legends and ax.get_legend() is None
    all_title = plots.learning_curves_plot(log, "lc").axes[0].get_title()
    assert all_title.startswith("Learning curves of 3 trials: lc")


def test_parallel_importance_and_timeline(space_log: str, tmp_path: Path) -> None:
    fig = plots.parallel_plot(space_log, "space")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["width", "lr (log)", "act", "error"]  # fixed has no axis
    assert len([ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() == "-"]) >= 12
    fig = plots.importance_plot(space_log, "space")
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(names) == ["act", "lr", "width"] and names[-1] == "width"  # top bar
    assert len(ax.patches) == 3
    fig = plots.timeline_plot(space_log, "space")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["w0", "w1"]
    assert "12 runs of 12 trials on 2 worker(s)" in ax.get_title()
    for kind in ("parallel", "importance", "timeline"):
        out = tmp_path / f"{kind}.png"
        assert main(["plot", space_log, "space", "--kind", kind, "-o", os.fspath(out)]) == 0
        assert out.read_bytes()[:4] == b"\x89PNG"


def test_importance_ranks_the_parameter_that_decides() -> None:
    x = np.linspace(0, 1, 200)
    noise = np.random.default_rng(0).uniform(0, 1, 200)
    y = (x > 0.5).astype(float)
    assert correlation_ratio(list(x), y) == pytest.approx(1.0)
    assert (correlation_ratio(list(noise), y) or 1.0) < 0.2
    assert correlation_ratio(["a"] * 200, y) == 0.0
    assert correlation_ratio([None, 1.0], [0.0, 1.0]) is None  # fewer than two trials
