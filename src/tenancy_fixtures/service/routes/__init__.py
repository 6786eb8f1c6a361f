"""One router per resource; :data:`ROUTERS` is what the app mounts, in this order.

A new resource is a module here with a ``router`` whose routes each depend on a guard
of :mod:`tenancy_fixtures.service.deps` (``FleetRead``, ``TenantWrite``...), added to
:data:`ROUTERS`; the auth test walks every mounted route, so one left unguarded fails it.
"""

from __future__ import annotations

from fastapi import APIRouter

from tenancy_fixtures.service.routes import (
    audit,
    config,
    errors,
    forecasts,
    loads,
    migrations,
    operations,
    runs,
    tenants,
    usage,
    validation,
)

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    operations.router,
    tenants.router,
    config.router,
    loads.router,
    loads.uploads,
    validation.router,
    migrations.router,
    audit.router,
    runs.router,
    usage.router,
    forecasts.router,
    errors.router,
)
