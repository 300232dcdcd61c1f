"""The ``hpostore`` command: look into a store from the shell, plot it, export it, compact it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from .errors import HPOStoreError
from .log.events import Kind
from .store.base import open_store


def format_table(table: pa.Table, *, max_width: int = 40) -> str:
    """A plain-text table: a header, a rule, one line per row."""
    names = table.column_names
    rows = [[_cell(v, max_width) for v in row.values()] for row in _pylist(table)]
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def _pylist(table: pa.Table) -> list[dict[str, Any]]:
    """``table.to_pylist()`` without pandas: pyarrow imports pandas (~0.5 s, when installed) to
    convert a timestamp with a time zone, so those columns are converted here (as UTC)."""
    from datetime import datetime, timezone

    zoned = [f.name for f in table.schema if pa.types.is_timestamp(f.type) and f.type.tz]
    for name in zoned:
        i = table.schema.get_field_index(name)
        if i < 0:  # a duplicate name: left to pyarrow
            continue
        naive = pa.timestamp(table.schema.field(i).type.unit)
        table = table.set_column(i, name, table.column(i).cast(naive))
    rows = table.to_pylist()
    for row in rows if zoned else ():
        for name in zoned:
            if isinstance(row.get(name), datetime):
                row[name] = row[name].replace(tzinfo=timezone.utc)
    return rows


def _cell(value: Any, max_width: int) -> str:
    if value is None:
        text = ""
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return text if len(text) <= max_width else text[: max_width - 1] + "…"


def _views(path: str) -> Any:
    """A read-only DuckDB connection with the shipped ``analysis`` views over the store."""
    import analysis

    if not os.path.exists(path):
        raise HPOStoreError(
            f"{path} does not exist: give a DuckDB file (runs.duckdb) or a Parquet log "
            "directory (runs/)"
        )
    return analysis.views(path)


def _query(con: Any, sql: str, params: list[Any] | None = None) -> pa.Table:
    import analysis

    return analysis.query(con, sql, params)


#: the columns of the ``studies`` view that ``hpostore studies`` shows (status counts add up
#: to ``trials``; the words are the fold's, see ``hpostore.log.trial.TrialStatus``)
STUDIES_COLUMNS = (
    "study", "events", "trials", "finished", "paused", "stopped", "failed", "interrupted",
    "running", "suggested", "evaluations", "best_error", "elapsed_s", "last_ts AS last_event",
)  # fmt: skip


def _studies(args: argparse.Namespace) -> pa.Table:
    con = _views(args.path)
    return _query(con, f"SELECT {', '.join(STUDIES_COLUMNS)} FROM studies ORDER BY first_ts, study")


def _known_study(con: Any, path: str, study: str) -> None:
    known = _query(con, "SELECT study FROM studies ORDER BY study").column("study").to_pylist()
    if study not in known:
        raise HPOStoreError(f"{path} has no study {study!r}; its studies: {known}")


def _trials(args: argparse.Namespace) -> pa.Table:
    con = _views(args.path)
    _known_study(con, args.path, args.study)
    table = _query(
        con,
        "SELECT trial, config, status, error, runtime, resource, attempts, reports, started_at, "
        "finished_at, worker, message FROM trials WHERE study = ? ORDER BY trial",
        [args.study],
    )
    return flatten_configs(table)


def flatten_configs(table: pa.Table) -> pa.Table:
    """Each hyperparameter of the JSON ``config`` column as a column of its own."""
    configs = [json.loads(c) for c in table.column("config").to_pylist()]
    names: dict[str, None] = {}
    for c in configs:
        names.update(dict.fromkeys(c))
    out = table.drop_columns(["config"])
    for i, name in enumerate(names):
        out = out.add_column(1 + i, name, pa.array([c.get(name) for c in configs]))
    return out


def _sql(args: argparse.Namespace) -> pa.Table:
    import duckdb

    con = _views(args.path)
    try:
        statements = con.extract_statements(args.query)
    except duckdb.Error as exc:
        raise HPOStoreError(f"cannot parse the query: {exc}") from exc
    if len(statements) != 1 or statements[0].type is not duckdb.StatementType.SELECT:
        kinds = ", ".join(st.type.name for st in statements) or "nothing"
        raise HPOStoreError(f"hpostore sql is read-only: it runs one SELECT, got {kinds}")
    try:
        return _query(con, args.query)
    except duckdb.Error as exc:
        raise HPOStoreError(f"the query failed: {exc}") from exc


def _show(args: argparse.Namespace) -> str:
    from .log.fold import replay_table

    with open_store(args.path, read_only=True) as store:
        if args.study not in store.studies():
            raise HPOStoreError(
                f"{args.path} has no study {args.study!r}; its studies: {store.studies()}"
            )
        events = store.events(args.study)
    state = replay_table(args.study, events)
    spec = state.spec or {}
    scheduler = spec.get("scheduler") or {}
    searcher = (scheduler.get("args") or {}).get("searcher") or {}
    counts = state.status_counts()
    last = events.slice(events.num_rows - 1).to_pylist()[0]
    lines = [
        f"study       {args.study}",
        f"scheduler   {scheduler.get('class', '?')}",
        f"searcher    {searcher.get('class', '-')}",
        f"seed        {spec.get('seed')}",
        f"objective   {spec.get('objective', '?')} ({spec.get('metric', 'error')}, {spec.get('mode', 'min')})",
        f"space       {_space_text(spec.get('space'))}",
        f"trials      {len(state.trials)}: "
        + ", ".join(f"{n} {status.value}" for status, n in counts.items() if n)
        + f"; {state.n_finished} evaluations",
    ]
    if state.incumbent_trial is not None:
        lines.append(
            f"incumbent   trial {state.incumbent_trial}, error {state.incumbent_error:.6g}, "
            f"config {json.dumps(state.incumbent)}"
        )
    else:
        lines.append("incumbent   none yet (no finished trial)")
    lines += [
        f"elapsed     {state.elapsed:.1f} s of study time over {state.sessions} session(s)"
        + (" (a session is open or died)" if state.session_open else ""),
        f"last event  seq {last['seq']} {last['kind']} at {last['ts']:%Y-%m-%d %H:%M:%S} UTC"
        + (f" ({last['payload']})" if last["kind"] == Kind.END and last["payload"] else ""),
        f"format      event-log version {spec.get('format_version')}, hpostore {spec.get('hpostore_version')}",
    ]
    return "\n".join(lines)


def _space_text(space: Any) -> str:
    if not isinstance(space, dict):
        return "-"
    parts = []
    for name, domain in space.items():
        if isinstance(domain, dict) and domain.get("type") == "choice":
            parts.append(f"{name} in {domain.get('values')}")
        elif isinstance(domain, dict) and "dist" in domain:
            args = ", ".join(str(a) for a in domain.get("args", []))
            parts.append(f"{name} ~ {domain['dist']}({args})")
        else:
            parts.append(f"{name} = {json.dumps(domain)}")
    return "; ".join(parts) or "-"


def _plot(args: argparse.Namespace) -> str:
    from analysis import plots

    with open_store(args.path, read_only=True) as store:
        known = store.studies()
        missing = [s for s in args.study if s not in known]
        if missing:
            raise HPOStoreError(f"{args.path} has no study {missing[0]!r}; its studies: {known}")
        if args.kind == "anytime":
            plots.anytime_plot(
                store, args.study, group_by=args.group_by, x=args.x, log_x=args.log_x,
                log_y=args.log_y, title=args.title, path=args.output,
            )  # fmt: skip
        else:
            if len(args.study) != 1:
                raise HPOStoreError(f"--kind {args.kind} plots one study, got {len(args.study)}")
            draw = (
                plots.learning_curves_plot if args.kind == "learning-curves" else plots.scatter_plot
            )
            draw(store, args.study[0], log_y=args.log_y, title=args.title, path=args.output)
    return f"wrote {args.output}"


def _export(args: argparse.Namespace) -> pa.Table:
    if (args.parquet is None) == (args.duckdb is None):
        raise HPOStoreError("give exactly one target: --parquet DIR or --duckdb FILE")
    with open_store(args.path, read_only=True) as source:
        studies = args.study or source.studies()
        missing = sorted(set(studies) - set(source.studies()))
        if missing:
            raise HPOStoreError(f"{args.path} has no study {missing[0]!r}")
        table = pa.concat_tables([source.events(s) for s in studies])
    if args.parquet is not None:
        from .store.parquet import ParquetStore

        target = ParquetStore(args.parquet)
        try:
            written = target.import_events(table)
        finally:
            target.close()
    else:
        written = _import_duckdb(args.duckdb, table)
    return pa.table(
        {"study": list(written), "events": pa.array(list(written.values()), pa.int64())}
    )


def _import_duckdb(path: str, table: pa.Table) -> dict[str, int]:
    from .store.duckdb import DuckDBStore

    store = open_store(path)
    try:
        assert isinstance(store, DuckDBStore)
        studies = table.column("study").unique().to_pylist()
        clash = sorted(set(studies) & set(store.studies()))
        if clash:
            raise HPOStoreError(f"{path} already holds study {clash[0]!r}; export it elsewhere")
        con = store._connect()  # the store holds the write lock: one batch INSERT, ts kept
        con.register("_hpostore_import", table)
        try:
            con.execute("INSERT INTO events SELECT * FROM _hpostore_import")
        finally:
            con.unregister("_hpostore_import")
        counts = pa.TableGroupBy(table, "study").aggregate([("seq", "count")]).to_pylist()
        return {r["study"]: r["seq_count"] for r in counts}
    finally:
        store.close()


def _compact(args: argparse.Namespace) -> pa.Table:
    from .store.parquet import ParquetStore

    store = open_store(args.path if args.path.endswith("/") else args.path + "/")
    try:
        if not isinstance(store, ParquetStore):
            raise HPOStoreError(f"{args.path} is not a Parquet log directory")
        done = store.compact(args.study)
    finally:
        store.close()
    return pa.table(
        {
            "study": list(done),
            "segments_before": pa.array([b for b, _ in done.values()], pa.int64()),
            "segments_after": pa.array([a for _, a in done.values()], pa.int64()),
        }
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpostore",
        description="Look into an hpostore event log (a DuckDB file or a Parquet directory), "
        "plot it, export it, compact it. Only export and compact write (to their targets).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "studies",
        help="list the studies in a store",
        description="List the studies in a store with counts and best error.",
    )
    p.add_argument("path", help="the store, e.g. runs.duckdb")
    p.set_defaults(run=_studies)
    p = sub.add_parser(
        "trials",
        help="one line per trial of a study",
        description="Show one line per trial of a study: status, config, error, runtime.",
    )
    p.add_argument("path", help="the store, e.g. runs.duckdb")
    p.add_argument("study", help="the study's name")
    p.set_defaults(run=_trials)
    p = sub.add_parser(
        "sql",
        help="run a read-only SELECT over the events table and the analysis views",
        description="Run one read-only SELECT over the `events` table and the analysis views "
        "(studies, trials, trial_status, anytime, learning_curves, decisions), e.g.\n"
        "  hpostore sql runs.duckdb \"SELECT trial, error FROM events WHERE kind = 'evaluate' ORDER BY error LIMIT 5\"\n"
        '  hpostore sql runs.duckdb "SELECT study, finished, interrupted, best_error FROM studies"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", help="the store, e.g. runs.duckdb")
    p.add_argument("query", help="a SELECT statement")
    p.set_defaults(run=_sql)
    p = sub.add_parser(
        "show",
        help="a study's spec, incumbent, trial counts, elapsed time, last event",
        description="Show one study: searcher and scheduler, seed, config space, trials by "
        "status, the incumbent, study time over sessions, and the last event.",
    )
    p.add_argument("path", help="the store: runs.duckdb or a Parquet directory runs/")
    p.add_argument("study", help="the study's name")
    p.set_defaults(run=_show)
    p = sub.add_parser(
        "plot",
        help="write an any-time, learning-curve or scatter plot (PNG, SVG or PDF)",
        description="Plot studies of a store. --kind anytime (default): the incumbent against "
        "study time, one colour per searcher + scheduler, median and quartile bands when "
        "several studies (seeds) share one; learning-curves: error against resource per trial "
        "with the scheduler's stop/promote decisions (one study); scatter: error against each "
        "hyperparameter (one study). The format follows the suffix of -o.\n"
        "  hpostore plot runs.duckdb random-s0 random-s1 asha-s0 asha-s1 -o anytime.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", help="the store: runs.duckdb or a Parquet directory runs/")
    p.add_argument("study", nargs="+", help="one or more study names")
    p.add_argument(
        "-o", "--output", default="anytime.png", help="the file to write (.png, .svg, .pdf)"
    )
    p.add_argument(
        "--kind", choices=("anytime", "learning-curves", "scatter"), default="anytime",
        help="which plot (default: anytime)",
    )  # fmt: skip
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
    p.set_defaults(run=_plot)
    p = sub.add_parser(
        "export",
        help="copy studies to a Parquet directory or a DuckDB file",
        description="Copy every event of the chosen studies (default: all), unchanged, to "
        "another store:\n"
        "  hpostore export runs.duckdb --parquet runs/\n"
        "  hpostore export runs/ --duckdb copy.duckdb\n"
        "The target must not hold those studies yet.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", help="the source store: runs.duckdb or a Parquet directory runs/")
    p.add_argument("--parquet", metavar="DIR", help="write a Parquet log directory")
    p.add_argument("--duckdb", metavar="FILE", help="write a DuckDB file (.duckdb)")
    p.add_argument("--study", action="append", help="a study to copy (repeatable; default all)")
    p.set_defaults(run=_export)
    p = sub.add_parser(
        "compact",
        help="merge the small segment files of a Parquet directory",
        description="Merge each study's Parquet segments into one file (readers see the same "
        "events before, during and after) and remove leftovers of crashed writes. Safe while "
        "writers are running.",
    )
    p.add_argument("path", help="the Parquet log directory, e.g. runs/")
    p.add_argument("--study", default=None, help="compact only this study")
    p.set_defaults(run=_compact)
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
    p.set_defaults(run=_serve)
    return parser


def _serve(args: argparse.Namespace) -> str:
    from .serve._cli import run_serve  # Starlette and Uvicorn load only for this command

    return run_serve(args.path, host=args.host, port=args.port, token=args.token)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from analysis import AnalysisError

    try:
        table = args.run(args)
    except (HPOStoreError, AnalysisError) as exc:
        print(f"hpostore {args.command}: {exc}", file=sys.stderr)
        return 1
    print(format_table(table) if isinstance(table, pa.Table) else table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
