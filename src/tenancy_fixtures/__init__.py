"""tenancy-fixtures: isolated storage, schema, config and data for every tenant, in one call.

::

    from tenancy_fixtures import FixtureManager

    manager = FixtureManager()                 # embedded SQLite under ./.tenancy/
    await manager.create_tenant("tenant_001")  # isolated storage + schema + config
    await manager.load_fixtures("tenant_001")  # the tenant's fixtures from its template

Importing the package is cheap: each public name is imported from its module on
first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tenancy_fixtures.errors import ConfigError as ConfigError
    from tenancy_fixtures.errors import FeatureDisabledError as FeatureDisabledError
    from tenancy_fixtures.errors import FixtureError as FixtureError
    from tenancy_fixtures.errors import FixtureFormatError as FixtureFormatError
    from tenancy_fixtures.errors import FixtureSetError as FixtureSetError
    from tenancy_fixtures.errors import IntegrityViolationError as IntegrityViolationError
    from tenancy_fixtures.errors import InvalidTenantIdError as InvalidTenantIdError
    from tenancy_fixtures.errors import PermissionDeniedError as PermissionDeniedError
    from tenancy_fixtures.errors import RecordError as RecordError
    from tenancy_fixtures.errors import RecordsRefusedError as RecordsRefusedError
    from tenancy_fixtures.errors import SettingsError as SettingsError
    from tenancy_fixtures.errors import StorageError as StorageError
    from tenancy_fixtures.errors import TemplateError as TemplateError
    from tenancy_fixtures.errors import TenancyFixturesError as TenancyFixturesError
    from tenancy_fixtures.errors import TenantAlreadyExistsError as TenantAlreadyExistsError
    from tenancy_fixtures.errors import TenantError as TenantError
    from tenancy_fixtures.errors import TenantNotFoundError as TenantNotFoundError
    from tenancy_fixtures.errors import ValidationFailedError as ValidationFailedError
    from tenancy_fixtures.errors import ValidationTimeoutError as ValidationTimeoutError
    from tenancy_fixtures.fixtures.base import BaseFixture as BaseFixture
    from tenancy_fixtures.fixtures.base import FixtureResult as FixtureResult
    from tenancy_fixtures.fixtures.context import LoadContext as LoadContext
    from tenancy_fixtures.fixtures.schema import SchemaFixture as SchemaFixture
    from tenancy_fixtures.ids import is_valid_tenant_id as is_valid_tenant_id
    from tenancy_fixtures.ids import validate_tenant_id as validate_tenant_id
    from tenancy_fixtures.loading.data_loader import DataLoader as DataLoader
    from tenancy_fixtures.loading.derived import Derivation as Derivation
    from tenancy_fixtures.loading.derived import RefreshesDerivedTables as RefreshesDerivedTables
    from tenancy_fixtures.loading.derived import register_derivation as register_derivation
    from tenancy_fixtures.loading.fixture_validator import FixtureValidator as FixtureValidator
    from tenancy_fixtures.loading.fixture_validator import ValidationReport as ValidationReport
    from tenancy_fixtures.loading.load import LoadOptions as LoadOptions
    from tenancy_fixtures.loading.load import load_many as load_many
    from tenancy_fixtures.loading.load import load_tenant as load_tenant
    from tenancy_fixtures.loading.registry import register_loader as register_loader
    from tenancy_fixtures.loading.reports import LoadReport as LoadReport
    from tenancy_fixtures.loading.reports import ManyLoadReport as ManyLoadReport
    from tenancy_fixtures.loading.sources import SourceFormat as SourceFormat
    from tenancy_fixtures.loading.sources import SourceLoader as SourceLoader
    from tenancy_fixtures.loading.sources import register_format as register_format
    from tenancy_fixtures.loading.value_formats import ValueFormat as ValueFormat
    from tenancy_fixtures.loading.value_formats import (
        register_value_format as register_value_format,
    )
    from tenancy_fixtures.manager import FixtureManager as FixtureManager
    from tenancy_fixtures.monitoring.metrics import Metrics as Metrics
    from tenancy_fixtures.monitoring.monitor import FixtureMonitor as FixtureMonitor
    from tenancy_fixtures.monitoring.monitor import TenantStatus as TenantStatus
    from tenancy_fixtures.monitoring.performance import PerformanceTracker as PerformanceTracker
    from tenancy_fixtures.namespaces import ConfigUtils as ConfigUtils
    from tenancy_fixtures.namespaces import FixtureUtils as FixtureUtils
    from tenancy_fixtures.namespaces import TenantUtils as TenantUtils
    from tenancy_fixtures.namespaces import ValidationUtils as ValidationUtils
    from tenancy_fixtures.settings import Settings as Settings
    from tenancy_fixtures.settings import load_settings as load_settings
    from tenancy_fixtures.spotify.ai_models import AIModelLoader as AIModelLoader
    from tenancy_fixtures.spotify.analytics import AnalyticsLoader as AnalyticsLoader
    from tenancy_fixtures.spotify.catalogue import SpotifyDataLoader as SpotifyDataLoader
    from tenancy_fixtures.spotify.collaboration import CollaborationLoader as CollaborationLoader
    from tenancy_fixtures.spotify.generator import generate_fixture_set as generate_fixture_set
    from tenancy_fixtures.spotify.schema import spotify_metadata as spotify_metadata
    from tenancy_fixtures.store import TenantSession as TenantSession
    from tenancy_fixtures.store import TenantStore as TenantStore
    from tenancy_fixtures.store import open_store as open_store
    from tenancy_fixtures.store.control_plane import AuditRecord as AuditRecord
    from tenancy_fixtures.store.control_plane import TenantRecord as TenantRecord
    from tenancy_fixtures.tenancy.config import ConfigFixture as ConfigFixture
    from tenancy_fixtures.tenancy.config import TenantConfig as TenantConfig
    from tenancy_fixtures.tenancy.config import TenantLimits as TenantLimits
    from tenancy_fixtures.tenancy.config import resolve_config as resolve_config
    from tenancy_fixtures.tenancy.credentials import decrypt_credential as decrypt_credential
    from tenancy_fixtures.tenancy.credentials import encrypt_credential as encrypt_credential
    from tenancy_fixtures.tenancy.credentials import resolve_credential as resolve_credential
    from tenancy_fixtures.tenancy.tenants import TenantFixture as TenantFixture
    from tenancy_fixtures.validation.integrity import (
        DataIntegrityValidator as DataIntegrityValidator,
    )
    from tenancy_fixtures.validation.integrity import IntegrityReport as IntegrityReport

    __version__: str

_ERRORS = "tenancy_fixtures.errors"
#: Where each public name lives; it is imported from there on first use.
_PUBLIC: dict[str, str] = {
    "AIModelLoader": "tenancy_fixtures.spotify.ai_models",
    "AnalyticsLoader": "tenancy_fixtures.spotify.analytics",
    "AuditRecord": "tenancy_fixtures.store.control_plane",
    "BaseFixture": "tenancy_fixtures.fixtures.base",
    "CollaborationLoader": "tenancy_fixtures.spotify.collaboration",
    "ConfigError": _ERRORS,
    "ConfigFixture": "tenancy_fixtures.tenancy.config",
    "ConfigUtils": "tenancy_fixtures.namespaces",
    "DataIntegrityValidator": "tenancy_fixtures.validation.integrity",
    "DataLoader": "tenancy_fixtures.loading.data_loader",
    "Derivation": "tenancy_fixtures.loading.derived",
    "FeatureDisabledError": _ERRORS,
    "FixtureError": _ERRORS,
    "FixtureFormatError": _ERRORS,
    "FixtureManager": "tenancy_fixtures.manager",
    "FixtureMonitor": "tenancy_fixtures.monitoring.monitor",
    "FixtureResult": "tenancy_fixtures.fixtures.base",
    "FixtureSetError": _ERRORS,
    "FixtureUtils": "tenancy_fixtures.namespaces",
    "FixtureValidator": "tenancy_fixtures.loading.fixture_validator",
    "IntegrityReport": "tenancy_fixtures.validation.integrity",
    "IntegrityViolationError": _ERRORS,
    "InvalidTenantIdError": _ERRORS,
    "LoadContext": "tenancy_fixtures.fixtures.context",
    "LoadOptions": "tenancy_fixtures.loading.load",
    "LoadReport": "tenancy_fixtures.loading.reports",
    "ManyLoadReport": "tenancy_fixtures.loading.reports",
    "Metrics": "tenancy_fixtures.monitoring.metrics",
    "PerformanceTracker": "tenancy_fixtures.monitoring.performance",
    "PermissionDeniedError": _ERRORS,
    "RecordError": _ERRORS,
    "RecordsRefusedError": _ERRORS,
    "RefreshesDerivedTables": "tenancy_fixtures.loading.derived",
    "SchemaFixture": "tenancy_fixtures.fixtures.schema",
    "Settings": "tenancy_fixtures.settings",
    "SettingsError": _ERRORS,
    "SourceFormat": "tenancy_fixtures.loading.sources",
    "SourceLoader": "tenancy_fixtures.loading.sources",
    "SpotifyDataLoader": "tenancy_fixtures.spotify.catalogue",
    "StorageError": _ERRORS,
    "TemplateError": _ERRORS,
    "TenancyFixturesError": _ERRORS,
    "TenantAlreadyExistsError": _ERRORS,
    "TenantConfig": "tenancy_fixtures.tenancy.config",
    "TenantError": _ERRORS,
    "TenantFixture": "tenancy_fixtures.tenancy.tenants",
    "TenantLimits": "tenancy_fixtures.tenancy.config",
    "TenantNotFoundError": _ERRORS,
    "TenantRecord": "tenancy_fixtures.store.control_plane",
    "TenantSession": "tenancy_fixtures.store",
    "TenantStatus": "tenancy_fixtures.monitoring.monitor",
    "TenantStore": "tenancy_fixtures.store",
    "TenantUtils": "tenancy_fixtures.namespaces",
    "ValidationFailedError": _ERRORS,
    "ValidationReport": "tenancy_fixtures.loading.fixture_validator",
    "ValidationTimeoutError": _ERRORS,
    "ValidationUtils": "tenancy_fixtures.namespaces",
    "ValueFormat": "tenancy_fixtures.loading.value_formats",
    "decrypt_credential": "tenancy_fixtures.tenancy.credentials",
    "encrypt_credential": "tenancy_fixtures.tenancy.credentials",
    "generate_fixture_set": "tenancy_fixtures.spotify.generator",
    "is_valid_tenant_id": "tenancy_fixtures.ids",
    "load_many": "tenancy_fixtures.loading.load",
    "load_settings": "tenancy_fixtures.settings",
    "load_tenant": "tenancy_fixtures.loading.load",
    "open_store": "tenancy_fixtures.store",
    "register_derivation": "tenancy_fixtures.loading.derived",
    "register_format": "tenancy_fixtures.loading.sources",
    "register_loader": "tenancy_fixtures.loading.registry",
    "register_value_format": "tenancy_fixtures.loading.value_formats",
    "resolve_config": "tenancy_fixtures.tenancy.config",
    "resolve_credential": "tenancy_fixtures.tenancy.credentials",
    "spotify_metadata": "tenancy_fixtures.spotify.schema",
    "validate_tenant_id": "tenancy_fixtures.ids",
}

__all__ = sorted([*_PUBLIC, "__version__"])


if not TYPE_CHECKING:  # type checkers see the imports above, not a catch-all

    def __getattr__(name: str) -> Any:
        if name == "__version__":
            value = _version()
            globals()[name] = value
            return value
        module = _PUBLIC.get(name)
        if module is None:
            raise AttributeError(f"module 'tenancy_fixtures' has no attribute {name!r}")
        value = getattr(import_module(module), name)
        globals()[name] = value
        return value


def _version() -> str:
    # importlib.metadata costs more than the rest of the import: read it when asked.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tenancy-fixtures")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def __dir__() -> list[str]:
    return __all__
