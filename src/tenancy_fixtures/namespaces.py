"""The original module's helper namespaces, kept as thin, typed aliases.

``TenantUtils.validate_tenant_id`` is :func:`tenancy_fixtures.ids.validate_tenant_id`
and so on; each attribute is the real function, so new code can import it from its
module instead.
"""

from __future__ import annotations

from typing import Final

from tenancy_fixtures.ids import is_valid_tenant_id, validate_tenant_id
from tenancy_fixtures.loading.fixture_sets import open_fixture_set
from tenancy_fixtures.loading.fixture_validator import FixtureValidator
from tenancy_fixtures.loading.readers import iter_records
from tenancy_fixtures.tenancy.merging import deep_merge
from tenancy_fixtures.tenancy.sizes import format_size, parse_size

__all__ = ["ConfigUtils", "FixtureUtils", "TenantUtils", "ValidationUtils"]


class TenantUtils:
    """Tenant id checks: :mod:`tenancy_fixtures.ids`."""

    validate_tenant_id: Final = staticmethod(validate_tenant_id)
    is_valid_tenant_id: Final = staticmethod(is_valid_tenant_id)


class ConfigUtils:
    """Config merging and sizes: :mod:`tenancy_fixtures.tenancy.merging` and ``.sizes``."""

    deep_merge: Final = staticmethod(deep_merge)
    parse_size: Final = staticmethod(parse_size)
    format_size: Final = staticmethod(format_size)


class FixtureUtils:
    """Fixture sets and their records: :mod:`tenancy_fixtures.loading`."""

    open_fixture_set: Final = staticmethod(open_fixture_set)
    iter_records: Final = staticmethod(iter_records)


class ValidationUtils:
    """Fixture validation: :class:`~tenancy_fixtures.validation.FixtureValidator`."""

    FixtureValidator: Final = FixtureValidator
