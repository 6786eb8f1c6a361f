"""Request bodies are bounded before they are read whole.

A JSON body is read whole before the route's token is even checked, so a client with
no token could make the service hold any number of bytes. :class:`BodyLimitMiddleware`
refuses a body past :data:`JSON_BODY_MAX_BYTES` as soon as it is declared
(``Content-Length``) or counted while it is read: :class:`BodyTooLarge`, a 413
problem. Routes that stream their body to disk under a limit of their own (uploads)
are left to it.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["JSON_BODY_MAX_BYTES", "BodyLimitMiddleware", "BodyTooLarge"]

#: The largest request body but an upload's; what a request needs (a tenant with its
#: features, limits and settings) is a few KiB.
JSON_BODY_MAX_BYTES = 1 << 20


class BodyTooLarge(HTTPException):
    """A request body past ``limit`` bytes (raised while it is read, so the framework
    hands it to its handler as it does its own HTTP errors)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit


class BodyLimitMiddleware:
    """ASGI middleware refusing request bodies past ``limit`` bytes, except on the
    routes whose path template is in ``streamed``."""

    def __init__(self, app: ASGIApp, *, limit: int, streamed: Collection[str]) -> None:
        self.app = app
        self.limit = limit
        self.streamed = frozenset(streamed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def bounded() -> Message:
            # Asked when the route reads its body: the route is known by then.
            nonlocal received
            if getattr(scope.get("route"), "path", None) in self.streamed:
                return await receive()
            declared = Headers(scope=scope).get("content-length", "")
            if declared.isdigit() and int(declared) > self.limit:
                raise BodyTooLarge(self.limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, bounded, send)
