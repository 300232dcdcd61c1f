"""Running the dashboard: bind, pick or check the token, serve with Uvicorn (blocking or not)."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from urllib.parse import quote

import uvicorn
from starlette.routing import BaseRoute

from ..errors import InvalidArgument
from ..store.base import EventLog
from ._app import create_app
from ._source import LogSource

log = logging.getLogger("hpostore")

DEFAULT_PORT = 8765
#: How long :meth:`DashboardServer.start` waits for Uvicorn to accept connections.
START_TIMEOUT_S = 10.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class DashboardServer:
    """The dashboard bound to ``host:port`` (``port=0``: any free port); see :func:`serve`.

    >>> with DashboardServer("runs.duckdb", port=0) as server:   # doctest: +SKIP
    ...     print(server.url)
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | EventLog,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        token: str | None = None,
        extra_routes: Sequence[BaseRoute] = (),
    ) -> None:
        if token is not None and (len(token) < 8 or not token.isprintable() or " " in token):
            raise InvalidArgument(
                "a token must be at least 8 printable characters without spaces; leave it out "
                "to have one generated"
            )
        if token is None and not is_loopback(host):
            token = secrets.token_urlsafe(24)  # anything but loopback needs one
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidArgument(f"port must be an integer from 0 to 65535, got {port!r}")
        self.token = token
        self.source = LogSource(source)
        self.source.check()  # a file that is no event log fails here, not in the page
        # copying a large log into memory takes seconds: begin while the server starts
        threading.Thread(target=self.source.warm, name="hpostore-serve-warm", daemon=True).start()
        self.app = create_app(self.source, token=token, extra_routes=extra_routes)
        family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        try:
            self._socket = socket.create_server((host.strip("[]"), port), family=family)
        except OSError as exc:
            raise InvalidArgument(
                f"cannot listen on {host}:{port} ({exc}); choose another --port (0: any free one)"
            ) from exc
        self.host = host
        self.port = int(self._socket.getsockname()[1])
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The address to open, with the token when one is needed."""
        shown = f"[{self.host.strip('[]')}]" if ":" in self.host.strip("[]") else self.host
        query = f"?token={quote(self.token)}" if self.token else ""
        return f"http://{shown}:{self.port}/{query}"

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C) or :meth:`stop`."""
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._socket.close()

    def start(self) -> DashboardServer:
        """Serve from a background thread; returns once connections are accepted."""
        self._thread = threading.Thread(target=self.run, name="hpostore-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise InvalidArgument(f"the dashboard on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving (from another thread, or after :meth:`start`)."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=START_TIMEOUT_S)
            self._thread = None

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    source: str | os.PathLike[str] | EventLog,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
    block: bool = True,
) -> DashboardServer:
    """Serve the live, read-only dashboard of a log: a DuckDB file, a Parquet log directory,
    or an open store (e.g. ``tuner.store``, to watch a study running in this process).

    Args:
        source: the log to show.
        host: the address to listen on. Loopback by default; any other address requires a
            token, generated when not given (read it from ``server.url``).
        port: the port; 0 picks a free one.
        token: a secret every request must carry (see :mod:`hpostore.serve._guard`).
        block: serve until Ctrl-C; with ``False``, serve from a background thread and return
            at once (call ``.stop()`` when done).

    >>> server = serve("runs.duckdb", port=0, block=False)   # doctest: +SKIP
    >>> server.url, server.stop()                             # doctest: +SKIP
    """
    server = DashboardServer(source, host=host, port=port, token=token)
    log.info("hpostore dashboard of %s on %s", server.source.label, server.url)
    if block:
        server.run()
    else:
        server.start()
    return server
