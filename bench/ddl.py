"""The tenant schema's PostgreSQL DDL, wherever the library keeps its renderer.

``render_schema_ddl(metadata, schema)`` lives in ``tenancy_fixtures.store.postgres.ddl``
(earlier in ``tenancy_fixtures.store.postgres.store``); the benchmark takes it from either.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import MetaData

__all__ = ["render_schema_ddl"]

render_schema_ddl: Callable[[MetaData, str], list[str]]
try:
    from tenancy_fixtures.store.postgres.ddl import render_schema_ddl
except ImportError:  # the library before the renderer moved
    from tenancy_fixtures.store import postgres as _postgres

    render_schema_ddl = _postgres.render_schema_ddl  # type: ignore[attr-defined]
