"""A cap on the size of request bodies, checked before any route reads one.

FastAPI reads and parses a route's body parameters before its dependencies run, so without a cap a client
that is not logged in could make the server read and parse a body of any size (a 95 MiB JSON body was read
whole before the missing token was answered with 401). :class:`BodyLimit` answers 413 to a request whose
``Content-Length`` is over the cap, and stops a body sent without one (chunked) as soon as it passes it: the
route reading it gets ``BodyTooLarge`` (FastAPI answers a JSON body's read error with 400; otherwise the
answer is 413), and nothing past the cap is read.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

#: the default cap: a review decision with an edit of the longest memory (64,000 characters, each escaped in JSON
#: as up to 12 bytes) fits, and so does a bulk decision on every item of a queue page
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class BodyTooLarge(Exception):
    """Raised to the app from ``receive`` when a body sent without a length passes the cap."""


class BodyLimit:
    """ASGI middleware: 413 for an HTTP request body over ``max_bytes``."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 headers: dict[str, str] | None = None):
        self.app, self.max_bytes, self.headers = app, max_bytes, dict(headers or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    too_large = False  # the server refuses a malformed length itself
                if too_large:
                    await self._refuse(send)
                    return
        seen = 0
        started = False

        async def counted_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = f"request body over {self.max_bytes:,} bytes\n".encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close"), *((k.lower().encode(), v.encode()) for k, v in self.headers.items())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodyLimit", "BodyTooLarge"]
