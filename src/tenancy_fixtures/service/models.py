"""The service's request and response bodies, per resource (``XCreate``/``XUpdate`` in,
``XPublic`` out). They describe the library's results; they compute nothing."""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePath
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from tenancy_fixtures.store.control_plane import AuditRecord, RunRecord, TenantRecord
from tenancy_fixtures.store.migration_ledger import LedgerEntry

__all__ = [
    "AnomalyPublic",
    "AuditPublic",
    "ConfigPublic",
    "ConfigUpdate",
    "ErrorAnalysisPublic",
    "ErrorGroupPublic",
    "ForecastPublic",
    "Health",
    "LimitForecastPublic",
    "LimitUsePublic",
    "LoadJobPublic",
    "LoadRequest",
    "MigrationPublic",
    "Page",
    "Readiness",
    "RunPublic",
    "TenantCreate",
    "TenantPublic",
    "TenantStatusPublic",
    "TenantUsagePublic",
    "UsagePublic",
    "public_detail",
]

T = TypeVar("T")
SettingValue = str | int | float | bool
#: A tenant setting: ``null`` only where it means something (``retention_days``: keep
#: events forever); the library refuses it elsewhere, naming the key.
TenantSetting = SettingValue | None
#: Strict: ``true`` is passed on as given (the library refuses it), not read as 1.
LimitValue = StrictInt | str


class Page(BaseModel, Generic[T]):
    """One page of a listing: ``items`` from ``offset``, and ``total`` in all."""

    items: list[T]
    total: int
    limit: int
    offset: int


# --- tenants ---------------------------------------------------------------------


class TenantCreate(BaseModel):
    """A new tenant: id, tier, and overrides of the tier's defaults."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "tenant_id": "acme_music",
                "tier": "premium",
                "features": ["ai_collaboration"],
                "limits": {"storage": "200GB", "users": 50},
                "settings": {},
            }
        },
    )

    tenant_id: str = Field(max_length=64)
    tier: str = Field(default="free", max_length=32)
    features: list[str] = Field(default_factory=list, max_length=100)
    limits: dict[str, LimitValue] = Field(default_factory=dict)
    settings: dict[str, TenantSetting] = Field(default_factory=dict)


class TenantPublic(BaseModel):
    """A tenant as the registry knows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "tenant_id": "acme_music",
                "tier": "premium",
                "status": "active",
                "created_at": "2026-12-05T10:00:00Z",
                "updated_at": "2026-12-05T10:00:00Z",
            }
        }
    )

    tenant_id: str
    tier: str
    status: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: TenantRecord) -> TenantPublic:
        return cls(**vars(record))


class FixturePublic(BaseModel):
    """A fixture applied to a tenant."""

    kind: str
    checksum: str
    rows: dict[str, int]
    applied_at: str | None


class TenantStatusPublic(BaseModel):
    """One tenant's state: registry, config, applied fixtures, rows and bytes."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "tenant_id": "acme_music",
                "tier": "premium",
                "revision": "0003",
                "status": "active",
                "created_at": "2026-12-05T10:00:00+00:00",
                "config": {"tier": "premium", "features": ["catalog_browsing"]},
                "fixtures": {},
                "row_counts": {"users": 20},
                "total_rows": 20,
                "storage_bytes": 163840,
                "last_load": None,
            }
        }
    )

    tenant_id: str
    tier: str
    revision: str | None
    status: str
    created_at: str | None
    config: dict[str, Any] | None
    fixtures: dict[str, FixturePublic]
    row_counts: dict[str, int]
    total_rows: int
    storage_bytes: int
    last_load: dict[str, Any] | None


# --- config ----------------------------------------------------------------------


class ConfigPublic(BaseModel):
    """A tenant's resolved config: defaults, then its tier, then its own overrides."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "tenant_id": "acme_music",
                "tier": "premium",
                "features": ["advanced_analytics", "catalog_browsing"],
                "limits": {
                    "api_calls": 25000,
                    "storage": 268435456000,
                    "users": 50,
                    "workspaces": 10,
                    "ai_requests_per_day": 1000,
                    "rate_limit_per_minute": 600,
                },
                "settings": {},
            }
        }
    )

    tenant_id: str
    tier: str
    features: list[str]
    limits: dict[str, int]
    settings: dict[str, TenantSetting]


class ConfigUpdate(BaseModel):
    """What to change: a new tier, the tenant's extra feature flags (replacing its
    extras), limits and settings (merged key by key; ``"retention_days": null`` keeps
    events forever). Absent fields stay as they are."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"tier": "enterprise", "limits": {"users": 500}}},
    )

    tier: str | None = Field(default=None, max_length=32)
    features: list[str] | None = Field(default=None, max_length=100)
    limits: dict[str, LimitValue] | None = None
    settings: dict[str, TenantSetting] | None = None


# --- loads -----------------------------------------------------------------------


class LoadRequest(BaseModel):
    """A load of fixtures already on the server: ``path`` names a fixture set (or source
    files) inside the service's load root; without it, the tenant's tier's fixtures
    from the tenant template."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"path": "acme/2026-12", "validation": "strict", "force": False}
        },
    )

    path: str | None = Field(default=None, max_length=4096)
    format: str | None = Field(default=None, max_length=64)
    options: dict[str, SettingValue] | None = None
    validation: Literal["strict", "lenient"] | None = None
    force: bool = False


class LoadJobPublic(BaseModel):
    """A background load: its status, rows taken so far per table, and at the end its
    report (``succeeded``) or problem (``failed``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "job_id": "5f0c8e0a9d2b4c1e8f7a6b5c4d3e2f10",
                "tenant_id": "acme_music",
                "status": "succeeded",
                "created_at": "2026-12-05T10:00:00Z",
                "started_at": "2026-12-05T10:00:00Z",
                "finished_at": "2026-12-05T10:00:01Z",
                "progress": {"users": 20, "tracks": 120},
                "report": {"run_id": "9d2b...", "rows": 140, "changed": True},
                "problem": None,
            }
        }
    )

    job_id: str
    tenant_id: str
    status: Literal["queued", "running", "succeeded", "failed"]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: dict[str, int]
    report: dict[str, Any] | None
    problem: dict[str, Any] | None


# --- migrations, audit, runs -----------------------------------------------------


class MigrationPublic(BaseModel):
    """A tenant's schema revision and its last migration attempt."""

    tenant_id: str
    revision: str | None
    status: str
    attempted_at: datetime | None
    duration_seconds: float | None
    error: str | None

    @classmethod
    def of(cls, entry: LedgerEntry) -> MigrationPublic:
        return cls(**vars(entry))


def public_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """A run's or audit record's detail as a client sees it: the file a lenient load
    set records aside in by its name, not by where the server keeps it."""
    reject_file = detail.get("reject_file")
    if not isinstance(reject_file, str):
        return detail
    return {**detail, "reject_file": PurePath(reject_file).name}


class AuditPublic(BaseModel):
    """One audited change: who did what to which tenant, when, and how it ended."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "audit_id": 42,
                "at": "2026-12-05T10:00:00Z",
                "actor": "ops",
                "action": "tenant.create",
                "tenant_id": "acme_music",
                "outcome": "ok",
                "run_id": "9d2b4c1e8f7a6b5c4d3e2f105f0c8e0a",
                "detail": {"tier": "premium"},
            }
        }
    )

    audit_id: int
    at: datetime
    actor: str
    action: str
    tenant_id: str | None
    outcome: str
    run_id: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, record: AuditRecord) -> AuditPublic:
        return cls(**{**vars(record), "detail": public_detail(record.detail)})


class AuditPage(Page[AuditPublic]):
    """A page of the audit log, and whether it is being written now."""

    audit_logging: bool = Field(
        description="Whether the audit log records operations now; false "
        "(TENANCY_AUDIT_LOGGING=false): these are the records made before it was off."
    )


class RunPublic(BaseModel):
    """One recorded operation on a tenant, with its stage timings (seconds)."""

    run_id: str
    tenant_id: str
    operation: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    stages: dict[str, float]
    detail: dict[str, Any]

    @classmethod
    def of(cls, record: RunRecord) -> RunPublic:
        return cls(**{**vars(record), "detail": public_detail(record.detail)})


# --- usage, forecasts, errors -----------------------------------------------------


class UsagePublic(BaseModel):
    """One usage snapshot: rows per table (``rows`` of data tables, ``derived_rows`` of
    tables computed from them), bytes, and the counters the tenant's limits name."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "tenant_id": "acme_music",
                "taken_at": "2026-12-05T10:00:00+00:00",
                "source": "snapshot",
                "run_id": None,
                "storage_bytes": 163840,
                "rows": 946,
                "derived_rows": 540,
                "row_counts": {"users": 20, "tracks": 120},
                "counters": {"users": 20, "workspaces": 4, "storage": 163840},
            }
        }
    )

    tenant_id: str
    taken_at: datetime
    source: str
    run_id: str | None
    storage_bytes: int
    rows: int
    derived_rows: int
    row_counts: dict[str, int]
    counters: dict[str, int]


class LimitUsePublic(BaseModel):
    """One counted limit: its value now, its maximum, the share used (``null`` for a
    limit of 0 in use)."""

    limit: str
    table: str | None
    value: int
    maximum: int
    ratio: float | None


class TenantUsagePublic(BaseModel):
    """A tenant's newest snapshot (``null``: none taken yet) against its limits, and the
    limits past the warning share or past the maximum."""

    tenant_id: str
    snapshot: UsagePublic | None
    limits: list[LimitUsePublic]
    warnings: list[str]
    breaches: list[str]


class LimitForecastPublic(BaseModel):
    """Days until one limit is reached if its trend holds (``null``: not growing), and
    the band of that at ``confidence``."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "tenant_id": "acme_music",
                "limit": "users",
                "value": 40,
                "maximum": 50,
                "points": 30,
                "slope_per_day": 2.0,
                "slope_band": [1.8, 2.2],
                "days_to_limit": 5.0,
                "days_band": [4.5, 5.6],
                "confidence": 0.9,
                "method": "theil-sen, Sen's interval",
                "level": 40.0,
            }
        }
    )

    tenant_id: str
    limit: str
    value: int
    maximum: int
    points: int
    slope_per_day: float | None
    slope_band: list[float | None]
    days_to_limit: float | None
    days_band: list[float | None]
    confidence: float
    method: str
    level: float | None


class AnomalyPublic(BaseModel):
    """A value of a metric (throughput, duration, growth) far from the tenant's own
    history (robust z-score)."""

    tenant_id: str
    metric: str
    at: datetime
    value: float
    median: float
    score: float
    latest: bool


class ForecastPublic(BaseModel):
    """A tenant's limit forecasts and the anomalies in its history."""

    tenant_id: str
    limits: list[LimitForecastPublic]
    anomalies: list[AnomalyPublic]
    latest_anomalous: dict[str, bool]


class ErrorGroupPublic(BaseModel):
    """Refusals of one kind (tenant, action, error, rule, table), with counts per day."""

    tenant_id: str | None
    action: str
    error: str
    rule: str | None
    table: str | None
    refusals: int
    records: int
    first_at: datetime | None
    last_at: datetime | None
    by_day: dict[str, int]


class ErrorAnalysisPublic(BaseModel):
    """The fleet's refused and failed operations since ``since``, grouped, the most
    frequent first."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "since": "2026-11-28T10:00:00+00:00",
                "audit_logging": True,
                "refused": 3,
                "failed": 0,
                "groups": [
                    {
                        "tenant_id": "acme_music",
                        "action": "fixtures.load",
                        "error": "LimitExceededError",
                        "rule": None,
                        "table": "users",
                        "refusals": 3,
                        "records": 0,
                        "first_at": "2026-12-01T10:00:00+00:00",
                        "last_at": "2026-12-05T10:00:00+00:00",
                        "by_day": {"2026-12-01": 1, "2026-12-05": 2},
                    }
                ],
            }
        }
    )

    since: datetime
    audit_logging: bool = Field(
        description="Whether the audit log records operations now; false "
        "(TENANCY_AUDIT_LOGGING=false): refusals and failures are not being recorded, "
        "so they are not counted here."
    )
    refused: int
    failed: int
    groups: list[ErrorGroupPublic]


# --- operations ------------------------------------------------------------------


class Health(BaseModel):
    """The process answers."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Whether the database and Redis answer (``ok``, ``not configured`` or why not)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"ready": True, "checks": {"database": "ok", "redis": "not configured"}}
        }
    )

    ready: bool
    checks: dict[str, str]
