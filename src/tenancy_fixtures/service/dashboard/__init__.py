"""The dashboard: server-rendered pages for people, under ``/dashboard``.

``/dashboard/login`` takes a token (the API's bearer tokens) and keeps it in a cookie
(:mod:`.session`); ``/dashboard/`` lists the tenants with their usage against their
limits; ``/dashboard/tenants/{id}`` shows one tenant; ``/dashboard/errors`` the fleet's
refusals. Pages are Jinja2 templates with inline SVG plots: no JavaScript, and nothing
fetched from another site (the stylesheet is served from the package).

These are plain Starlette routes, outside the OpenAPI document: they answer HTML and
redirects, not the API's problem documents.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, Router, request_response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from tenancy_fixtures.errors import (
    TenancyFixturesError,
    TenantNotFoundError,
    TenantStorageMissingError,
)
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.manager import FixtureManager
from tenancy_fixtures.service.dashboard import pages, session
from tenancy_fixtures.service.problems import public_detail, retry_headers, status_of

__all__ = ["dashboard_mount"]

#: No script runs; styles and images come from this server only (inline SVG is markup,
#: not an image); forms post only here; no other site may frame a page.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it Chromium posts forms with ``Origin: null``, and the
    # login's same-origin check needs the real origin.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

Page = Callable[[Request], Awaitable[Response]]
_FAILED = "the page could not be made; the service's log says why"
log = get_logger("tenancy_fixtures.service.dashboard")


def _manager(request: Request) -> FixtureManager:
    manager: FixtureManager = request.app.state.manager
    return manager


def _base(request: Request) -> str:
    return pages.base_path(request)


def _page(handler: Page) -> Page:
    """Sign-in, refusals and library errors as pages; security headers on every answer."""

    async def endpoint(request: Request) -> Response:
        try:
            response = await handler(request)
        except session.SignInRequired:
            response = RedirectResponse(f"{_base(request)}/login", status_code=303)
        except session.Forbidden as exc:
            response = _failed(request, 403, "Forbidden", str(exc))
        except TenantStorageMissingError as exc:  # registered: a storage failure
            response = _problem_page(request, exc)
        except TenantNotFoundError as exc:
            response = _failed(request, 404, "Not found", f"no tenant {exc.tenant_id!r}")
        except TenancyFixturesError as exc:
            response = _problem_page(request, exc)
        except Exception:
            log.exception("dashboard_page_failed", path=request.url.path)
            response = _failed(request, 500, "Internal error", _FAILED)
        response.headers.update(SECURITY_HEADERS)
        return response

    return endpoint


def _failed(request: Request, status: int, title: str, detail: str) -> Response:
    """A page that could not be shown, in the layout of the others: with the navigation
    of the token signed in, when it was found before the page failed."""
    token = session.known(request)
    return pages.render(request, "problem.html", token, status, title=title, detail=detail)


def _problem_page(request: Request, exc: TenancyFixturesError) -> Response:
    """A library error as a page, with the API's status, detail and ``Retry-After`` for
    it (no server paths: the log has them)."""
    if status_of(exc) >= 500:
        log.warning("dashboard_page_refused", path=request.url.path, error=str(exc))
    response = _failed(request, status_of(exc), type(exc).__name__, public_detail(exc))
    response.headers.update(retry_headers(exc))
    return response


def _number(request: Request, name: str, default: int, top: int) -> int:
    """A positive integer query parameter in ASCII digits, at most ``top``; anything
    else is ``default`` (``"²"`` is a digit to :meth:`str.isdigit`, not to :func:`int`)."""
    raw = request.query_params.get(name, "")
    if not (raw.isascii() and raw.isdigit()):
        return default
    digits = raw.lstrip("0") or "0"
    value = int(digits) if len(digits) <= len(str(top)) else top  # int() of 4301 digits fails
    return min(value, top) if value > 0 else default


async def _home(request: Request) -> Response:
    token = await session.signed_in(request)
    if token.tenant_id is not None:
        return RedirectResponse(f"{_base(request)}/tenants/{token.tenant_id}", status_code=303)
    page = _number(request, "page", 1, 1_000_000)
    return await pages.tenants_page(_manager(request), request, token, page)


async def _tenant(request: Request) -> Response:
    tenant_id = str(request.path_params["tenant_id"])
    token = await session.require_tenant(request, tenant_id)
    try:
        validate_tenant_id(tenant_id)
    except TenancyFixturesError:
        raise TenantNotFoundError(tenant_id) from None
    return await pages.tenant_page(_manager(request), request, token, tenant_id)


async def _errors(request: Request) -> Response:
    token = await session.require_fleet(request)
    days = _number(request, "days", 7, 3660)
    return await pages.errors_page(_manager(request), request, token, days)


async def _login_form(request: Request) -> Response:
    return pages.render(request, "login.html", None, error=None)


def _same_origin(request: Request) -> bool:
    """A form posted from a page of this server (browsers send ``Origin`` on POST)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.url.netloc


async def _login(request: Request) -> Response:
    if not _same_origin(request):
        return pages.render(request, "login.html", None, 403, error="sign in from this site")
    bearer = await session.form_token(request)
    token = await _manager(request).authenticate_token(bearer) if bearer else None
    if token is None:
        return pages.render(request, "login.html", None, 401, error="not a live token")
    target = f"/tenants/{token.tenant_id}" if token.tenant_id else "/"
    response = RedirectResponse(f"{_base(request)}{target}", status_code=303)
    session.set_cookie(response, request, bearer)
    return response


async def _logout(request: Request) -> Response:
    response = RedirectResponse(f"{_base(request)}/login", status_code=303)
    if _same_origin(request):
        session.clear_cookie(response)
    return response


async def _missing(request: Request) -> Response:
    """No page here: a 404 page like the others (the API's 404 is a problem document),
    with the navigation of a token signed in."""
    with contextlib.suppress(session.SignInRequired):
        await session.signed_in(request)
    return _failed(request, 404, "Not found", "there is no such page")


class _Static(StaticFiles):
    """The dashboard's stylesheet; a file it does not have is a plain-text 404 (for a
    browser, not the API's problem document), with the pages' security headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            return PlainTextResponse("Not found", 404, headers=SECURITY_HEADERS)


def dashboard_mount() -> Mount:
    """The dashboard's routes, to mount on the app at ``/dashboard``."""
    pages = Router(
        routes=[
            Route("/", _page(_home), methods=["GET"]),
            Route("/login", _page(_login_form), methods=["GET"]),
            Route("/login", _page(_login), methods=["POST"]),
            Route("/logout", _page(_logout), methods=["POST"]),
            Route("/tenants/{tenant_id}", _page(_tenant), methods=["GET"]),
            Route("/errors", _page(_errors), methods=["GET"]),
            Mount("/static", _Static(directory=Path(__file__).parent / "static")),
        ],
        default=request_response(_page(_missing)),
    )
    return Mount("/dashboard", app=pages)
