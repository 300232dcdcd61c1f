"""What each ``hpostore`` subcommand does: read the store, return a table, a dict or a line."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import HPOStoreError, InvalidArgument
from ..log._arrowcols import bools, float64s, int64s, strings
from ..log.events import Kind
from ..store.base import open_store


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


def studies(args: argparse.Namespace) -> pa.Table:
    con = _views(args.path)
    return _query(con, f"SELECT {', '.join(STUDIES_COLUMNS)} FROM studies ORDER BY first_ts, study")


def _known_study(con: Any, path: str, study: str) -> None:
    known = _query(con, "SELECT study FROM studies ORDER BY study").column("study").to_pylist()
    if study not in known:
        raise HPOStoreError(f"{path} has no study {study!r}; its studies: {known}")


def trials(args: argparse.Namespace) -> pa.Table:
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
    configs = [json.loads(c) if c else {} for c in table.column("config").to_pylist()]
    names: dict[str, None] = {}
    for c in configs:
        names.update(dict.fromkeys(c))
    out = table.drop_columns(["config"])
    for i, name in enumerate(names):
        column = name if name not in out.column_names else f"{name}_1"  # as the trials view
        out = out.add_column(1 + i, column, _config_column([c.get(name) for c in configs]))
    return out


def _config_column(values: list[Any]) -> pa.Array:
    """One hyperparameter's values as a column: bools, ints, numbers or texts as they all are,
    else (a categorical of mixed types, a list) each value's JSON text. Not ``pa.array``: it
    refuses mixed types and imports pandas (~0.5 s) when it is installed."""
    kinds = {type(v) for v in values if v is not None}
    try:
        if kinds <= {bool}:
            return bools(values)
        if kinds <= {int}:
            return int64s(values)
        if kinds <= {int, float}:
            return float64s(values)
    except OverflowError:  # an int beyond int64
        pass
    if kinds <= {str}:
        return strings(values)
    return strings([None if v is None else json.dumps(v) for v in values])


def sql(args: argparse.Namespace) -> pa.Table:
    """One read-only SELECT over ``events`` and the views (the rest is refused with
    ``SQLNotAllowed``, as by ``analysis.query``)."""
    from ..log.sql import run_user_sql

    return run_user_sql(_views(args.path), args.query, None, where="hpostore sql")


def show(args: argparse.Namespace) -> dict[str, Any]:
    from ..log.fold import replay_table

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
    last = events.slice(events.num_rows - 1).to_pylist()[0]
    incumbent = None
    if state.incumbent_trial is not None:
        incumbent = {
            "trial": state.incumbent_trial,
            "error": state.incumbent_error,
            "config": state.incumbent,
        }
    return {
        "study": args.study,
        "scheduler": scheduler.get("class"),
        "searcher": searcher.get("class"),
        "seed": spec.get("seed"),
        "objective": spec.get("objective"),
        "metric": spec.get("metric", "error"),
        "mode": spec.get("mode", "min"),
        "space": spec.get("space"),
        "trials": len(state.trials),
        "status_counts": {s.value: n for s, n in state.status_counts().items() if n},
        "evaluations": state.n_finished,
        "incumbent": incumbent,
        "elapsed_s": state.elapsed,
        "sessions": state.sessions,
        "session_open": state.session_open,
        "last_event": {
            "seq": last["seq"],
            "kind": last["kind"],
            "ts": last["ts"],
            "payload": last["payload"] if last["kind"] == Kind.END else None,
        },
        "format_version": spec.get("format_version"),
        "hpostore_version": spec.get("hpostore_version"),
    }


def show_text(info: dict[str, Any]) -> str:
    """``hpostore show`` as aligned lines for a person."""
    counts = ", ".join(f"{n} {status}" for status, n in info["status_counts"].items())
    lines = [
        f"study       {info['study']}",
        f"scheduler   {info['scheduler'] or '?'}",
        f"searcher    {info['searcher'] or '-'}",
        f"seed        {info['seed']}",
        f"objective   {info['objective'] or '?'} ({info['metric']}, {info['mode']})",
        f"space       {_space_text(info['space'])}",
        f"trials      {info['trials']}: {counts}; {info['evaluations']} evaluations",
    ]
    inc = info["incumbent"]
    if inc is not None:
        lines.append(
            f"incumbent   trial {inc['trial']}, error {inc['error']:.6g}, "
            f"config {json.dumps(inc['config'])}"
        )
    else:
        lines.append("incumbent   none yet (no finished trial)")
    last = info["last_event"]
    lines += [
        f"elapsed     {info['elapsed_s']:.1f} s of study time over {info['sessions']} session(s)"
        + (" (a session is open or died)" if info["session_open"] else ""),
        f"last event  seq {last['seq']} {last['kind']} at {last['ts']:%Y-%m-%d %H:%M:%S} UTC"
        + (f" ({last['payload']})" if last["payload"] else ""),
        f"format      event-log version {info['format_version']}, "
        f"hpostore {info['hpostore_version']}",
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


def export(args: argparse.Namespace) -> pa.Table:
    targets = [t for t in (args.parquet, args.duckdb, args.tensorboard) if t]
    if len(targets) != 1:
        raise InvalidArgument(
            "give exactly one target: --parquet DIR, --duckdb FILE or --tensorboard DIR"
        )
    if args.tensorboard is not None:
        from ..integrations.tensorboard import export_tensorboard

        trials = export_tensorboard(args.path, args.tensorboard, args.study)
        return _counts({"study": list(trials), "trials": list(trials.values())})
    with open_store(args.path, read_only=True) as source:
        names = args.study or source.studies()
        missing = sorted(set(names) - set(source.studies()))
        if missing:
            raise HPOStoreError(f"{args.path} has no study {missing[0]!r}")
        table = pa.concat_tables([source.events(s) for s in names])
    if args.parquet is not None:
        from ..store.parquet import ParquetStore

        target = ParquetStore(args.parquet)
        try:
            written = target.import_events(table)
        finally:
            target.close()
    else:
        written = _import_duckdb(args.duckdb, table)
    return _counts({"study": list(written), "events": list(written.values())})


def _import_duckdb(path: str, table: pa.Table) -> dict[str, int]:
    from ..store.duckdb import DuckDBStore

    if path.endswith(("/", "\\")) or Path(path).is_dir():  # open_store would open a Parquet log
        raise InvalidArgument(f"--duckdb takes a DuckDB file, got the directory {path}; "
                              "to export to a Parquet log use --parquet DIR")  # fmt: skip
    store = open_store(path)
    try:
        assert isinstance(store, DuckDBStore)  # a file path opens as one (checked above)
        names = table.column("study").unique().to_pylist()
        clash = sorted(set(names) & set(store.studies()))
        if clash:
            raise HPOStoreError(f"{path} already holds study {clash[0]!r}; export it elsewhere")
        con = store._connect()  # the store holds the write lock: one batch INSERT, ts kept
        con.register("_hpostore_import", table)
        try:
            con.execute("INSERT INTO events SELECT * FROM _hpostore_import")
        finally:
            con.unregister("_hpostore_import")
        # value_counts, not TableGroupBy: that loads pyarrow.acero, which imports pandas
        counts = pc.value_counts(table.column("study")).to_pylist()
        return {c["values"]: c["counts"] for c in counts}
    finally:
        store.close()


def _check_parquet_store(path: str, study: str | None) -> None:
    """Refuse what is not an existing Parquet log directory (opening one for writing would
    create it), or a study it does not hold."""
    from ..log.segments import list_segments, study_folders

    root = Path(path)
    if not root.exists():
        raise HPOStoreError(f"{path} does not exist: give an existing Parquet log directory")
    if not root.is_dir():
        raise HPOStoreError(
            f"{path} is not a Parquet log directory (a DuckDB file needs no compacting)"
        )
    held = [name for name, folder in study_folders(root) if list_segments(folder)]
    if not held:
        raise HPOStoreError(
            f"{path} holds no Parquet segments: it is not an hpostore Parquet log directory"
        )
    if study is not None and study not in held:
        raise HPOStoreError(f"{path} has no study {study!r}; its studies: {sorted(held)}")


def compact(args: argparse.Namespace) -> pa.Table:
    from ..store.parquet import ParquetStore

    _check_parquet_store(args.path, args.study)
    store = ParquetStore(args.path)
    try:
        done = store.compact(args.study)
    finally:
        store.close()
    return _counts(
        {
            "study": list(done),
            "segments_before": [b for b, _ in done.values()],
            "segments_after": [a for _, a in done.values()],
        }
    )


def _counts(columns: dict[str, list[Any]]) -> pa.Table:
    """A table of study names and integer counts, built without ``pa.array`` (which imports
    pandas when it is installed: ~1 s of a CLI command)."""
    return pa.table(
        {name: strings(v) if name == "study" else int64s(v) for name, v in columns.items()}
    )


def plot(args: argparse.Namespace) -> str:
    from analysis import plots

    out = Path(args.output)
    suffix = out.suffix.lower()
    if suffix not in plots.FORMATS:
        raise InvalidArgument(
            f"cannot write a plot as {suffix or 'a file without suffix'!r}: "
            f"end -o with one of {', '.join(plots.FORMATS)}"
        )
    if out.exists() and not args.force:
        raise HPOStoreError(f"{out} exists: give another -o, or --force to overwrite it")
    if not out.parent.is_dir():
        raise HPOStoreError(f"cannot write {out}: the folder {out.parent} does not exist")
    with open_store(args.path, read_only=True) as store:
        known = store.studies()
        missing = [s for s in args.study if s not in known]
        if missing:
            raise HPOStoreError(f"{args.path} has no study {missing[0]!r}; its studies: {known}")
        fig = plots.plot(
            store, args.kind, args.study, group_by=args.group_by, x=args.x,
            log_x=args.log_x, log_y=args.log_y, title=args.title,
        )  # fmt: skip
    try:
        plots.save(fig, out)
    except OSError as exc:
        raise HPOStoreError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return f"wrote {out}"


def serve(args: argparse.Namespace) -> str:
    from ..serve._cli import run_serve  # Starlette and Uvicorn load only for this command

    if args.study_service:
        from ..serve._routes import run_study_service

        return run_study_service(args.path, host=args.host, port=args.port, token=args.token,
                                 lease_s=args.lease)  # fmt: skip
    return str(run_serve(args.path, host=args.host, port=args.port, token=args.token))


def worker(args: argparse.Namespace) -> str:
    from ..worker import run_worker  # standard library only: no web stack on a compute node

    command = list(args.cmd)
    if "--" in command:  # options given after STUDY land in the remainder, before the "--"
        cut = command.index("--")
        args = args.parser.parse_args(command[:cut], namespace=args)
        command = command[cut + 1 :]
    if args.trials is not None and args.trials < 1:
        raise InvalidArgument(f"--trials must be a positive integer, got {args.trials}")
    return run_worker(args.url, args.study, command, trials=args.trials, token=args.token,
                      grace_s=args.grace)  # fmt: skip
