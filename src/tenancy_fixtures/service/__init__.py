"""The HTTP service: FastAPI over the same use cases as the CLI (``FixtureManager``).

Install with the ``service`` extra; run with ``tenancy-fixtures serve`` or any ASGI
server given ``create_app()`` (a factory: ``uvicorn --factory
tenancy_fixtures.service:create_app``).
"""

from __future__ import annotations

from tenancy_fixtures.service.app import create_app

__all__ = ["create_app"]
