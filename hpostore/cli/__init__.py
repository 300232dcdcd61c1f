"""The ``hpostore`` command: look into a store from the shell, plot, export, compact, serve it.

Errors that hpostore raises on purpose (``HPOStoreError``) print as one line on stderr
(``hpostore <command>: error: …``; exit status 1, or 2 for arguments that cannot work
together, as for argparse's own usage errors); output piped into a program that stops
reading (``| head``) ends quietly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..errors import HPOStoreError, InvalidArgument
from ._commands import STUDIES_COLUMNS, flatten_configs
from ._commands import _import_duckdb as _import_duckdb  # tests use it
from ._output import format_table, render
from ._parser import build_parser

__all__ = ["STUDIES_COLUMNS", "build_parser", "flatten_configs", "format_table", "main"]


def one_line(message: str) -> str:
    """``message`` on one line (DuckDB's errors span several, with a caret line)."""
    lines = [ln.strip() for ln in str(message).splitlines()]
    return "; ".join(ln for ln in lines if ln and set(ln) != {"^"})


def write_out(text: str, *, chunk: int = 4096) -> None:
    """Write ``text`` to stdout in pieces smaller than its buffer: one large ``write`` to a pipe
    whose reader has gone can return short without raising (CPython's BufferedWriter passes
    on the partial count and TextIOWrapper drops it), so the broken pipe would go unnoticed."""
    for start in range(0, len(text), chunk):
        sys.stdout.write(text[start : start + chunk])
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``hpostore`` command; the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    where = f"{parser.prog} {args.command}"
    try:
        result = args.run(args)
        fmt = getattr(args, "format", "table")
        if isinstance(result, dict) and fmt == "table":
            text = args.text(result)
        else:
            text = render(result, fmt)
        write_out(text + "\n")
    except BrokenPipeError:
        # The reader went away (`| head`): no traceback, and none at exit when Python flushes
        # stdout again (the recipe of the `signal` module's documentation).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except InvalidArgument as exc:
        print(f"{where}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except HPOStoreError as exc:
        print(f"{where}: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return 130
    return 0
