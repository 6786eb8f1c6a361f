"""A plain ASGI middleware: every HTTP request runs inside its tenant's transaction.

For any ASGI framework (Starlette, Litestar, a bare app). The app finds the tenant id
and the connection in ``scope["state"]``; a request for no tenant, or an unknown one,
gets a problem+json answer without reaching the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from tenancy_fixtures.routing.problems import PROBLEM_JSON, TenantProblem
from tenancy_fixtures.routing.router import TenantRouter

__all__ = ["TENANT_CONNECTION", "TENANT_ID", "TenantMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Keys of ``scope["state"]`` (``request.state.tenant_id`` in Starlette).
TENANT_ID = "tenant_id"
TENANT_CONNECTION = "tenant_connection"

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _Rollback(Exception):
    """Ends the tenant's transaction without committing (a response of 400 or more)."""


class TenantMiddleware:
    """Resolves the tenant of each HTTP request (``router``), opens a transaction on its
    tables and hands it to ``app`` as ``scope["state"]["tenant_connection"]``.

    The transaction ends before the response starts: committed when the status is
    below 400, rolled back otherwise or when the app raises, so a client never sees a
    success whose rows were not committed. ``GET``, ``HEAD`` and ``OPTIONS`` requests
    take no write lock up front (SQLite); their writes are not refused. Paths in
    ``exempt`` (``/health``...) and non-HTTP scopes pass through untouched.
    """

    def __init__(self, app: ASGIApp, router: TenantRouter, *, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.router = router
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in self.exempt:
            await self.app(scope, receive, send)
            return
        try:
            tenant_id = await self.router.resolve(scope)
            transaction = self.router.connect(
                tenant_id, readonly=scope.get("method", "GET") in _READ_METHODS
            )
            connection = await transaction.__aenter__()
        except TenantProblem as problem:
            await send_problem(send, problem)
            return
        state = scope.setdefault("state", {})
        state[TENANT_ID] = tenant_id
        state[TENANT_CONNECTION] = connection
        await self._run(scope, receive, send, transaction)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        transaction: AbstractAsyncContextManager[Any],
    ) -> None:
        open_ = True

        async def finish(status: int) -> None:
            nonlocal open_
            open_ = False
            if status < 400:
                await transaction.__aexit__(None, None, None)
            else:
                undo = _Rollback()
                await transaction.__aexit__(_Rollback, undo, None)

        async def send_after_commit(message: Message) -> None:
            if message["type"] == "http.response.start" and open_:
                await finish(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_after_commit)
        except BaseException as exc:
            if open_:
                open_ = False
                if await transaction.__aexit__(type(exc), exc, exc.__traceback__):
                    return
            raise
        if open_:  # the app answered nothing
            await finish(500)


async def send_problem(send: Send, problem: TenantProblem) -> None:
    """Answer with ``problem`` as ``application/problem+json``."""
    body = problem.body()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in problem.headers.items()),
    ]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
