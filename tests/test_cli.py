from __future__ import annotations

import subprocess
import sys

import pytest
from _shared import SPACE, quadratic

from hpostore import BasicScheduler, HPOTuner, RandomSearcher, open_store
from hpostore.cli import build_parser, main


@pytest.fixture
def study_file(store_path: str) -> str:
    with open_store(store_path) as store:
        HPOTuner(
            BasicScheduler(RandomSearcher(SPACE, seed=1)),
            quadratic,
            store=store,
            study="demo",
            verbose=False,
        ).run(4)
    return store_path


def test_every_command_has_help() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"studies", "trials", "sql"} <= set(commands)
    for name, sub in commands.items():
        assert sub.description, name
        assert sub.format_help().strip()
    proc = subprocess.run(
        [sys.executable, "-m", "hpostore.cli", "trials", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "STUDY" in proc.stdout.upper()


def test_studies_trials_and_sql(study_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["studies", study_file]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["study", "events", "trials", "finished"]
    assert "demo" in out and "(1 row)" in out
    assert main(["trials", study_file, "demo"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:6] == ["trial", "x", "lr", "n", "act", "status"]  # hyperparameters as columns
    assert sum(" finished " in line for line in out.splitlines()[2:]) == 4
    assert (
        main(["sql", study_file, "SELECT count(*) AS n FROM events WHERE kind = 'evaluate'"]) == 0
    )
    assert capsys.readouterr().out.splitlines()[2].strip() == "4"


def test_cli_errors_are_one_clear_line(study_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", study_file, "DELETE FROM events"]) == 1
    assert "read-only" in capsys.readouterr().err
    assert main(["trials", study_file, "nope"]) == 1
    assert "no study 'nope'" in capsys.readouterr().err
    assert main(["studies", study_file + ".missing.duckdb"]) == 1
    assert "does not exist" in capsys.readouterr().err
