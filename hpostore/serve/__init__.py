"""`hpostore serve`: a live, read-only dashboard of an event log in the browser.

Needs the ``serve`` extra (``pip install 'hpostore[serve]'``: Starlette, Uvicorn, plotly for
its bundled plotly.js). Charts are drawn in the browser from small JSON records that the
server computes with the analysis views; nothing is fetched from the internet.

>>> from hpostore.serve import serve
>>> server = serve("runs.duckdb", port=0, block=False)   # doctest: +SKIP
>>> print(server.url)                                     # doctest: +SKIP
>>> server.stop()                                         # doctest: +SKIP
"""

from analysis._importance import importance

from ..client import LeaseLost, RequestRefused, ServiceUnavailable, StudyClient, connect
from ._app import MAX_BODY_BYTES, create_app
from ._routes import StudyServer, serve_study
from ._server import DEFAULT_PORT, DashboardServer, is_loopback, serve
from ._service import LEASE_S, StudyService
from ._source import LogSource, StoreBusy

__all__ = [
    "DEFAULT_PORT",
    "MAX_BODY_BYTES",
    "DashboardServer",
    "LEASE_S",
    "LeaseLost",
    "RequestRefused",
    "ServiceUnavailable",
    "StudyClient",
    "StudyServer",
    "StudyService",
    "connect",
    "serve_study",
    "LogSource",
    "StoreBusy",
    "create_app",
    "importance",
    "is_loopback",
    "serve",
]
