"""Plots (labels, files) and the `hpostore plot/show/export/compact` commands."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from analysis import plots
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


def _texts(fig) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for ax in fig.axes:
        out += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
        legend = ax.get_legend()
        if legend is not None:
            out += [t.get_text() for t in legend.get_texts()] + [legend.get_title().get_text()]
    if fig._suptitle is not None:
        out.append(fig._suptitle.get_text())
    return out


def test_anytime_plot_names_axes_units_and_algorithms(log: str, tmp_path: Path) -> None:
    fig = plots.anytime_plot(log, path=tmp_path / "a.png")
    texts = _texts(fig)
    assert "study time (s, summed over sessions)" in texts
    assert "best error so far (incumbent)" in texts
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
    assert "promoted" in texts and "final error of the trial" in texts
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
    store._published.clear()  # leave them as a crashed writer would (no merge at close)
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
