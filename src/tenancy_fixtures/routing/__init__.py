"""Tenant routing for web apps: which tenant a request is for, and a transaction on that
tenant's tables alone.

::

    from tenancy_fixtures.routing import TenantRouter, from_header
    from tenancy_fixtures.routing.fastapi import TenantDependencies   # FastAPI apps
    from tenancy_fixtures.routing.asgi import TenantMiddleware        # any ASGI app

The router resolves the tenant (a header, the subdomain or a verified JWT claim),
checks the registry (cached briefly), and yields a SQLAlchemy ``AsyncConnection`` or
``AsyncSession`` whose statements name the tenant's schema through
``schema_translate_map``, never ``search_path``. An unknown or inactive tenant is a
404 problem+json answer.
"""

from __future__ import annotations

from tenancy_fixtures.routing.problems import TenantProblem
from tenancy_fixtures.routing.resolvers import (
    TenantResolver,
    from_header,
    from_jwt_claim,
    from_subdomain,
)
from tenancy_fixtures.routing.router import TenantRouter, orm_session

__all__ = [
    "TenantProblem",
    "TenantResolver",
    "TenantRouter",
    "from_header",
    "from_jwt_claim",
    "from_subdomain",
    "orm_session",
]
