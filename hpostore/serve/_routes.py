"""The study service over HTTP: its POST routes, and the server that adds them to the dashboard.

See :mod:`hpostore.serve._service` for what each route does. Bodies are JSON objects sent with
``Content-Type: application/json`` (a browser cannot send that cross-site without a CORS
preflight, which this server never grants); the dashboard's guard bounds them and checks the
token whenever one is set.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import InvalidArgument
from ..tuner import HPOTuner
from ._rebuild import ServiceError
from ._server import DEFAULT_PORT, DashboardServer
from ._service import LEASE_S, StudyService

log = logging.getLogger("hpostore")


def _json(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, allow_nan=False, separators=(",", ":"), default=str)
    return Response(body, status, {"cache-control": "no-store"}, "application/json")


async def _body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ServiceError(415, "send the body as JSON with 'Content-Type: application/json'")
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise ServiceError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ServiceError(400, f"the body must be a JSON object, got {type(body).__name__}")
    return body


def routes(service: StudyService) -> list[BaseRoute]:
    """The service's POST routes, to add to the dashboard's app (``extra_routes``)."""

    def handler(call: Callable[[Request, dict[str, Any]], dict[str, Any]]) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                body = await _body(request)
                # the tuner and the store block: run the call off the event loop
                return _json(await run_in_threadpool(call, request, body))
            except ServiceError as exc:
                return _json({"error": str(exc)}, exc.status)
            except InvalidArgument as exc:
                return _json({"error": f"{exc} (nothing was logged)"}, 400)

        return endpoint

    def trial_id(request: Request) -> int:
        text = request.path_params["trial"]
        if not text.isdigit():
            raise ServiceError(404, f"no trial {text[:40]!r}: trial ids are integers")
        return int(text)

    def ask(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        trials, worker = body.get("trials"), body.get("worker", "?")
        if trials is not None and (not isinstance(trials, int) or trials < 1):
            raise ServiceError(400, f"trials must be a positive integer, got {trials!r}")
        return service.ask(request.path_params["study"], str(worker)[:200], trials)

    def heartbeat(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return service.heartbeat(request.path_params["study"], trial_id(request), body)

    def report(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return service.report(request.path_params["study"], trial_id(request), body)

    def tell(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return service.tell(request.path_params["study"], trial_id(request), body)

    prefix = "/api/studies/{study:path}"
    return [
        Route(f"{prefix}/ask", handler(ask), methods=["POST"]),
        Route(prefix + "/trials/{trial}/heartbeat", handler(heartbeat), methods=["POST"]),
        Route(prefix + "/trials/{trial}/report", handler(report), methods=["POST"]),
        Route(prefix + "/trials/{trial}/tell", handler(tell), methods=["POST"]),
    ]


class StudyServer(DashboardServer):
    """The dashboard plus the study service on one address; the service's tuners (and a store
    it opened) are closed when serving stops."""

    def __init__(self, service: StudyService, *, owns_store: bool, **kwargs: Any) -> None:
        super().__init__(service.store, extra_routes=routes(service), **kwargs)
        self.service, self._owns_store = service, owns_store

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.service.close()
            if self._owns_store:
                self.service.store.close()


def serve_study(
    target: HPOTuner | str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
    lease_s: float = LEASE_S,
    block: bool = True,
) -> StudyServer:
    """Serve ask/tell (and the dashboard) for a tuner built in Python with any searcher, or for
    every study of a store (``hpostore serve PATH --study-service``: built-in classes only).
    This process becomes the store's only writer. See the module docstring for the routes."""
    if isinstance(target, HPOTuner):
        service = StudyService(target.store, lease_s=lease_s, tuners={target.study: target})
        owns = False
    else:
        from ..store import open_store

        service, owns = StudyService(open_store(os.fspath(target)), lease_s=lease_s), True
    server = StudyServer(service, owns_store=owns, host=host, port=port, token=token)
    log.info("hpostore study service of %s on %s", server.source.label, server.url)
    if block:
        server.run()
    else:
        server.start()
    return server


def run_study_service(path: str, *, host: str, port: int, token: str | None,
                      lease_s: float) -> str:  # fmt: skip
    """``hpostore serve PATH --study-service``: the dashboard plus ask/tell, until Ctrl-C."""
    from ..store import open_store

    service = StudyService(open_store(path), lease_s=lease_s)
    server = StudyServer(service, owns_store=True, host=host, port=port, token=token)
    print(f"hpostore serve: dashboard and study service of {server.source.label} at "
          f"{server.url}", flush=True)  # fmt: skip
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return "hpostore serve: stopped"
