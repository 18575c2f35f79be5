"""Plain ASGI middleware (not BaseHTTPMiddleware, which would buffer the SSE stream)."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Pages load scripts and styles only from this server: no inline script, no CDN.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI's body parsing passes it through instead of turning
    it into a 400 ("error parsing the body")."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body too large: at most {limit:,} bytes")


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body too large: at most {limit:,} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


DRAIN_LIMIT = 4 * 1024 * 1024


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


class BodyLimit:
    """413 for a body over `limit` bytes: from Content-Length when it is sent, and by
    counting the body as it streams in when it is not (chunked uploads)."""

    def __init__(self, app: ASGIApp, limit: int, overrides: dict[str, int] | None = None):
        self.app = app
        self.default = limit
        self.overrides = overrides or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Per-path limit; a local name so concurrent requests on other paths keep theirs.
        limit = self.overrides.get(scope["path"], self.default)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False  # the server rejects a malformed length itself
            if too_big:
                # Read (and drop) a moderately large body first: answering while the
                # client is still sending makes it see a reset instead of the 413.
                if int(declared) <= DRAIN_LIMIT:
                    await _drain(receive)
                await _send_413(send, limit)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _send_413(send, limit)


class SecurityHeaders:
    """Headers every response gets; the CSP is left off Swagger UI, which inlines a script."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(("/docs", "/docs-static", "/redoc"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"),
                            (b"x-frame-options", b"DENY"),
                            # Keeps a sign-in code in the address bar out of other sites'
                            # Referer headers; "no-referrer" would make the browser send
                            # `Origin: null` on our own form posts.
                            (b"referrer-policy", b"same-origin")]
                if not docs:
                    headers.append((b"content-security-policy", CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
