"""The original module's helper namespaces, as thin aliases over the real functions.

``TenantUtils.validate_tenant_id`` is :func:`tenancy_fixtures.tenant_ids.validate_tenant_id`
and so on; new code should import the functions from their modules.
"""

from __future__ import annotations

from types import SimpleNamespace

from tenancy_fixtures.loaders.fixture_sets import open_fixture_set
from tenancy_fixtures.loaders.readers import iter_records
from tenancy_fixtures.merging import deep_merge
from tenancy_fixtures.sizes import format_size, parse_size
from tenancy_fixtures.tenant_ids import is_valid_tenant_id, validate_tenant_id
from tenancy_fixtures.validation import FixtureValidator

__all__ = ["ConfigUtils", "FixtureUtils", "TenantUtils", "ValidationUtils"]

TenantUtils = SimpleNamespace(
    validate_tenant_id=validate_tenant_id, is_valid_tenant_id=is_valid_tenant_id
)
ConfigUtils = SimpleNamespace(deep_merge=deep_merge, parse_size=parse_size, format_size=format_size)
FixtureUtils = SimpleNamespace(open_fixture_set=open_fixture_set, iter_records=iter_records)
ValidationUtils = SimpleNamespace(FixtureValidator=FixtureValidator)
