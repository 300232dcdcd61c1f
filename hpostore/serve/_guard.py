"""The ASGI layer in front of every request: token, host check, body bound, safe headers.

- With a token, every request must carry it: an ``Authorization: Bearer <token>`` header, the
  ``hpostore_token`` cookie, or ``?token=`` in the URL (the page opened from the printed
  link; the response then sets the cookie, so the page's own requests carry it).
- Without a token (loopback only), the ``Host`` header must name the loopback interface, so a
  web page elsewhere cannot reach the dashboard by pointing a DNS name at 127.0.0.1.
- A request body larger than ``max_body_bytes`` is refused with 413 (declared or streamed).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "hpostore_token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
#: Sent with every response. Scripts only from the server itself (plotly.js included);
#: plotly sets inline styles, so those are allowed.
SECURITY_HEADERS = (
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     b"img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)  # fmt: skip


class BodyTooLarge(Exception):
    """A streamed request body went over the bound (the app sees it as a failed receive)."""


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": headers + list(SECURITY_HEADERS),
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Wraps an ASGI app; see the module docstring for what it checks."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.token = token
        self.max_body_bytes = max_body_bytes

    def _headers(self, scope: Scope) -> dict[bytes, bytes]:
        return {k.lower(): v for k, v in scope.get("headers", [])}

    def _presented(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[str | None, bool]:
        """The token the request carries, and whether it came in the URL."""
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), False
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get(b"cookie", b"").decode("latin-1"))
        except CookieError:  # a malformed cookie header carries no token
            cookie = SimpleCookie()
        if COOKIE in cookie:
            return cookie[COOKIE].value, False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "token" in query:
            return query["token"][0], True
        return None, False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = self._headers(scope)
        from_url = False
        if self.token is not None:
            presented, from_url = self._presented(scope, headers)
            if presented is None or not hmac.compare_digest(
                presented.encode(), self.token.encode()
            ):
                await _reply(send, 401, "a valid token is required: open the URL that "
                             "`hpostore serve` printed, or send 'Authorization: Bearer <token>'")  # fmt: skip
                return
        else:
            host = headers.get(b"host", b"").decode("latin-1").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in LOOPBACK_HOSTS:
                await _reply(send, 403, f"this dashboard answers only to the loopback address, "
                             f"not to host {host!r}; serve with --host and a token to share it")  # fmt: skip
                return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _reply(send, 413, f"request bodies are limited to {self.max_body_bytes} bytes")
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise BodyTooLarge(f"request body over {self.max_body_bytes} bytes")
            return message

        async def secured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = list(SECURITY_HEADERS)
                if from_url and self.token is not None:
                    cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                    extra.append((b"set-cookie", cookie.encode()))
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, bounded_receive, secured_send)
