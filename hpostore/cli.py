"""The ``hpostore`` command: look into a store from the shell (read-only)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from .errors import HPOStoreError
from .store.base import open_store


def format_table(table: pa.Table, *, max_width: int = 40) -> str:
    """A plain-text table: a header, a rule, one line per row."""
    names = table.column_names
    rows = [[_cell(v, max_width) for v in row.values()] for row in table.to_pylist()]
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def _cell(value: Any, max_width: int) -> str:
    if value is None:
        text = ""
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return text if len(text) <= max_width else text[: max_width - 1] + "…"


def _studies(args: argparse.Namespace) -> pa.Table:
    with open_store(args.path, read_only=True) as store:
        return store.sql(
            """
            SELECT study,
                   count(*) AS events,
                   count(*) FILTER (kind = 'suggest') AS trials,
                   count(*) FILTER (kind = 'evaluate') AS finished,
                   count(*) FILTER (kind = 'fail') AS failed,
                   min(error) FILTER (kind = 'evaluate') AS best_error,
                   max(elapsed) AS elapsed_s,
                   max(ts) AS last_event
            FROM events GROUP BY study ORDER BY min(ts), study
            """
        )


def _trials(args: argparse.Namespace) -> pa.Table:
    with open_store(args.path, read_only=True) as store:
        if args.study not in store.studies():
            raise HPOStoreError(
                f"{args.path} has no study {args.study!r}; its studies: {store.studies()}"
            )
        table = store.trials(args.study)
    return flatten_configs(table.drop_columns(["session", "suggested_at"]))


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
    with open_store(args.path, read_only=True) as store:
        return store.sql(args.query)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpostore",
        description="Look into an hpostore event log (a DuckDB file). Every command is read-only.",
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
        help="run a read-only SELECT over the events table",
        description="Run one read-only SELECT over the `events` table, e.g.\n"
        "  hpostore sql runs.duckdb \"SELECT trial, error FROM events WHERE kind = 'evaluate' ORDER BY error LIMIT 5\"",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", help="the store, e.g. runs.duckdb")
    p.add_argument("query", help="a SELECT statement")
    p.set_defaults(run=_sql)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        table = args.run(args)
    except HPOStoreError as exc:
        print(f"hpostore {args.command}: {exc}", file=sys.stderr)
        return 1
    print(format_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
