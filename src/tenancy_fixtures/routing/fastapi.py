"""FastAPI dependencies for tenant routing.

::

    tenants = TenantDependencies(TenantRouter(manager.store))
    tenants.install(app)          # TenantProblem -> application/problem+json

    @app.get("/users")
    async def users(conn: Annotated[AsyncConnection, tenants.connection]) -> list[dict]:
        return [dict(r) for r in (await conn.execute(select(users_table))).mappings()]

Each dependency ends the tenant's transaction when the endpoint returns, before the
response is sent (``Depends(scope="function")``): committed if the endpoint did not
raise, rolled back if it did. Needs FastAPI 0.121 or later.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tenancy_fixtures.routing.problems import PROBLEM_JSON, TenantProblem
from tenancy_fixtures.routing.router import TenantRouter, orm_session

__all__ = ["TenantDependencies", "TenantHTTPError", "problem_response"]

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class TenantHTTPError(HTTPException):
    """A :class:`TenantProblem` as FastAPI's ``HTTPException``: without :meth:`install`
    the client still gets the right status, with FastAPI's ``{"detail": ...}`` body."""

    def __init__(self, problem: TenantProblem) -> None:
        super().__init__(problem.status, problem.detail, headers=problem.headers or None)
        self.problem = problem


def problem_response(problem: TenantProblem) -> Response:
    """``problem`` as an ``application/problem+json`` response."""
    return JSONResponse(
        problem.document(),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_JSON,
    )


class TenantDependencies:
    """The dependencies of one :class:`TenantRouter`, as ``Annotated`` metadata:

    - ``tenant_id``: the id of the request's tenant (registered and active);
    - ``connection``: an ``AsyncConnection`` on its tables (for ``GET``/``HEAD``/``OPTIONS``
      no write lock taken up front on SQLite; writes are not refused);
    - ``session``: an ORM ``AsyncSession`` on that connection.
    """

    def __init__(self, router: TenantRouter) -> None:
        self.router = router
        self.tenant_id: Any = Depends(self._tenant_id)
        self.connection: Any = Depends(self._connection, scope="function")
        connection = self.connection

        async def session(conn: AsyncConnection = connection) -> AsyncIterator[AsyncSession]:
            async with orm_session(conn) as orm:
                yield orm

        self.session: Any = Depends(session, scope="function")

    def install(self, app: FastAPI) -> None:
        """Render this router's refusals as problem+json in ``app``."""

        async def handle(_request: Request, exc: Exception) -> Response:
            assert isinstance(exc, TenantHTTPError)
            return problem_response(exc.problem)

        app.add_exception_handler(TenantHTTPError, handle)

    async def _tenant_id(self, request: Request) -> str:
        try:
            return await self.router.resolve(request.scope)
        except TenantProblem as problem:
            raise TenantHTTPError(problem) from None

    async def _connection(self, request: Request) -> AsyncIterator[AsyncConnection]:
        tenant_id = await self._tenant_id(request)
        readonly = request.method in _READ_METHODS
        try:
            opened = self.router.connect(tenant_id, readonly=readonly)
            connection = await opened.__aenter__()
        except TenantProblem as problem:
            raise TenantHTTPError(problem) from None
        try:
            yield connection
        except BaseException as exc:
            if not await opened.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            await opened.__aexit__(None, None, None)
