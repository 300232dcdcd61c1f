"""The dashboard's Starlette app: the page, its static files, and read-only JSON endpoints.

Endpoints (all GET; every query is fixed SQL in this package, the study a parameter):

- ``/api/studies`` — one record per study (status, trials, best, elapsed).
- ``/api/studies/{study}`` — everything the study's page draws, capped in size.
- ``/api/studies/{study}/events?after=SEQ&limit=N`` — the last seq and the events after SEQ:
  the page polls it and redraws when the log has grown.
- ``/api/studies/{study}/contour?x=P&y=Q`` — the mean result over a grid of two parameters.
- ``/api/anytime?study=A&study=B&x=elapsed`` — any-time curves of several studies, to overlay,
  and the median and quantile band of each group of studies that repeat one setup.

The study service (ask/tell) will add its POST routes through ``extra_routes``; the guard
already bounds request bodies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import HPOStoreError
from . import _charts, _data, _panels
from ._guard import Guard
from ._source import LogSource, Reading, StoreBusy

#: Request bodies larger than this are refused (the dashboard's requests have none).
MAX_BODY_BYTES = 64 * 1024
#: Most events one poll returns, and most studies one any-time request overlays.
MAX_EVENTS, MAX_OVERLAY = 500, 12
#: JSON responses are never cached by the browser: each poll must see the log as it is.
NO_STORE = {"cache-control": "no-store"}


class BadRequest(HPOStoreError):
    """A query parameter the dashboard cannot use (the message says which and why)."""


def _static(name: str) -> Path:
    return Path(str(resources.files("hpostore.serve").joinpath("static").joinpath(name)))


def plotly_js() -> Path:
    """plotly.min.js as shipped inside the ``plotly`` wheel (nothing is fetched at run time)."""
    try:
        found = resources.files("plotly").joinpath("package_data").joinpath("plotly.min.js")
    except ModuleNotFoundError as exc:
        raise HPOStoreError(
            "the dashboard draws its charts with plotly.js from the plotly package: "
            "pip install 'hpostore[serve]'"
        ) from exc
    path = Path(str(found))
    if not path.is_file():
        raise HPOStoreError(
            f"the plotly package has no {path}; reinstall it: pip install -U plotly"
        )
    return path


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {text[:40]!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, allow_nan=False, separators=(",", ":"), default=str)
    return Response(body, status, {**NO_STORE, **(headers or {})}, "application/json")


def _answer(work: Callable[[], Reading[Any]]) -> Response:
    """Run ``work`` and turn its reading or its error into a JSON response."""
    try:
        reading = work()
    except _data.UnknownStudy as exc:
        return _json({"error": str(exc)}, 404)
    except (BadRequest, _panels.UnknownParameter) as exc:
        return _json({"error": str(exc)}, 400)
    except StoreBusy as exc:
        return _json({"error": str(exc)}, 503, {"retry-after": "1"})
    value = reading.value
    return _json({**value, "stale": reading.stale} if isinstance(value, dict) else value)


def _study_page(con: duckdb.DuckDBPyConnection, study: str) -> dict[str, Any]:
    _data.last_seq(con, study)  # UnknownStudy before anything else
    info = _data.studies(con, study)[0]  # its status is added when answering
    params = _data.parameters(con, study)
    names = [p["name"] for p in params]
    points, importance = _data.points(con, study, names)
    pareto = _panels.pareto(con, study)
    mode = pareto["objectives"][0]["mode"] if pareto else info["mode"]
    pair = _panels.default_pair(params, importance)
    return {
        "info": info,
        "params": params,
        "trials": _data.trials(con, study, info["mode"], names),
        "points": points,
        "importance": importance,
        "curves": _charts.curves(con, study, info["mode"]),
        "timeline": _charts.timeline(con, study),
        "anytime": _charts.anytime(con, study),
        "contour": _panels.contour(points, params, mode, *pair) if len(pair) == 2 else None,
        "pareto": pareto,
    }


def _anytime_of(name: str) -> Callable[[duckdb.DuckDBPyConnection], dict[str, Any]]:
    def compute(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        _data.last_seq(con, name)  # UnknownStudy
        return _charts.anytime(con, name)

    return compute


def create_app(
    source: LogSource,
    *,
    token: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    extra_routes: Sequence[BaseRoute] = (),
) -> Guard:
    """The dashboard as an ASGI app (Starlette behind :class:`~hpostore.serve._guard.Guard`)."""
    plotly_path = plotly_js()

    def index(request: Request) -> Response:
        return FileResponse(_static("index.html"), headers=NO_STORE)

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return FileResponse(plotly_path)
        if name not in ("app.js", "app.css"):
            return _json({"error": f"no static file {name[:60]!r}"}, 404)
        return FileResponse(_static(name), headers=NO_STORE)

    def study_rows() -> Reading[list[dict[str, Any]]]:
        return source.read_each(
            "row",
            lambda con, name: _data.studies(con, name)[0],
            lambda con: {row["study"]: row for row in _data.studies(con)},
        )

    def studies(request: Request) -> Response:
        def work() -> Reading[Any]:
            reading = study_rows()
            rows = sorted(
                (_data.with_status(r) for r in reading.value),
                key=lambda r: (r["first_ts"] or "", r["study"]),
            )
            return Reading({"source": source.label, "studies": rows}, reading.stale)

        return _answer(work)

    def study(request: Request) -> Response:
        name = request.path_params["study"]

        def work() -> Reading[Any]:
            reading = source.read(("study", name), lambda con: _study_page(con, name), study=name)
            page = {**reading.value, "info": _data.with_status(reading.value["info"])}
            return Reading(page, reading.stale)

        return _answer(work)

    def events(request: Request) -> Response:
        name = request.path_params["study"]

        def work() -> Reading[Any]:
            after = _int_param(request, "after", 0, 0, 2**62)
            limit = _int_param(request, "limit", 100, 1, MAX_EVENTS)
            return source.read(
                ("events", name, after, limit),
                lambda con: _data.events_after(con, name, after, limit),
                study=name,
            )

        return _answer(work)

    def contour(request: Request) -> Response:
        name = request.path_params["study"]

        def work() -> Reading[Any]:
            reading = source.read(("study", name), lambda con: _study_page(con, name), study=name)
            page = reading.value
            pair = _panels.default_pair(page["params"], page["importance"])
            x = request.query_params.get("x") or (pair[0] if pair else "")
            y = request.query_params.get("y") or (pair[1] if len(pair) > 1 else "")
            mode = (
                page["pareto"]["objectives"][0]["mode"] if page["pareto"] else page["info"]["mode"]
            )
            grid = _panels.contour(page["points"], page["params"], mode, x, y)
            return Reading(grid, reading.stale)

        return _answer(work)

    def anytime(request: Request) -> Response:
        names = list(dict.fromkeys(request.query_params.getlist("study")))

        def work() -> Reading[Any]:
            if not 1 <= len(names) <= MAX_OVERLAY:
                raise BadRequest(f"give 1 to {MAX_OVERLAY} study= parameters, got {len(names)}")
            x = request.query_params.get("x", "elapsed")
            if x not in ("elapsed", "n_finished"):
                raise BadRequest(f"x must be elapsed or n_finished, got {x[:40]!r}")
            curves, stale = [], False
            for n in names:
                reading = source.read(("anytime", n), _anytime_of(n), study=n)
                curves.append(reading.value)
                stale = stale or reading.stale
            rows = study_rows()
            by_name = {r["study"]: r for r in rows.value}
            bands = _panels.bands(curves, by_name, x)
            return Reading({"curves": curves, "bands": bands}, stale or rows.stale)

        return _answer(work)

    routes: list[BaseRoute] = [
        Route("/", index),
        Route("/static/{name}", asset),
        Route("/api/studies", studies),
        Route("/api/anytime", anytime),
        # a study name may hold "/": the events route is tried first
        Route("/api/studies/{study:path}/events", events),
        Route("/api/studies/{study:path}/contour", contour),
        Route("/api/studies/{study:path}", study),
        *extra_routes,
    ]
    return Guard(Starlette(routes=routes), token=token, max_body_bytes=max_body_bytes)


__all__ = ["MAX_BODY_BYTES", "create_app", "plotly_js"]
