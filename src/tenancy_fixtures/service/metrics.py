"""The service's request metrics and the ``/metrics`` exposition.

Requests are counted by method (HTTP's standard ones; any other a client makes up is
``OTHER``, so requests cannot add label values without bound), route template
(``/tenants/{tenant_id}``, never the raw path, so tenant ids do not become label values;
a mounted app's routes carry the mount's prefix, ``/dashboard/tenants/{tenant_id}``)
and status, and timed until the response is sent (a stream: until it ends). The
exposition joins these with the manager's registry of library metrics.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenancy_fixtures.monitoring.metrics import Metrics

__all__ = ["HttpMetrics", "RequestMetricsMiddleware", "exposition", "route_template"]

#: The methods counted under their own name (RFC 9110's, and PATCH).
STANDARD_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
)


class HttpMetrics:
    """Request counters and durations in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tenancy_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "tenancy_http_request_seconds",
            "Seconds from a request's arrival to the end of its response.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in STANDARD_METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)


class RequestMetricsMiddleware:
    """ASGI middleware counting every HTTP request in :class:`HttpMetrics`."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        root_path = str(scope.get("root_path", ""))
        try:
            await self.app(scope, receive, sending)
        finally:
            template = route_template(scope, root_path)
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - started)


def route_template(scope: Scope, root_path: str) -> str:
    """The template of the route that answered, with the prefixes of the mounts it was
    reached through: each mount appends its path to the scope's ``root_path``, so what
    was appended after the request arrived at ``root_path`` is the mount prefix. When the
    route is itself a mount (static files), that prefix already ends with its path, so it
    is the template (mount paths here hold no parameters, so no raw values leak)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not path:
        return "unmatched"
    mounted = str(scope.get("root_path", ""))
    prefix = mounted[len(root_path) :] if mounted.startswith(root_path) else ""
    if isinstance(route, Mount):
        return prefix or str(path)
    return prefix + str(path)


def exposition(library: Metrics, http: HttpMetrics) -> tuple[bytes, str]:
    """The library's and the service's metrics in Prometheus text format."""
    return generate_latest(library.registry) + generate_latest(http.registry), CONTENT_TYPE_LATEST
