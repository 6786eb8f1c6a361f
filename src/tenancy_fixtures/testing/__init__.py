"""The pytest plugin: a fresh tenant per test, on SQLite or PostgreSQL, under xdist too.

Registered as the ``pytest11`` entry point ``tenancy_fixtures``; installing the package
enables it. Fixtures: ``tenancy_manager``, ``tenant``, ``tenant_factory``; marker
``tenant_fixtures(path, ...)``. See :mod:`tenancy_fixtures.testing.plugin`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tenancy_fixtures.testing.runtime import ProvisionedTenant as ProvisionedTenant
    from tenancy_fixtures.testing.runtime import TenantFactory as TenantFactory

__all__ = ["ProvisionedTenant", "TenantFactory"]


def __getattr__(name: str) -> Any:
    # Lazy: pytest imports this package with the plugin in every run of every project
    # that installs tenancy-fixtures.
    if name in __all__:
        from tenancy_fixtures.testing import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
