"""The `hpostore` command: listings and formats, one-line errors, closed pipes, refusals.

The pipe and error cases run the installed `hpostore` entry point in child processes, as a
shell would."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from _shared import SPACE, quadratic

import analysis
from hpostore import BasicScheduler, HPOTuner, RandomSearcher, __version__, open_store
from hpostore.cli import build_parser, main

ENTRY_POINT = Path(sys.executable).with_name("hpostore")


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


def hpostore(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The installed `hpostore` command in a child process."""
    assert ENTRY_POINT.exists(), f"{ENTRY_POINT} missing: run `make install`"
    return subprocess.run(
        [os.fspath(ENTRY_POINT), *args], capture_output=True, text=True, timeout=120
    )


def test_every_command_and_argument_has_help() -> None:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands: dict[str, argparse.ArgumentParser] = dict(action.choices)
    assert {"studies", "trials", "sql", "show", "plot", "export", "compact", "serve"} <= set(
        commands
    )
    for name, sub in commands.items():
        assert sub.description and len(sub.description) > 40, name
        assert all(a.help for a in sub._actions), name
    proc = subprocess.run(
        [sys.executable, "-m", "hpostore.cli", "trials", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "STUDY" in proc.stdout.upper()


def test_version_through_the_entry_point() -> None:
    proc = hpostore("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"hpostore {__version__}"


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


def test_trials_flattens_hyperparameters_of_any_json_type() -> None:
    """A categorical of mixed types (or a list value) is a column of JSON texts; pa.array
    refused it (``hpostore trials`` failed with ArrowInvalid)."""
    import pyarrow as pa

    from hpostore.cli import flatten_configs

    configs = ['{"c":1,"b":true,"f":1,"s":"relu","m":1,"l":[1,2],"n":null,"big":1}',
               '{"c":2,"b":false,"f":0.5,"s":"tanh","m":"a","l":[3],"big":18446744073709551616}',
               None]  # fmt: skip
    table = pa.table({"trial": [0, 1, 2], "config": configs})
    out = flatten_configs(table)
    assert out.column_names == ["trial", "c", "b", "f", "s", "m", "l", "n", "big"]
    types = {name: str(out.schema.field(name).type) for name in out.column_names[1:]}
    assert types == {"c": "int64", "b": "bool", "f": "double", "s": "string", "m": "string",
                     "l": "string", "n": "bool", "big": "string"}  # fmt: skip
    assert out.column("m").to_pylist() == ["1", '"a"', None]
    assert out.column("f").to_pylist() == [1.0, 0.5, None]
    assert out.column("l").to_pylist() == ["[1, 2]", "[3]", None]
    assert out.column("big").to_pylist() == ["1", "18446744073709551616", None]


def test_csv_and_json_formats(study_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trials", study_file, "demo", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["trial"] for r in rows] == ["0", "1", "2", "3"]
    assert {r["status"] for r in rows} == {"finished"} and all(r["act"] for r in rows)
    assert rows[0]["message"] == ""  # NULL: an empty field
    assert main(["trials", study_file, "demo", "--format", "json"]) == 0
    trials = json.loads(capsys.readouterr().out)
    assert [t["trial"] for t in trials] == [0, 1, 2, 3]
    assert all(isinstance(t["error"], float) and t["message"] is None for t in trials)
    assert trials[0]["error"] == pytest.approx(float(rows[0]["error"]))
    assert main(["studies", study_file, "--format", "json"]) == 0
    (study,) = json.loads(capsys.readouterr().out)
    assert study["study"] == "demo" and study["finished"] == 4
    assert study["last_event"].endswith("+00:00")  # a timestamp in ISO 8601, UTC
    assert main(["sql", study_file, "SELECT 1 AS a, 'x,y' AS b", "--format", "csv"]) == 0
    assert capsys.readouterr().out == 'a,b\n1,"x,y"\n'
    assert main(["show", study_file, "demo", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["trials"] == 4 and shown["status_counts"] == {"finished": 4}
    assert shown["incumbent"]["error"] == min(t["error"] for t in trials)
    assert set(shown["space"]) == {"x", "lr", "n", "act"}


def test_sql_sees_every_documented_view(
    study_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for view in (*analysis.VIEW_NAMES, "trial_status", "events"):
        assert (
            main(["sql", study_file, f"SELECT count(*) AS n FROM {view}", "--format", "json"]) == 0
        )
        (row,) = json.loads(capsys.readouterr().out)
        # BasicScheduler decides nothing; the study sets no user attributes
        assert row["n"] > 0 or view in ("decisions", "attributes"), view


def test_a_closed_pipe_ends_quietly(study_file: str) -> None:
    # more output than a pipe holds, so the writer is blocked when the reader goes away
    child = subprocess.Popen(
        [os.fspath(ENTRY_POINT), "sql", study_file, "SELECT range AS n FROM range(200000)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    assert child.stdout.readline().split() == [b"n"]
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 1  # as Python's docs recommend for EPIPE
    assert err == ""
    shell = subprocess.run(
        f"'{ENTRY_POINT}' trials '{study_file}' demo --format csv | head -1",
        shell=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shell.stdout.startswith("trial,x,lr,n,act,status") and shell.stderr == ""


def test_errors_are_one_line_without_traceback(study_file: str, tmp_path: Path) -> None:
    other = os.fspath(tmp_path / "other.duckdb")
    duckdb.connect(other).execute("CREATE TABLE t (x INT)").close()  # not an event log
    cases = [
        (("sql", study_file, "DELETE FROM events"), 1, "read-only"),
        (("sql", study_file, "SELECT * FROM nope"), 1, "nope"),
        (("sql", study_file, "SELECT * FROM read_csv('/etc/passwd')"), 1, "error:"),
        (("trials", study_file, "nope"), 1, "no study 'nope'"),
        (("studies", study_file + ".missing.duckdb"), 1, "does not exist"),
        (("studies", other), 1, "no hpostore events table"),  # an AnalysisError
        (("show", os.fspath(tmp_path / "x.txt"), "s"), 1, "error:"),
        (("export", study_file), 2, "exactly one target"),
        (("export", study_file, "--duckdb", os.fspath(tmp_path)), 2, "--parquet DIR"),
        (("plot", study_file, "demo", "-o", os.fspath(tmp_path / "a.gif")), 2, ".png"),
        (("trials", study_file), 2, "required"),  # argparse's own usage error
    ]
    for args, code, words in cases:
        proc = hpostore(*args)
        assert proc.returncode == code, (args, proc.stderr)
        assert proc.stdout == ""
        lines = proc.stderr.splitlines()
        assert "Traceback" not in proc.stderr, args
        assert lines[-1].startswith(f"hpostore {args[0]}: error: ") and words in lines[-1], args
        if code == 1:
            assert len(lines) == 1, proc.stderr


def test_compact_refuses_what_is_not_a_parquet_store(study_file: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, words in (
        (missing, "does not exist"),
        (Path(study_file), "not a Parquet log directory"),
        (empty, "holds no Parquet segments"),
    ):
        proc = hpostore("compact", os.fspath(path) + ("/" if path != Path(study_file) else ""))
        assert proc.returncode == 1 and words in proc.stderr, proc.stderr
    assert not missing.exists()  # not created
    assert list(empty.iterdir()) == []
    folder = os.fspath(tmp_path / "runs") + "/"
    assert main(["export", study_file, "--parquet", folder]) == 0
    proc = hpostore("compact", folder, "--study", "other")
    assert proc.returncode == 1 and "no study 'other'" in proc.stderr
    assert hpostore("compact", folder).returncode == 0


def test_plot_never_overwrites_without_force(study_file: str, tmp_path: Path) -> None:
    out = tmp_path / "scatter.png"
    out.write_bytes(b"mine")
    proc = hpostore("plot", study_file, "demo", "--kind", "scatter", "-o", os.fspath(out))
    assert proc.returncode == 1 and "--force" in proc.stderr
    assert out.read_bytes() == b"mine"
    proc = hpostore(
        "plot", study_file, "demo", "--kind", "scatter", "-o", os.fspath(out), "--force"
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = hpostore("plot", study_file, "demo", "-o", os.fspath(tmp_path / "no" / "a.png"))
    assert proc.returncode == 1 and "does not exist" in proc.stderr


def test_a_study_whose_configs_are_all_empty(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # the views failed on it ("UNNEST() can only be applied to … not JSON"); the tuner refuses
    # an empty space, but a user's searcher or the store contract's own events log `{}`
    with open_store(store_path) as store:
        store.append("empty", "study", elapsed=0.0, session="s", payload='{"space": {}}')
        for trial in range(2):
            store.append("empty", "suggest", elapsed=1.0, session="s", trial=trial, config="{}")
            store.append("empty", "start", elapsed=1.0, session="s", trial=trial, worker="w")
            store.append("empty", "evaluate", elapsed=2.0, session="s", trial=trial, error=0.5)
    rows = analysis.query(
        store_path, "SELECT trial, status, config FROM trials ORDER BY trial"
    ).to_pylist()
    assert rows == [
        {"trial": 0, "status": "finished", "config": "{}"},
        {"trial": 1, "status": "finished", "config": "{}"},
    ]
    assert main(["trials", store_path, "empty", "--format", "json"]) == 0
    assert [t["error"] for t in json.loads(capsys.readouterr().out)] == [0.5, 0.5]
    assert main(["studies", store_path]) == 0
    assert "empty" in capsys.readouterr().out


def test_plot_kinds_match_the_library() -> None:
    from analysis import plots
    from hpostore.cli._parser import PLOT_KINDS

    assert set(PLOT_KINDS) == set(plots.KINDS)
