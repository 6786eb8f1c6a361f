"""``HEAD`` wherever ``GET`` is allowed, as HTTP requires (RFC 9110, 9.3.2).

FastAPI's routes take only the methods they declare, so ``HEAD /tenants`` was a 405
where Starlette's own routes (the dashboard's) answer it. :class:`HeadAsGet` routes a
``HEAD`` request as its ``GET`` and sends the same status and headers, no body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HeadAsGet"]


class HeadAsGet:
    """ASGI middleware answering ``HEAD`` as ``GET`` without the body: the response
    ends at its first body message (an event stream is not followed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        ended = False

        async def headers_only(message: Message) -> None:
            nonlocal ended
            if ended:
                return
            if message["type"] == "http.response.body":
                ended = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # In place, as routing records its route in the scope (the metrics read it),
        # and back to HEAD for those outside.
        scope["method"] = "GET"
        try:
            await self.app(scope, receive, headers_only)
        finally:
            scope["method"] = "HEAD"
