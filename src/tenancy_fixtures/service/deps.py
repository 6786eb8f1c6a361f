"""What routes depend on: the manager, the request's token, and the access rules.

Every route but the probes (``/healthz``, ``/readyz``) and the API's own description
depends on one of two guards:

- :func:`fleet` for routes about the whole fleet: a token without a tenant whose scope
  includes the one the route needs; a tenant's token is refused with 403.
- :func:`tenant` for routes under ``/tenants/{tenant_id}``: a fleet token, or the
  tenant's own token, with the scope the route needs. Another tenant's token gets 404,
  exactly as for a tenant that does not exist, so ids do not leak.

No token, or one that is not live, is 401 before anything else is looked at.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tenancy_fixtures.errors import TenantNotFoundError
from tenancy_fixtures.ids import MAX_TENANT_ID_LENGTH, validate_tenant_id
from tenancy_fixtures.manager import FixtureManager
from tenancy_fixtures.service.jobs import JobRegistry
from tenancy_fixtures.service.problems import ServiceProblem
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.store.api_tokens import ApiToken
from tenancy_fixtures.tenancy.tokens import Scope, allows

__all__ = [
    "AppManager",
    "FleetAdmin",
    "FleetRead",
    "FleetWrite",
    "Jobs",
    "Manager",
    "SettingsDep",
    "TenantAdmin",
    "TenantRead",
    "TenantWrite",
    "TokenDep",
    "current_token",
    "fleet",
    "tenant",
]

_bearer = HTTPBearer(
    auto_error=False,
    description="A token from `tenancy-fixtures token create`: `Authorization: Bearer tfk_...`",
)


def get_manager(request: Request) -> FixtureManager:
    """The app's manager, built in its lifespan (for what needs no token)."""
    manager: FixtureManager = request.app.state.manager
    return manager


def get_jobs(request: Request) -> JobRegistry:
    """The app's background load jobs."""
    jobs: JobRegistry = request.app.state.jobs
    return jobs


def get_settings(request: Request) -> Settings:
    """The settings the app was made with."""
    settings: Settings = request.app.state.settings
    return settings


AppManager = Annotated[FixtureManager, Depends(get_manager)]
Jobs = Annotated[JobRegistry, Depends(get_jobs)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


_REALM = 'Bearer realm="tenancy-fixtures"'


def _unauthorized(detail: str, *, error: str | None = None) -> ServiceProblem:
    """A 401 with its challenge (RFC 6750, 3): the error code when a token was given
    but is not a live one, none when there was no token."""
    challenge = f'{_REALM}, error="{error}"' if error else _REALM
    return ServiceProblem(401, "Unauthorized", detail, headers={"WWW-Authenticate": challenge})


async def current_token(
    manager: AppManager,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiToken:
    """The live token the request's ``Authorization: Bearer`` header proves; 401 otherwise."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("a bearer token is required")
    token = await manager.authenticate_token(credentials.credentials)
    if token is None:
        raise _unauthorized("the token is not a live token", error="invalid_token")
    return token


TokenDep = Annotated[ApiToken, Depends(current_token)]


def acting_manager(manager: AppManager, token: TokenDep) -> FixtureManager:
    """The app's manager acting for the request's token: the audit log names
    ``token:<id>`` for what the request changes."""
    return manager.acting_as(f"token:{token.token_id}")


#: The manager of an authenticated route (its changes audited under the token).
Manager = Annotated[FixtureManager, Depends(acting_manager)]


def _forbidden(detail: str) -> ServiceProblem:
    return ServiceProblem(403, "Forbidden", detail)


def _scope_too_small(needed: Scope, token: ApiToken) -> ServiceProblem:
    """A 403 naming the scope needed, in the body and in the challenge a client reads
    (RFC 6750, 3.1: ``insufficient_scope``)."""
    challenge = f'{_REALM}, error="insufficient_scope", scope="{needed}"'
    return ServiceProblem(
        403,
        "Forbidden",
        f"this route needs scope {needed}; the token has {token.scope}",
        headers={"WWW-Authenticate": challenge},
    )


def fleet(needed: Scope) -> Callable[[ApiToken], Awaitable[ApiToken]]:
    """A guard for a fleet-wide route needing ``needed``."""

    async def guard(token: TokenDep) -> ApiToken:
        if token.tenant_id is not None:
            raise _forbidden("this route is fleet-wide; the token is scoped to one tenant")
        if not allows(token, needed):
            raise _scope_too_small(needed, token)
        return token

    return guard


TenantId = Annotated[
    str,
    Path(
        description="A tenant id: a lowercase letter, then lowercase letters, digits or _; "
        "a few names are reserved (public, tenancy, pg_...).",
        examples=["acme_music"],
        # Documented, not enforced here: the guard's validator answers every invalid id
        # alike (400 InvalidTenantIdError), where the pattern made some a 422.
        json_schema_extra={"pattern": f"^[a-z][a-z0-9_]{{0,{MAX_TENANT_ID_LENGTH - 1}}}$"},
    ),
]


def tenant(needed: Scope) -> Callable[[ApiToken, str], Awaitable[str]]:
    """A guard for a route under ``/tenants/{tenant_id}`` needing ``needed``; it gives
    the route the (validated) tenant id: an invalid one is a 400 whatever the token,
    as in a body (no id is learnt from it: the rule is public)."""

    async def guard(token: TokenDep, tenant_id: TenantId) -> str:
        validate_tenant_id(tenant_id)
        if token.tenant_id is not None and token.tenant_id != tenant_id:
            raise TenantNotFoundError(tenant_id)
        if not allows(token, needed):
            raise _scope_too_small(needed, token)
        return tenant_id

    return guard


FleetRead = Annotated[ApiToken, Depends(fleet("read"))]
FleetWrite = Annotated[ApiToken, Depends(fleet("write"))]
FleetAdmin = Annotated[ApiToken, Depends(fleet("admin"))]
TenantRead = Annotated[str, Depends(tenant("read"))]
TenantWrite = Annotated[str, Depends(tenant("write"))]
TenantAdmin = Annotated[str, Depends(tenant("admin"))]
