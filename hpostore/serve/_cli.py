"""`hpostore serve PATH`: print where the dashboard is, then serve it until Ctrl-C."""

from __future__ import annotations

import contextlib
import sys

from ._server import DashboardServer


def run_serve(path: str, *, host: str, port: int, token: str | None) -> str:
    """Serve ``path``'s dashboard in the foreground; what to print when it stops."""
    server = DashboardServer(path, host=host, port=port, token=token)
    print(f"hpostore serve: dashboard of {server.source.label} at {server.url}", flush=True)
    if server.token is not None and token is None:
        print("hpostore serve: the token above was generated for this run; share the URL "
              "only with people who may read the log", file=sys.stderr, flush=True)  # fmt: skip
    with contextlib.suppress(KeyboardInterrupt):  # Uvicorn passes Ctrl-C on after stopping
        server.run()
    return "hpostore serve: stopped"
