"""The ``hpostore`` command line: subcommands, their arguments and help texts."""

from __future__ import annotations

import argparse

from .._version import __version__
from . import _commands as c
from ._output import FORMATS

#: the kinds of ``hpostore plot --kind`` (``analysis.plots.KINDS``, listed here so that
#: ``--help`` does not import matplotlib)
PLOT_KINDS = (
    "anytime", "learning-curves", "scatter", "slice", "parallel", "importance", "timeline",
)  # fmt: skip

_RAW = argparse.RawDescriptionHelpFormatter


def _format_option(parser: argparse.ArgumentParser, choices: tuple[str, ...] = FORMATS) -> None:
    parser.add_argument(
        "--format", choices=choices, default="table",
        help=f"output: {', '.join(choices)} (default: table; csv and json for other programs)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpostore",
        description="Look into an hpostore event log (a DuckDB file or a Parquet directory), "
        "plot it, export it, compact it, serve it. Only export and compact write (to their "
        "targets), and plot (its -o file).",
    )
    parser.add_argument("--version", action="version", version=f"hpostore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "studies",
        help="list the studies in a store",
        description="List the studies in a store: events, trials by status, evaluations, "
        "best error, study time and the last event.",
    )
    p.add_argument("path", help="the store, e.g. runs.duckdb or a Parquet directory runs/")
    _format_option(p)
    p.set_defaults(run=c.studies)
    p = sub.add_parser(
        "trials",
        help="one line per trial of a study",
        description="Show one line per trial of a study: its hyperparameters, status, error, "
        "runtime, resource, attempts, reports, times, worker and failure message.",
    )
    p.add_argument("path", help="the store, e.g. runs.duckdb or a Parquet directory runs/")
    p.add_argument("study", help="the study's name")
    _format_option(p)
    p.set_defaults(run=c.trials)
    p = sub.add_parser(
        "sql",
        help="run a read-only SELECT over the events table and the analysis views",
        description="Run one read-only SELECT over the `events` table and the analysis views "
        "(studies, trials, trial_status, anytime, learning_curves, decisions), e.g.\n"
        "  hpostore sql runs.duckdb \"SELECT trial, error FROM events WHERE kind = 'evaluate' ORDER BY error LIMIT 5\"\n"
        '  hpostore sql runs.duckdb "SELECT study, finished, interrupted, best_error FROM studies"\n'
        "Writes, ATTACH, COPY and reading other files are refused.",
        formatter_class=_RAW,
    )
    p.add_argument("path", help="the store, e.g. runs.duckdb or a Parquet directory runs/")
    p.add_argument("query", help="one SELECT statement")
    _format_option(p)
    p.set_defaults(run=c.sql)
    p = sub.add_parser(
        "show",
        help="a study's spec, incumbent, trial counts, elapsed time, last event",
        description="Show one study: searcher and scheduler, seed, config space, trials by "
        "status, the incumbent, study time over sessions, and the last event.",
    )
    p.add_argument("path", help="the store: runs.duckdb or a Parquet directory runs/")
    p.add_argument("study", help="the study's name")
    _format_option(p, ("table", "json"))
    p.set_defaults(run=c.show, text=c.show_text)
    p = sub.add_parser(
        "plot",
        help="write a plot of studies (PNG, SVG or PDF): any-time, learning curves, scatter, "
        "parallel coordinates, importance, worker timeline",
        description="Plot studies of a store; the format follows the suffix of -o, and an "
        "existing file is kept unless --force.\n"
        "  anytime (default): the incumbent against study time, one colour per searcher + "
        "scheduler,\n    median and quartile bands when several studies (seeds) share one\n"
        "  learning-curves: error against resource per trial with stop/promote decisions\n"
        "  scatter (or slice): error against each hyperparameter (one panel each)\n"
        "  parallel: parallel coordinates of the hyperparameters, coloured by error\n"
        "  importance: how much of the error's variance each hyperparameter explains\n"
        "  timeline: which trial ran on which worker when\n"
        "Every kind but anytime plots one study.\n"
        "  hpostore plot runs.duckdb random-s0 random-s1 asha-s0 asha-s1 -o anytime.png",
        formatter_class=_RAW,
    )
    p.add_argument("path", help="the store: runs.duckdb or a Parquet directory runs/")
    p.add_argument("study", nargs="+", help="one or more study names")
    p.add_argument(
        "-o", "--output", default="anytime.png", help="the file to write (.png, .svg, .pdf)"
    )
    p.add_argument("--force", action="store_true", help="overwrite the -o file if it exists")
    p.add_argument(
        "--kind", choices=PLOT_KINDS, default="anytime", help="which plot (default: anytime)"
    )
    p.add_argument(
        "--group-by", default="algorithm",
        help="anytime: one curve per algorithm (searcher + scheduler; default), searcher, "
        "scheduler or study",
    )  # fmt: skip
    p.add_argument(
        "--x", choices=("elapsed", "n_finished"), default="elapsed",
        help="anytime: study time in seconds (default) or the number of results (evaluate events)",
    )  # fmt: skip
    p.add_argument("--log-x", action="store_true", help="logarithmic x axis (anytime)")
    p.add_argument("--log-y", action="store_true", help="logarithmic error axis")
    p.add_argument("--title", default=None, help="replace the generated title")
    p.set_defaults(run=c.plot)
    p = sub.add_parser(
        "export",
        help="copy studies to a Parquet directory or a DuckDB file",
        description="Copy every event of the chosen studies (default: all), unchanged, to "
        "another store:\n"
        "  hpostore export runs.duckdb --parquet runs/\n"
        "  hpostore export runs/ --duckdb copy.duckdb\n"
        "  hpostore export runs.duckdb --tensorboard tb/   (learning curves, results; needs "
        "TensorFlow)\n"
        "The target must not hold those studies yet.",
        formatter_class=_RAW,
    )
    p.add_argument("path", help="the source store: runs.duckdb or a Parquet directory runs/")
    p.add_argument("--parquet", metavar="DIR", help="write a Parquet log directory")
    p.add_argument("--duckdb", metavar="FILE", help="write a DuckDB file (.duckdb)")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="write TensorBoard event files (a run per trial and one per study)")  # fmt: skip
    p.add_argument("--study", action="append", help="a study to copy (repeatable; default all)")
    _format_option(p)
    p.set_defaults(run=c.export)
    p = sub.add_parser(
        "compact",
        help="merge the small segment files of a Parquet directory",
        description="Merge each study's Parquet segments into one file (readers see the same "
        "events before, during and after) and remove leftovers of crashed writes. Safe while "
        "writers are running. Only an existing Parquet log directory is accepted.",
    )
    p.add_argument("path", help="the Parquet log directory, e.g. runs/")
    p.add_argument("--study", default=None, help="compact only this study")
    _format_option(p)
    p.set_defaults(run=c.compact)
    p = sub.add_parser(
        "serve",
        help="a live, read-only dashboard of a store in the browser",
        description="Serve a live, read-only dashboard of a store (DuckDB file or Parquet "
        "directory): studies, any-time curves, trials, learning curves, parallel coordinates, "
        "worker timeline, importance, slices. Loopback only unless --host is given; any other "
        "host needs a token (generated and printed unless --token). Needs 'hpostore[serve]'.",
    )
    p.add_argument("path", help="the store: runs.duckdb or a Parquet directory runs/")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free one)")
    p.add_argument("--token", default=None, help="secret every request must carry")
    p.add_argument("--study-service", action="store_true",
                   help="also serve ask/tell to `hpostore worker` processes (this process becomes "
                   "the store's only writer; studies must exist with built-in searchers)")  # fmt: skip
    p.add_argument("--lease", type=float, default=30.0, metavar="SECONDS",
                   help="with --study-service: a trial whose worker is silent this long is "
                   "handed out again (default 30)")  # fmt: skip
    p.set_defaults(run=c.serve)
    p = sub.add_parser(
        "worker",
        help="run a command once per trial of a served study",
        description="Ask trials of STUDY from `hpostore serve --study-service` at URL and run "
        "CMD once per trial: the config as JSON in $HPOSTORE_CONFIG (also $HPOSTORE_TRIAL, "
        "$HPOSTORE_ATTEMPT, $HPOSTORE_STUDY, $HPOSTORE_URL, $HPOSTORE_CHECKPOINT_DIR); its last "
        "stdout line (a number or a JSON object of metrics) is told as the result, a non-zero "
        "exit as a failure. CMD may report intermediate results with "
        "hpostore.worker.report(epoch, error, **metrics), which returns True when the "
        "scheduler stops the trial (a CMD still running then is ended after --grace seconds: "
        "SIGTERM, then SIGKILL). Loops until the study has --trials trials, all told.",
    )
    p.add_argument("url", help="the server, e.g. http://127.0.0.1:8765")
    p.add_argument("study", help="the study's name")
    p.add_argument("--trials", type=int, default=None, help="the study's number of trials")
    p.add_argument("--token", default=None, help="the server's token (or $HPOSTORE_TOKEN)")
    p.add_argument("--grace", type=float, default=10.0, metavar="SECONDS",
                   help="a stopped trial's command gets this long to end, then SIGTERM, then "
                   "as long again before SIGKILL (default 10)")  # fmt: skip
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- the command to run per trial")
    options = argparse.ArgumentParser(prog="hpostore worker", add_help=False)
    options.add_argument("--trials", type=int, default=None)
    options.add_argument("--token", default=None)
    options.add_argument("--grace", type=float, default=10.0)
    p.set_defaults(run=c.worker, parser=options)
    return parser
