"""The load as a use case on both backends: load_tenant / load_many called with the store,
the settings and one LoadOptions, and the LoadContext every loader gets in apply()."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from pathlib import Path

from tenancy_fixtures import (
    DataLoader,
    FixtureManager,
    LoadContext,
    LoadOptions,
    LoadReport,
    ManyLoadReport,
    Settings,
    TenantSession,
    load_many,
    load_tenant,
)
from tenancy_fixtures import manager as manager_module

TENANT = "use_case_tenant"


class RecordingLoader(DataLoader):
    """The demo set's DataLoader that keeps the context of each apply."""

    def __init__(self, source: Path, manager: FixtureManager) -> None:
        super().__init__(source, metadata=manager.store.metadata)
        self.contexts: list[LoadContext] = []

    async def apply(self, session: TenantSession, context: LoadContext) -> Mapping[str, int]:
        self.contexts.append(context)
        return await super().apply(session, context)


class OverlapLoader(DataLoader):
    """The demo set's DataLoader that counts how many of its applies run at once."""

    def __init__(self, source: Path, manager: FixtureManager) -> None:
        super().__init__(source, metadata=manager.store.metadata)
        self.running = 0
        self.most = 0

    async def apply(self, session: TenantSession, context: LoadContext) -> Mapping[str, int]:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.05)  # room for another tenant's load to start
            return await super().apply(session, context)
        finally:
            self.running -= 1


async def test_load_tenant_loads_what_its_options_name_and_is_idempotent(
    manager: FixtureManager, settings: Settings, demo_set: Path
) -> None:
    """Called with a store, settings and LoadOptions (no manager), load_tenant loads the
    set once, audits it under the report's run id, and a second call changes nothing."""
    await manager.create_tenant(TENANT)
    options = LoadOptions(source=demo_set)

    first = await load_tenant(manager.store, settings, TENANT, options)
    second = await load_tenant(manager.store, settings, TENANT, options)

    assert (True, False) == (first.changed, second.changed)
    audit = await manager.audit_log(TENANT, limit=2)
    assert [
        ("fixtures.load", "unchanged", second.run_id),
        ("fixtures.load", "ok", first.run_id),
    ] == [(r.action, r.outcome, r.run_id) for r in audit]


async def test_every_loader_gets_the_run_context_in_apply(
    manager: FixtureManager, settings: Settings, demo_set: Path
) -> None:
    """apply() receives the run's id, settings, progress callback and the limits the
    settings set; nothing is set on the loader from outside."""
    await manager.create_tenant(TENANT)
    loader = RecordingLoader(demo_set, manager)
    batches: list[tuple[str, int]] = []

    report = await manager.load_fixtures(
        TENANT, fixtures=[loader], progress=lambda table, rows: batches.append((table, rows))
    )

    (context,) = loader.contexts
    assert (report.run_id, settings, settings.max_text_length, settings.workers_for_parsing) == (
        context.run_id,
        context.settings,
        context.max_text_length,
        context.parse_workers,
    )
    assert {} == dict(context.skip_records)
    assert report.rows == sum(rows for _, rows in batches)


async def test_a_lenient_load_gives_the_loaders_the_records_it_sets_aside(
    manager: FixtureManager, demo_set: Path, tmp_path: Path
) -> None:
    """The records a lenient load leaves out reach apply() in the context, by file."""
    directory = Path(shutil.copytree(demo_set, tmp_path / "one_bad"))
    with (directory / "users.csv").open("a", encoding="utf-8") as users:
        users.write("bad-user,Bad User,not-an-email,GB,free,2026-01-01T00:00:00+00:00\n")
    await manager.create_tenant(TENANT)
    loader = RecordingLoader(directory, manager)

    report = await manager.load(
        TENANT,
        LoadOptions(fixtures=[loader], validation="lenient", reject_dir=tmp_path / "rejects"),
    )

    (context,) = loader.contexts
    assert 1 == report.rejected
    assert {directory / "users.csv": 1} == {
        path: len(records) for path, records in context.skip_records.items()
    }


async def test_load_many_applies_given_loader_objects_one_tenant_at_a_time(
    manager: FixtureManager, settings: Settings, demo_set: Path
) -> None:
    """A loader object keeps what its last load wrote, so load_many does not apply the
    same given loaders to two tenants at once, whatever the concurrency."""
    tenants = ["use_case_a", "use_case_b", "use_case_c"]
    for tenant in tenants:
        await manager.create_tenant(tenant)
    loader = OverlapLoader(demo_set, manager)

    combined = await load_many(
        manager.store, settings, tenants, LoadOptions(fixtures=[loader]), concurrency=3
    )

    assert (True, 1) == (combined.ok, loader.most)
    assert sorted(tenants) == sorted(combined.reports)


async def test_a_tenant_named_twice_in_one_load_many_is_loaded_once(
    manager: FixtureManager, demo_set: Path
) -> None:
    """Its report is its one load (the second, a no-op, once replaced the first's)."""
    await manager.create_tenant(TENANT)

    async def loads() -> int:
        # The database may hold an earlier test's tenant of that name (dropped, audited).
        return sum(e.action == "fixtures.load" for e in await manager.audit_log(TENANT))

    before = await loads()
    combined = await manager.load_fixtures_many([TENANT, TENANT], demo_set)

    report = combined.reports[TENANT]
    assert (True, True) == (combined.ok, report.changed)
    assert report.rows > 0
    assert 1 == await loads() - before


def test_the_load_reports_are_one_class_wherever_they_are_imported_from() -> None:
    """LoadReport and ManyLoadReport from the manager module are the use case's."""
    assert (LoadReport, ManyLoadReport) == (
        manager_module.LoadReport,
        manager_module.ManyLoadReport,
    )
