"""The demo: three tenants of different tiers, provisioned, loaded and checked.

It is what ``make demo`` and ``tenancy-fixtures demo`` run, and a worked example of
the public API. The enterprise tenant also gets Spotify source files (Web API
responses, streaming-history exports, an MPD slice) through the domain loaders.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tenancy_fixtures.errors import TenantNotFoundError, ValidationFailedError
from tenancy_fixtures.loading.data_loader import ProgressCallback
from tenancy_fixtures.loading.derived import derived_tables
from tenancy_fixtures.manager import FixtureManager
from tenancy_fixtures.spotify.source_generator import generate_sources
from tenancy_fixtures.tenancy.config import TenantConfig
from tenancy_fixtures.tenancy.tenants import TenantFixture
from tenancy_fixtures.validation.integrity import IntegrityReport

__all__ = ["DEMO_SOURCES_TENANT", "DEMO_TENANTS", "DemoResult", "run_demo"]

DEMO_TENANTS = (
    TenantFixture(tenant_id="demo_free", tier="free"),
    TenantFixture(
        tenant_id="demo_premium",
        tier="premium",
        features=["ai_collaboration"],
        limits={"api_calls": 25_000, "storage": "250GB"},
    ),
    TenantFixture(
        tenant_id="demo_enterprise",
        tier="enterprise",
        settings={"region": "us-east-1", "default_market": "GB"},
    ),
)


#: The demo tenant that also loads generated Spotify source files.
DEMO_SOURCES_TENANT = "demo_enterprise"


@dataclass(frozen=True)
class DemoResult:
    """One demo tenant after provisioning, loading and validation."""

    config: TenantConfig
    tables: int
    #: Rows of the data tables; rows of derived tables (the daily aggregates) apart.
    rows: int
    create_seconds: float
    load_seconds: float
    validation_ok: bool
    derived_rows: int = 0


async def run_demo(
    manager: FixtureManager,
    *,
    reset: bool = True,
    progress_for: dict[str, ProgressCallback] | None = None,
) -> list[DemoResult]:
    """Provision the demo tenants, load their tier's fixtures, validate; drop old ones first."""
    results: list[DemoResult] = []
    for tenant in DEMO_TENANTS:
        if reset:
            with contextlib.suppress(TenantNotFoundError):
                await manager.drop_tenant(tenant.tenant_id)
        started = time.perf_counter()
        config = await manager.create_tenant(tenant)
        created = time.perf_counter() - started
        progress = (progress_for or {}).get(tenant.tenant_id)
        try:
            load_seconds, integrity = await _load_and_validate(manager, tenant, progress)
        except BaseException:  # Ctrl-C arrives as the task's cancellation
            with contextlib.suppress(Exception):  # the load's error is the one to show
                await manager.drop_tenant(tenant.tenant_id)
            raise
        derived = sum(n for t, n in integrity.row_counts.items() if t in derived_tables())
        results.append(
            DemoResult(
                config=config,
                tables=sum(1 for rows in integrity.row_counts.values() if rows),
                rows=integrity.total_rows - derived,
                create_seconds=created,
                load_seconds=load_seconds,
                validation_ok=integrity.ok,
                derived_rows=derived,
            )
        )
    return results


async def _load_and_validate(
    manager: FixtureManager, tenant: TenantFixture, progress: ProgressCallback | None
) -> tuple[float, IntegrityReport]:
    """Load the tier's fixtures (and, for :data:`DEMO_SOURCES_TENANT`, generated source
    files) into the new demo tenant and validate it; the seconds loading took."""
    report = await manager.load_fixtures(tenant.tenant_id, progress=progress)
    load_seconds = report.seconds
    if tenant.tenant_id == DEMO_SOURCES_TENANT:
        with tempfile.TemporaryDirectory(prefix="tf_demo_sources_") as directory:
            generate_sources(Path(directory), scale=1, seed=42)
            sources = await manager.load_fixtures(tenant.tenant_id, directory, progress=progress)
        load_seconds += sources.seconds
    integrity = await manager.validate_tenant(tenant.tenant_id)
    if not integrity.ok:
        raise ValidationFailedError(integrity.problems, tenant_id=tenant.tenant_id)
    return load_seconds, integrity
