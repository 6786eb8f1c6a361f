"""The documented API, checked by mypy only (never collected by pytest)."""

from __future__ import annotations

from tenancy_fixtures import (
    ConfigFixture,
    FixtureManager,
    LoadReport,
    TenancyFixturesError,
    TenantConfig,
    TenantFixture,
)


async def design_snippet() -> None:
    manager = FixtureManager()
    await manager.create_tenant("tenant_001")
    await manager.load_fixtures("tenant_001")

    tenant_fixture = TenantFixture(
        tenant_id="premium_001",
        features=["ai_collaboration", "advanced_analytics"],
        limits={"api_calls": 10000, "storage": "100GB"},
    )
    config_fixture = ConfigFixture()
    config: TenantConfig = await config_fixture.apply_tenant_config(tenant_fixture)
    assert config.limits.storage == 100 * 1024**3


async def readme_snippet() -> None:
    async with FixtureManager() as manager:
        await manager.create_tenant(TenantFixture(tenant_id="acme", tier="enterprise"))
        report: LoadReport = await manager.load_fixtures("acme", source="./fixtures/acme")
        counts: dict[str, int] = report.row_counts
        del counts
        try:
            await manager.drop_tenant("acme")
        except TenancyFixturesError as exc:
            print(exc.tenant_id)
