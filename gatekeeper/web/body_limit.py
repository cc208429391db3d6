"""A cap on the size of request bodies, checked before any route reads one.

FastAPI reads and parses a route's body parameters before its dependencies run, so without a cap a client
that is not logged in could make the server read and parse a body of any size (a 95 MiB JSON body was read
whole before the missing token was answered with 401). :class:`BodyLimit` answers 413 to a request whose
``Content-Length`` is over the cap. A body sent without one (chunked) is read here first, up to the cap: past
it the answer is 413 and nothing more is read; under it the route gets the body as if it had come whole. (A
route reading it past the cap itself would get a read error, which FastAPI answers 400 for a JSON body.) A
body longer than its ``Content-Length`` is cut off by the server; it is counted here too.

Each request's cap does not bound what many requests hold together: 120 unauthenticated chunked bodies of 1.9
MiB, each held by a client that never finished its request, kept 233 MiB in the server. The bytes of the bodies
of requests not yet answered are counted across requests (``in_flight``): one that would take them past
``max_in_flight`` is answered 503 (with ``Retry-After``), and nothing more of it is read.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

#: the default cap: a review decision with an edit of the longest memory (64,000 characters, each escaped in JSON
#: as up to 12 bytes) fits, and so does a bulk decision on every item of a queue page
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
#: the bytes of request bodies the server holds at once, over every request not yet answered
DEFAULT_MAX_IN_FLIGHT_BYTES = 32 * 1024 * 1024

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class BodyTooLarge(Exception):
    """Raised to the app from ``receive`` when a body sent without a length passes the cap."""


class BodiesInFlight(Exception):
    """Raised when a request's body would take the bodies of the requests not yet answered past ``max_in_flight``
    together, before the app reads any of it (answered 503, not 413: the request is not too large, the server is
    busy)."""


class BodyLimit:
    """ASGI middleware: 413 for an HTTP request body over ``max_bytes``; 503 for one that would take the bodies of
    the requests not yet answered past ``max_in_flight`` together."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 headers: dict[str, str] | None = None, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT_BYTES):
        self.app, self.max_bytes, self.headers = app, max_bytes, dict(headers or {})
        self.max_in_flight = max_in_flight
        #: the body bytes received of the requests not yet answered (one event loop: no lock)
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held = 0

        def take(n: int) -> None:
            """Count ``n`` more bytes of this request's body; ``BodiesInFlight`` past the budget."""
            nonlocal held
            if n and self.in_flight + n > self.max_in_flight:
                raise BodiesInFlight
            self.in_flight += n
            held += n

        try:
            await self._limited(scope, receive, send, take)
        except BodiesInFlight:
            await self._refuse(send, busy=True)
        finally:
            self.in_flight -= held

    async def _limited(self, scope: Scope, receive: Receive, send: Send, take: Callable[[int], None]) -> None:
        declared = False
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                declared = True
                try:
                    length = int(value)
                except ValueError:
                    length = 0  # the server refuses a malformed length itself
                if length > self.max_bytes:
                    await self._refuse(send)
                    return
                # the length is taken from the budget before the app reads any of it: inside the app's read, the
                # refusal became FastAPI's 400 "error parsing the body", which a client does not retry
                take(max(length, 0))
        if not declared:
            receive = await self._read_whole(receive, take)
            if receive is None:
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

    async def _read_whole(self, receive: Receive, take: Callable[[int], None]) -> Receive | None:
        """Read a body sent without a length, up to the cap: None past it, else a ``receive`` that gives the
        app the body in one message (then whatever comes next: a disconnect). Each chunk is counted in the
        requests' bytes in flight as it comes (``BodiesInFlight`` past their budget)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: the app sees that
                first = message
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return None
            take(len(message.get("body", b"")))
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break
        given = False

        async def replayed() -> dict:
            nonlocal given
            if not given:
                given = True
                return first
            return await receive()

        return replayed

    async def _refuse(self, send: Send, busy: bool = False) -> None:
        body = (b"the server holds as many request bodies as it takes at once: try again shortly\n" if busy
                else f"request body over {self.max_bytes:,} bytes\n".encode())
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close"), *((k.lower().encode(), v.encode()) for k, v in self.headers.items())]
        if busy:
            headers.append((b"retry-after", b"5"))
        await send({"type": "http.response.start", "status": 503 if busy else 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_IN_FLIGHT_BYTES", "BodiesInFlight", "BodyLimit", "BodyTooLarge"]
