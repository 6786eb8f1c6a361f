"""Errors as RFC 9457 problem details (``application/problem+json``).

The library's typed errors map to status codes by class (:data:`STATUS_BY_ERROR`, most
specific first); the service's own refusals (no token, wrong scope, too large...) are
:class:`ServiceProblem`; request validation and unknown routes answer in the same
shape. Every problem carries ``type`` (a URN naming the error class), ``title``,
``status``, ``detail`` and ``instance`` (the request path), plus the error's context
(``tenant_id``, ``table``, ``line``, ``rule``...) where it has one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Mount, compile_path
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenancy_fixtures.errors import (
    ConfigError,
    FixtureError,
    InvalidTenantIdError,
    LimitExceededError,
    MigrationError,
    SchemaOutdatedError,
    SettingsError,
    StorageError,
    SubjectNotFoundError,
    TemplateError,
    TenancyFixturesError,
    TenantAlreadyExistsError,
    TenantError,
    TenantNotFoundError,
    TenantStorageMissingError,
    TokenNotFoundError,
    ValidationFailedError,
)
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.service.body_limits import BodyTooLarge

__all__ = [
    "PROBLEM_JSON",
    "STATUS_BY_ERROR",
    "Problem",
    "ServiceProblem",
    "install_problem_handlers",
    "problem_for",
    "problem_responses",
    "public_detail",
    "retry_headers",
    "status_of",
]

log = get_logger("tenancy_fixtures.service.problems")

PROBLEM_JSON = "application/problem+json"

#: The status of each library error, the most specific class first (the first match wins).
STATUS_BY_ERROR: tuple[tuple[type[TenancyFixturesError], int], ...] = (
    (InvalidTenantIdError, 400),
    (SettingsError, 400),
    # A registered tenant whose file or schema is gone: a storage failure (exit 7).
    (TenantStorageMissingError, 503),
    (TenantNotFoundError, 404),
    (TokenNotFoundError, 404),
    (SubjectNotFoundError, 404),
    (TenantAlreadyExistsError, 409),
    (SchemaOutdatedError, 409),
    (TenantError, 409),
    (MigrationError, 409),
    # A load, or a config change (LimitBelowUsageError), the tenant's limit refuses.
    (LimitExceededError, 409),
    (ConfigError, 422),
    (TemplateError, 422),
    (FixtureError, 422),
    (ValidationFailedError, 422),
    (StorageError, 503),
    (TenancyFixturesError, 400),
)

#: Context attributes of the library's errors copied into a problem when set.
_CONTEXT = ("tenant_id", "table", "line", "record", "column", "rule", "key", "constraint")
#: Problems of a ValidationFailedError listed in the document at most.
_MAX_PROBLEMS = 20


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "type": "urn:tenancy-fixtures:error:TenantNotFoundError",
                "title": "Tenant not found",
                "status": 404,
                "detail": "tenant 'acme' does not exist",
                "instance": "/tenants/acme",
                "tenant_id": "acme",
            }
        },
    )

    type: str = Field(description="A URN naming the error class.")
    title: str
    status: int
    detail: str
    instance: str | None = None


class ServiceProblem(Exception):
    """A refusal by the service itself (not the library): auth, scope, size, policy."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        kind: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind or title.replace(" ", "")
        self.headers = dict(headers or {})


def _title(name: str) -> str:
    """``TenantNotFoundError`` -> ``Tenant not found``."""
    words: list[str] = []
    for char in name.removesuffix("Error"):
        if char.isupper() and words:
            words.append(" ")
        words.append(char.lower() if words else char)
    return "".join(words)


def status_of(exc: TenancyFixturesError) -> int:
    """The HTTP status of a library error."""
    return next(status for cls, status in STATUS_BY_ERROR if isinstance(exc, cls))


def public_detail(exc: TenancyFixturesError) -> str:
    """What a client is told of ``exc``: its message, but not where the server keeps a
    tenant's storage (a missing file's path is the operator's business: the log has it)."""
    if isinstance(exc, TenantStorageMissingError):
        return str(exc).replace(f"storage {exc.storage} is", "storage is")
    return str(exc)


def retry_headers(exc: TenancyFixturesError) -> dict[str, str]:
    """``Retry-After`` for a storage error a retry may get past (a dropped connection,
    a timeout); nothing otherwise. The API's problems and the dashboard's pages alike."""
    if isinstance(exc, StorageError) and exc.transient:
        return {"Retry-After": "5"}
    return {}


def problem_for(exc: TenancyFixturesError, instance: str | None) -> dict[str, Any]:
    """The problem document of a library error."""
    name = type(exc).__name__
    document: dict[str, Any] = {
        "type": f"urn:tenancy-fixtures:error:{name}",
        "title": _title(name),
        "status": status_of(exc),
        "detail": public_detail(exc),
        "instance": instance,
    }
    for attribute in _CONTEXT:
        value = getattr(exc, attribute, None)
        if isinstance(value, str | int) and not isinstance(value, bool):
            document[attribute] = value
    if isinstance(exc, ValidationFailedError):
        document["problems"] = exc.problems[:_MAX_PROBLEMS]
        document["total"] = exc.total
        document["rules"] = exc.rules
    return document


def _response(
    document: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        dict(document),
        status_code=int(document["status"]),
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


async def _library_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TenancyFixturesError)
    document = problem_for(exc, request.url.path)
    if document["status"] >= 500:
        log.warning("request_failed", path=request.url.path, error=str(exc))
    return _response(document, retry_headers(exc))


async def _service_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceProblem)
    document = {
        "type": f"urn:tenancy-fixtures:problem:{exc.kind}",
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "instance": request.url.path,
    }
    return _response(document, exc.headers)


async def _body_too_large(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BodyTooLarge)
    document = {
        "type": "urn:tenancy-fixtures:problem:BodyTooLarge",
        "title": "Request body too large",
        "status": 413,
        "detail": exc.detail,
        "instance": request.url.path,
    }
    return _response(document)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    document = {
        "type": "urn:tenancy-fixtures:problem:InvalidRequest",
        "title": "Invalid request",
        "status": 422,
        "detail": f"{'.'.join(first['loc'])}: {first['msg']}",
        "instance": request.url.path,
        "errors": errors[:_MAX_PROBLEMS],
    }
    return _response(document)


def _methods_at(routes: Sequence[BaseRoute], path: str) -> set[str]:
    """Every method some route of ``routes`` takes at ``path``, looking inside mounts
    (the dashboard's pages; its static files take GET and HEAD)."""
    methods: set[str] = set()
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, Mount):
            rest = path.removeprefix(route.path)
            if rest == path or not rest.startswith("/"):
                continue
            if isinstance(route.app, StaticFiles):
                methods.update(("GET", "HEAD"))
            methods.update(_methods_at(route.routes, rest))
        elif context.path and compile_path(str(context.path))[0].match(path):
            methods.update(context.methods or ())
    return methods


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette names only the first
    route's when several routes share a path, and nothing under a mount); ``HEAD``
    wherever ``GET`` is (:mod:`~tenancy_fixtures.service.head_requests`)."""
    methods = _methods_at(request.app.routes, request.url.path)
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def _unparsable_body(request: Request) -> JSONResponse:
    """The 422 of a JSON body its parser gave up on (nested too deeply for its
    recursion), as for any other malformed body."""
    document = {
        "type": "urn:tenancy-fixtures:problem:InvalidRequest",
        "title": "Invalid request",
        "status": 422,
        "detail": "body: the JSON is nested too deeply to read",
        "instance": request.url.path,
        "errors": [{"loc": ["body"], "msg": "nested too deeply", "type": "json_invalid"}],
    }
    return _response(document)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
        # FastAPI's "error parsing the body", raised from the JSON parser's overflow.
        return _unparsable_body(request)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    document = {
        "type": "about:blank",
        "title": _title(type(exc).__name__) if exc.status_code >= 500 else str(exc.detail),
        "status": exc.status_code,
        "detail": str(exc.detail),
        "instance": request.url.path,
    }
    return _response(document, headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Any other exception: logged with its traceback, answered as a bare 500 problem
    (nothing of the error in the body). Called by :class:`_UnexpectedErrors`."""
    log.error("request_failed_unexpectedly", path=request.url.path, exc_info=exc)
    document = {
        "type": "urn:tenancy-fixtures:problem:InternalError",
        "title": "Internal error",
        "status": 500,
        "detail": "the service failed to answer this request; its log says why",
        "instance": request.url.path,
    }
    return _response(document)


class _UnexpectedErrors:
    """ASGI middleware answering any exception the handlers do not know with the 500
    problem, and ending it there: logged once, by :func:`_unexpected`.

    Not a catch-all exception handler: Starlette runs that in its ServerErrorMiddleware,
    which re-raises after answering, so the server logged the traceback a second time.
    Only an exception raised once the response has begun goes on to the server, which
    logs it (once) and drops the connection: no problem can be sent then.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except ClientDisconnect:
            # The client left mid-request (an upload dropped): nobody to answer, and
            # not the service's failure.
            log.info("client_disconnected", path=Request(scope).url.path)
        except Exception as exc:
            if started:
                raise
            response = await _unexpected(Request(scope), exc)
            await response(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error ``app`` meets as a problem document; call it before adding
    other middleware, so the 500 of an unexpected error is what they see."""
    app.add_exception_handler(TenancyFixturesError, _library_error)
    app.add_exception_handler(ServiceProblem, _service_problem)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(BodyTooLarge, _body_too_large)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(_UnexpectedErrors)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for routes that may answer these problem statuses."""
    described = {
        400: "Invalid tenant id or parameter",
        401: "No token, or not a live one",
        403: "The token's scope does not allow this",
        404: "No such tenant or resource (also: another tenant's)",
        409: "The tenant's state does not allow it",
        413: "Upload too large",
        415: "Not a tar.gz or zip archive",
        422: "Refused input (config, fixtures, request)",
        503: "Storage unavailable",
    }
    return {
        status: {
            "model": Problem,
            "description": described.get(status, "Problem"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
