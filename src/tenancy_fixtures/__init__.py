"""tenancy-fixtures: isolated storage, schema, config and data for every tenant, in one call.

::

    from tenancy_fixtures import FixtureManager

    manager = FixtureManager()                 # embedded SQLite under ./.tenancy/
    await manager.create_tenant("tenant_001")  # isolated storage + schema + config
    await manager.load_fixtures("tenant_001")  # the tenant's fixtures from its template
"""

from __future__ import annotations

from tenancy_fixtures import helpers as _helpers
from tenancy_fixtures.config import ConfigFixture, TenantConfig, TenantLimits, resolve_config
from tenancy_fixtures.credentials import (
    decrypt_credential,
    encrypt_credential,
    resolve_credential,
)
from tenancy_fixtures.errors import (
    ConfigError,
    FixtureError,
    FixtureFormatError,
    FixtureSetError,
    IntegrityViolationError,
    InvalidTenantIdError,
    RecordError,
    RecordsRefusedError,
    SettingsError,
    StorageError,
    TemplateError,
    TenancyFixturesError,
    TenantAlreadyExistsError,
    TenantError,
    TenantNotFoundError,
    ValidationFailedError,
    ValidationTimeoutError,
)
from tenancy_fixtures.fixtures import BaseFixture, FixtureResult
from tenancy_fixtures.generator import generate_fixture_set
from tenancy_fixtures.loaders import (
    AIModelLoader,
    AnalyticsLoader,
    CollaborationLoader,
    DataLoader,
    SpotifyDataLoader,
)
from tenancy_fixtures.loaders.sources import SourceFormat, SourceLoader, register_format
from tenancy_fixtures.manager import FixtureManager, LoadReport
from tenancy_fixtures.monitoring.metrics import Metrics
from tenancy_fixtures.monitoring.monitor import FixtureMonitor, TenantStatus
from tenancy_fixtures.monitoring.performance import PerformanceTracker
from tenancy_fixtures.schema import SchemaFixture
from tenancy_fixtures.settings import Settings, load_settings
from tenancy_fixtures.spotify_schema import spotify_metadata
from tenancy_fixtures.store import TenantSession, TenantStore, open_store
from tenancy_fixtures.tenant_ids import is_valid_tenant_id, validate_tenant_id
from tenancy_fixtures.tenants import TenantFixture
from tenancy_fixtures.validation import (
    DataIntegrityValidator,
    FixtureValidator,
    IntegrityReport,
    ValidationReport,
)

ConfigUtils = _helpers.ConfigUtils
FixtureUtils = _helpers.FixtureUtils
TenantUtils = _helpers.TenantUtils
ValidationUtils = _helpers.ValidationUtils

__all__ = [
    "AIModelLoader",
    "AnalyticsLoader",
    "BaseFixture",
    "CollaborationLoader",
    "ConfigError",
    "ConfigFixture",
    "ConfigUtils",
    "DataIntegrityValidator",
    "DataLoader",
    "FixtureError",
    "FixtureFormatError",
    "FixtureManager",
    "FixtureMonitor",
    "FixtureResult",
    "FixtureSetError",
    "FixtureUtils",
    "FixtureValidator",
    "IntegrityReport",
    "IntegrityViolationError",
    "InvalidTenantIdError",
    "LoadReport",
    "Metrics",
    "PerformanceTracker",
    "RecordError",
    "RecordsRefusedError",
    "SchemaFixture",
    "Settings",
    "SettingsError",
    "SourceFormat",
    "SourceLoader",
    "SpotifyDataLoader",
    "StorageError",
    "TemplateError",
    "TenancyFixturesError",
    "TenantAlreadyExistsError",
    "TenantConfig",
    "TenantError",
    "TenantFixture",
    "TenantLimits",
    "TenantNotFoundError",
    "TenantSession",
    "TenantStatus",
    "TenantStore",
    "TenantUtils",
    "ValidationFailedError",
    "ValidationReport",
    "ValidationTimeoutError",
    "ValidationUtils",
    "decrypt_credential",
    "encrypt_credential",
    "generate_fixture_set",
    "is_valid_tenant_id",
    "load_settings",
    "open_store",
    "register_format",
    "resolve_config",
    "resolve_credential",
    "spotify_metadata",
    "validate_tenant_id",
]
