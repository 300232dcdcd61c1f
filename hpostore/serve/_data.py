"""What the dashboard shows, computed from the analysis views as small JSON-ready records.

Each function takes a connection on which :func:`analysis.views` has created the views, runs
fixed, parameterised SQL (study names are never spliced) and returns plain dicts and lists,
capped so that a store of millions of events still gives a response of a few hundred kB:
large selections are aggregated or cut here, and each record says how much it left out.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

import duckdb

from analysis._importance import importance

from ..errors import HPOStoreError

#: Rows of the trials table sent to the browser (half the best, half the most recent).
TRIAL_ROWS = 1000
#: Finished trials behind parallel coordinates, slices and importance (the most recent).
POINTS = 2000
#: Learning curves drawn: the best trials and the most recently reporting ones.
CURVES_BEST, CURVES_RECENT, POINTS_PER_CURVE = 30, 10, 200
#: Bars of the worker timeline (the most recent attempts).
TIMELINE_BARS = 1500
#: A study with no event for this long and no ``end`` is shown as idle, not running.
IDLE_AFTER_S = 60.0

TRIAL_COLUMNS = (
    "trial", "status", "error", "resource", "runtime", "attempts", "reports",
    "started_at", "finished_at", "worker", "message",
)  # fmt: skip


class UnknownStudy(HPOStoreError):
    """The log holds no study of that name."""


def _clean(value: Any) -> Any:
    """A value JSON can carry: no NaN/inf, datetimes as ISO text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description or ()]
    return [{n: _clean(v) for n, v in zip(names, row)} for row in cur.fetchall()]


_STUDIES = """
SELECT s.study, s.scheduler, s.searcher, s.metric, s.mode, s.events, s.trials, s.finished,
       s.paused, s.stopped, s.failed, s.interrupted, s.running, s.evaluations, s.sessions,
       s.best_error, s.incumbent_trial, s.elapsed_s, s.first_ts, s.last_ts,
       l.last_kind, l.last_seq
FROM studies AS s
JOIN (SELECT study, arg_max(kind, seq) AS last_kind, max(seq) AS last_seq
      FROM events GROUP BY study) AS l USING (study)
"""


def studies(con: duckdb.DuckDBPyConnection, study: str | None = None) -> list[dict[str, Any]]:
    """One record per study (or the one named): the ``studies`` view, the last event's kind
    and seq."""
    where, params = ("WHERE s.study = ?", [study]) if study is not None else ("", [])
    return _rows(con, f"{_STUDIES} {where} ORDER BY s.first_ts, s.study", params)


def with_status(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` (of :func:`studies`) with a ``status`` as of now: ``ended`` (its last session
    ended cleanly), ``running`` (events within the last ``IDLE_AFTER_S`` seconds) or ``idle``
    (no end, quiet since: slow trials, or a process that died)."""
    last = datetime.fromisoformat(row["last_ts"]) if row.get("last_ts") else None
    if row.get("last_kind") == "end":
        status = "ended"
    elif last is not None and (datetime.now(timezone.utc) - last).total_seconds() < IDLE_AFTER_S:
        status = "running"
    else:
        status = "idle"
    return {**row, "status": status}


def last_seq(con: duckdb.DuckDBPyConnection, study: str) -> int:
    """The study's last seq; :class:`UnknownStudy` when the log has no such study."""
    row = con.execute("SELECT max(seq) FROM events WHERE study = ?", [study]).fetchall()
    if not row or row[0][0] is None:
        names = [r[0] for r in con.execute("SELECT DISTINCT study FROM events").fetchall()]
        shown = ", ".join(repr(n) for n in sorted(names)[:20]) or "none"
        raise UnknownStudy(f"no study {study!r} in this log; its studies: {shown}")
    return int(row[0][0])


def events_after(
    con: duckdb.DuckDBPyConnection, study: str, after: int, limit: int
) -> dict[str, Any]:
    """The study's last seq and its newest events after ``after`` (at most ``limit``)."""
    last = last_seq(con, study)
    rows = _rows(
        con,
        "SELECT seq, kind, trial, elapsed, resource, error, worker FROM events "
        "WHERE study = ? AND seq > ? ORDER BY seq DESC LIMIT ?",
        [study, after, limit],
    )
    rows.reverse()
    return {"study": study, "last_seq": last, "events": rows, "more": last - after > len(rows)}


def parameters(con: duckdb.DuckDBPyConnection, study: str) -> list[dict[str, Any]]:
    """The hyperparameters of the study's config space (constants left out): name, kind
    (``float``, ``int``, ``log`` for log-uniform, ``choice``) and the choices' values."""
    payload = con.execute(
        "SELECT payload FROM events WHERE study = ? AND kind = 'study' ORDER BY seq LIMIT 1",
        [study],
    ).fetchall()
    space = json.loads(payload[0][0]).get("space") if payload and payload[0][0] else None
    out = []
    for name, domain in (space or {}).items():
        kind = domain.get("type") if isinstance(domain, dict) else None
        if kind == "constant":
            continue
        if kind == "choice":
            out.append({"name": name, "kind": "choice", "values": domain.get("values", [])})
        elif kind == "scipy":
            dist = domain.get("dist")
            typ = "log" if dist in ("loguniform", "reciprocal") else "float"
            out.append({"name": name, "kind": "int" if dist == "randint" else typ})
    return out


def trials(
    con: duckdb.DuckDBPyConnection, study: str, mode: str | None, params: list[str]
) -> dict[str, Any]:
    """The trials table: all trials, or the ``TRIAL_ROWS/2`` best and most recent."""
    order = "DESC" if mode == "max" else "ASC"  # one of two literals, never user text
    total = con.execute("SELECT count(*) FROM trials WHERE study = ?", [study]).fetchall()[0][0]
    half = TRIAL_ROWS // 2
    rows = _rows(
        con,
        f"""
        WITH t AS (SELECT {", ".join(TRIAL_COLUMNS)}, config FROM trials WHERE study = ?)
        SELECT {", ".join(TRIAL_COLUMNS)}, config FROM t
        WHERE ? OR trial IN (SELECT trial FROM (SELECT trial FROM t ORDER BY error {order} NULLS LAST, trial LIMIT ?))
                OR trial IN (SELECT trial FROM (SELECT trial FROM t ORDER BY trial DESC LIMIT ?))
        ORDER BY trial
        """,
        [study, total <= TRIAL_ROWS, half, half],
    )
    columns = list(TRIAL_COLUMNS) + params
    out = []
    for row in rows:
        config = json.loads(row.pop("config") or "{}")
        out.append([row[c] for c in TRIAL_COLUMNS] + [_clean(config.get(p)) for p in params])
    return {"columns": columns, "rows": out, "total": total}


def points(
    con: duckdb.DuckDBPyConnection, study: str, params: list[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The results behind parallel coordinates and slices (the ``POINTS`` most recent trials
    with an error), and the importance of each hyperparameter estimated from them."""
    rows = con.execute(
        "SELECT trial, error, config FROM trials WHERE study = ? AND error IS NOT NULL "
        "ORDER BY trial DESC LIMIT ?",
        [study, POINTS],
    ).fetchall()
    rows.reverse()
    configs = [json.loads(r[2] or "{}") for r in rows]
    errors = [float(r[1]) for r in rows]
    values = {p: [c.get(p) for c in configs] for p in params}
    ranked = importance(values, errors)
    return (
        {
            "trial": [r[0] for r in rows],
            "error": [_clean(e) for e in errors],
            "params": {p: [_clean(v) for v in vs] for p, vs in values.items()},
        },
        [{"param": name, "eta2": round(eta2, 4), "n": len(rows)} for name, eta2 in ranked],
    )
