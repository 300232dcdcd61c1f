"""How the ``hpostore`` command prints a result: a plain-text table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date, datetime
from typing import Any

import pyarrow as pa

#: the values of ``--format``
FORMATS = ("table", "csv", "json")


def render(result: Any, fmt: str = "table") -> str:
    """The text to print for what a command returned: an Arrow table, a dict (``show``), or
    a line of text."""
    if isinstance(result, pa.Table):
        if fmt == "csv":
            return format_csv(result)
        if fmt == "json":
            return format_json(result)
        return format_table(result)
    if isinstance(result, dict):
        return json.dumps(_plain(result), indent=2)
    return str(result)


def format_table(table: pa.Table, *, max_width: int = 40) -> str:
    """A plain-text table: a header, a rule, one line per row."""
    names = table.column_names
    rows = [[_cell(v, max_width) for v in row.values()] for row in pylist(table)]
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def format_csv(table: pa.Table) -> str:
    """CSV with a header line; NULL is an empty field, timestamps are ISO 8601 (UTC)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in pylist(table):
        writer.writerow(["" if v is None else _text(_plain(v)) for v in row.values()])
    return out.getvalue().rstrip("\n")


def format_json(table: pa.Table) -> str:
    """A JSON array of one object per row; NULL and non-finite floats are ``null``."""
    return json.dumps([_plain(row) for row in pylist(table)], indent=1)


def pylist(table: pa.Table) -> list[dict[str, Any]]:
    """``table.to_pylist()`` without pandas: pyarrow imports pandas (~0.5 s, when installed) to
    convert a timestamp with a time zone, so those columns are converted here (as UTC)."""
    from datetime import timezone

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


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it: ISO timestamps, ``None`` for NaN and infinities."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _cell(value: Any, max_width: int) -> str:
    if value is None:
        text = ""
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return text if len(text) <= max_width else text[: max_width - 1] + "…"
