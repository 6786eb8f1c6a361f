"""Who is looking at the dashboard: the same bearer tokens as the API, carried in a cookie.

Signing in posts a token once (the login form); a live one is kept in an ``HttpOnly``,
``SameSite=Strict`` cookie scoped to ``/dashboard`` (``Secure`` over HTTPS), so page
scripts cannot read it and other sites cannot send it. Every page checks it again, so a
revoked token stops working at the next click. Access follows the API's rules: a tenant's
token sees only its tenant's page (another tenant's answers 404, like a missing one);
the fleet pages need a fleet token (403).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from tenancy_fixtures.errors import TenantNotFoundError
from tenancy_fixtures.manager import FixtureManager
from tenancy_fixtures.service.body_limits import BodyTooLarge
from tenancy_fixtures.store.api_tokens import ApiToken

__all__ = [
    "COOKIE",
    "Forbidden",
    "SignInRequired",
    "clear_cookie",
    "form_token",
    "known",
    "require_fleet",
    "require_tenant",
    "set_cookie",
    "signed_in",
]

COOKIE = "tenancy_dashboard"
PATH = "/dashboard"
#: The login form is one short field; anything longer is not a token.
MAX_FORM_BYTES = 4096


class SignInRequired(Exception):
    """No cookie, or its token is no longer live: the page sends the browser to sign in."""


class Forbidden(Exception):
    """A live token that may not see this page (a tenant's token on a fleet page)."""


def _manager(request: Request) -> FixtureManager:
    manager: FixtureManager = request.app.state.manager
    return manager


async def signed_in(request: Request) -> ApiToken:
    """The live token of the request's cookie; :class:`SignInRequired` otherwise. Kept
    on the request (:func:`known`), so a page that then fails keeps its navigation."""
    bearer = request.cookies.get(COOKIE)
    token = await _manager(request).authenticate_token(bearer) if bearer else None
    if token is None:
        raise SignInRequired
    request.state.dashboard_token = token
    return token


def known(request: Request) -> ApiToken | None:
    """The token :func:`signed_in` found for this request, if it got that far."""
    token: ApiToken | None = getattr(request.state, "dashboard_token", None)
    return token


async def require_fleet(request: Request) -> ApiToken:
    """A fleet token (any scope: pages only read)."""
    token = await signed_in(request)
    if token.tenant_id is not None:
        raise Forbidden("this page is fleet-wide; your token is scoped to one tenant")
    return token


async def require_tenant(request: Request, tenant_id: str) -> ApiToken:
    """A fleet token or ``tenant_id``'s own; another tenant's answers as a missing one."""
    token = await signed_in(request)
    if token.tenant_id is not None and token.tenant_id != tenant_id:
        raise TenantNotFoundError(tenant_id)
    return token


async def form_token(request: Request) -> str:
    """The ``token`` field of a posted login form (URL-encoded), or ``""`` (also for a
    form past the size of any token)."""
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return ""
    except BodyTooLarge:
        return ""
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
    return (fields.get("token") or [""])[0].strip()


def set_cookie(response: Response, request: Request, bearer: str) -> None:
    """Keep ``bearer`` for the dashboard's next requests (until the browser closes)."""
    response.set_cookie(
        COOKIE,
        bearer,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response) -> None:
    """Sign out."""
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")
