"""The four feature flags switched off, on both backends: performance monitoring, data
validation, audit logging and cache optimization each do what the README says when
false, and say so in the runs and the audit log where it says they do."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update

from tenancy_fixtures import FixtureManager, RecordError, Settings, TenancyFixturesError
from tenancy_fixtures.errors import ConfigError, IntegrityViolationError, SettingsError
from tenancy_fixtures.loading import data_loader, parse_workers
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.loading.load import LoadOptions
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.tenancy.config_cache import NoConfigCache
from tenancy_fixtures.validation import FixtureValidator
from tests.cleanup import drop_every_tenant
from tests.fixture_files import jsonl_records, open_set
from tests.integration.subject_data import SUBJECT

ManagerFactory = Callable[..., Any]
BAD_EMAIL_USER = "bad-user,Bad User,not-an-email,GB,free,2026-01-01T00:00:00+00:00"


def fresh_tenant() -> str:
    """A tenant id no earlier test of this run used (the audit log outlives tenants)."""
    return f"flags_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def flagged(database_url: str) -> ManagerFactory:
    """Opens a manager on this test's backend with the given settings on top; every
    tenant is dropped around its use."""

    @asynccontextmanager
    async def make(**flags: Any) -> AsyncIterator[FixtureManager]:
        settings = Settings(database_url=database_url, actor="pytest", **flags)
        async with FixtureManager(settings) as manager:
            await drop_every_tenant(manager)
            try:
                yield manager
            finally:
                await drop_every_tenant(manager)

    return make


def with_line(demo_set: Path, target: Path, file: str, line: str) -> Path:
    """A copy of the demo set with ``line`` appended to ``file``."""
    directory = Path(shutil.copytree(demo_set, target))
    path = directory / file
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + "\n" + line + "\n")
    return directory


def with_track(demo_set: Path, target: Path, **changes: Any) -> Path:
    """A copy of the demo set with one more track: the first one, changed."""
    track = jsonl_records(demo_set / "tracks.jsonl")[0]
    new = {**track, "track_id": "zzzzzzzzzzzzzzzzzzzzz1", **changes}
    return with_line(demo_set, target, "tracks.jsonl", json.dumps(new))


async def users(manager: FixtureManager, tenant_id: str, user_id: str | None = None) -> int:
    """How many users ``tenant_id`` holds (with ``user_id``: of that id)."""
    async with manager.store.session(tenant_id, readonly=True) as session:
        table = next(t for t in session.metadata.sorted_tables if t.name == "users")
        query = select(func.count()).select_from(table)
        if user_id is not None:
            query = query.where(table.c.user_id == user_id)
        return int((await session.connection.execute(query)).scalar_one())


class TestDataValidationOff:
    async def test_a_record_breaking_a_value_format_loads_and_the_load_says_validation_off(
        self, flagged: ManagerFactory, demo_set: Path, tmp_path: Path
    ) -> None:
        """Value formats are Python-side rules only: with validation off a user whose
        e-mail is not one loads, and both the run and the audit record say so."""
        source = with_line(demo_set, tmp_path / "set", "users.csv", BAD_EMAIL_USER)
        tenant = fresh_tenant()
        async with flagged(data_validation=False) as manager:
            await manager.create_tenant(tenant)

            report = await manager.load(tenant, LoadOptions(source=source))

            runs, _ = await manager.runs(tenant, operation="load")
            audited = [r for r in await manager.audit_log(tenant) if r.action == "fixtures.load"]
            assert 1 == await users(manager, tenant, "bad-user")
        assert "off" == runs[0].detail["validation"]
        assert [("ok", "off")] == [(r.outcome, r.detail["validation"]) for r in audited]
        assert report.run_id == runs[0].run_id

    async def test_parse_workers_leave_the_rules_out_too(
        self,
        flagged: ManagerFactory,
        demo_set: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """JSON Lines parsed in worker processes follow the same setting: a track whose
        ISRC is not one loads through the workers with validation off."""
        monkeypatch.setattr(DataLoader, "parallel_min_bytes", 0)
        sent: list[str] = []
        real = parse_workers.parse_in_workers

        def spy(workers: Any, files: Any, table: Any, **kwargs: Any) -> Any:
            sent.append(table.name)
            return real(workers, files, table, **kwargs)

        monkeypatch.setattr(data_loader, "parse_in_workers", spy)
        source = with_track(demo_set, tmp_path / "set", isrc="not-an-isrc")
        tenant = fresh_tenant()
        async with flagged(data_validation=False, parse_workers=2) as manager:
            await manager.create_tenant(tenant)

            report = await manager.load(tenant, LoadOptions(source=source))

        assert "tracks" in sent
        assert report.row_counts["tracks"] == len(jsonl_records(source / "tracks.jsonl"))

    def test_validating_the_set_still_finds_the_broken_format_on_demand(
        self, demo_set: Path, tmp_path: Path
    ) -> None:
        """The fixture validator is not the load: it checks every rule whatever the
        setting says."""
        source = with_line(demo_set, tmp_path / "set", "users.csv", BAD_EMAIL_USER)

        report = FixtureValidator(spotify_metadata()).validate(open_set(source))

        assert ["format:email"] == [e.rule for e in report.errors]

    async def test_the_database_still_refuses_a_check_constraint_violation(
        self, flagged: ManagerFactory, demo_set: Path, tmp_path: Path
    ) -> None:
        """A negative duration breaks the tracks table's CHECK constraint: the database
        refuses it, and the load writes nothing."""
        source = with_track(demo_set, tmp_path / "set", duration_ms=-5)
        tenant = fresh_tenant()
        async with flagged(data_validation=False) as manager:
            await manager.create_tenant(tenant)

            with pytest.raises(IntegrityViolationError, match="ck_tracks_duration_ms"):
                await manager.load(tenant, LoadOptions(source=source))

            assert 0 == await users(manager, tenant)
            runs, _ = await manager.runs(tenant, operation="load")
        assert [] == runs

    async def test_a_value_of_the_wrong_type_is_still_refused_by_name(
        self, flagged: ManagerFactory, demo_set: Path, tmp_path: Path
    ) -> None:
        """Typing a record into a row is not optional: text for an integer column is
        refused as ``type``, naming file and column."""
        source = with_track(demo_set, tmp_path / "set", duration_ms="long")
        tenant = fresh_tenant()
        async with flagged(data_validation=False) as manager:
            await manager.create_tenant(tenant)

            with pytest.raises(RecordError) as caught:
                await manager.load(tenant, LoadOptions(source=source))

        assert ("tracks.jsonl", "duration_ms", "type") == (
            caught.value.path,
            caught.value.column,
            caught.value.rule,
        )

    async def test_a_lenient_load_is_refused_without_validation(
        self, flagged: ManagerFactory, demo_set: Path
    ) -> None:
        """A lenient load finds what it sets aside by validating: asked for one with
        validation off, the load is refused before it starts."""
        tenant = fresh_tenant()
        async with flagged(data_validation=False) as manager:
            await manager.create_tenant(tenant)

            with pytest.raises(SettingsError, match="TENANCY_DATA_VALIDATION"):
                await manager.load(tenant, LoadOptions(source=demo_set, validation="lenient"))

    async def test_a_load_with_validation_on_records_no_validation_flag(
        self, flagged: ManagerFactory, demo_set: Path
    ) -> None:
        """The default is unchanged: the run's detail carries no ``validation`` key."""
        tenant = fresh_tenant()
        async with flagged() as manager:
            await manager.create_tenant(tenant)
            await manager.load(tenant, LoadOptions(source=demo_set))
            runs, _ = await manager.runs(tenant, operation="load")
        assert "validation" not in runs[0].detail
        assert "monitoring" not in runs[0].detail


class TestPerformanceMonitoringOff:
    async def test_a_load_records_no_timings_and_says_monitoring_off(
        self, flagged: ManagerFactory, demo_set: Path
    ) -> None:
        """No stage timings, no ``performance`` detail, and ``monitoring: off``."""
        tenant = fresh_tenant()
        async with flagged(performance_monitoring=False) as manager:
            await manager.create_tenant(tenant)

            report = await manager.load(tenant, LoadOptions(source=demo_set))

            runs, _ = await manager.runs(tenant, operation="load")
        assert {} == report.stages
        assert {} == runs[0].stages
        assert "performance" not in runs[0].detail
        assert "off" == runs[0].detail["monitoring"]
        assert report.rows > 0

    async def test_no_operation_is_counted_in_the_metrics(
        self, flagged: ManagerFactory, demo_set: Path
    ) -> None:
        """Creating, loading and dropping a tenant leave the Prometheus counters empty
        (with monitoring on, the same steps count three operations)."""
        counted: dict[bool, float] = {}
        for monitoring in (False, True):
            tenant = fresh_tenant()
            async with flagged(performance_monitoring=monitoring) as manager:
                await manager.create_tenant(tenant)
                await manager.load(tenant, LoadOptions(source=demo_set))
                await manager.drop_tenant(tenant)
                registry = manager.metrics.registry
                counted[monitoring] = sum(
                    sample.value
                    for metric in registry.collect()
                    if metric.name in ("tenancy_operations", "tenancy_rows_loaded")
                    for sample in metric.samples
                    if sample.name.endswith("_total")
                )
        assert 0 == counted[False]
        assert counted[True] > 3

    async def test_a_recorded_validation_keeps_no_stage_timings(
        self, flagged: ManagerFactory, demo_set: Path
    ) -> None:
        """validate-data's checks still run; their times are not kept."""
        tenant = fresh_tenant()
        async with flagged(performance_monitoring=False) as manager:
            await manager.create_tenant(tenant)
            await manager.load(tenant, LoadOptions(source=demo_set))

            report = await manager.validate_tenant(tenant, record=True)

            runs, _ = await manager.runs(tenant, operation="validate")
        assert report.ok
        assert {} == report.stages
        assert {} == runs[0].stages

    async def test_a_migration_is_recorded_without_its_duration(
        self, flagged: ManagerFactory
    ) -> None:
        """The migration ledger kept each attempt's seconds (``migrate status --json``:
        ``duration_seconds``) with runs said not to be timed: it keeps none."""
        tenant = fresh_tenant()
        async with flagged(performance_monitoring=False) as manager:
            await manager.create_tenant(tenant)
            down = await manager.migrate([tenant], to="-1")
            up = await manager.migrate([tenant])

            [entry] = await manager.migration_status([tenant])
        assert (down.ok, up.ok) == (True, True)
        assert "ok" == entry.status
        assert entry.duration_seconds is None


class TestAuditLoggingOff:
    async def test_operations_and_refusals_leave_no_audit_record(
        self, flagged: ManagerFactory, demo_set: Path, tmp_path: Path
    ) -> None:
        """Create, load, a refused load, a recorded validation and a config change are
        not audited; the load's run is still recorded."""
        tenant = fresh_tenant()
        refused = with_track(demo_set, tmp_path / "bad", duration_ms="long")
        async with flagged(audit_logging=False) as manager:
            await manager.create_tenant(tenant)
            await manager.load(tenant, LoadOptions(source=demo_set))
            with pytest.raises(TenancyFixturesError):
                await manager.load(tenant, LoadOptions(source=refused))
            await manager.validate_tenant(tenant, record=True)
            await manager.update_tenant_config(tenant, features=["sso"])

            audit = await manager.audit_log(tenant)
            runs, _ = await manager.runs(tenant)
        assert [] == audit
        assert {"load", "validate"} == {r.operation for r in runs}

    async def test_with_audit_on_the_same_operations_are_audited(
        self, flagged: ManagerFactory, demo_set: Path
    ) -> None:
        """The default is unchanged: creating and loading are audited."""
        tenant = fresh_tenant()
        async with flagged() as manager:
            await manager.create_tenant(tenant)
            await manager.load(tenant, LoadOptions(source=demo_set))
            actions = {r.action for r in await manager.audit_log(tenant)}
        assert {"tenant.create", "fixtures.load"} <= actions

    async def test_an_erasure_is_refused_before_anything_changes(
        self, flagged: ManagerFactory, demo_set: Path
    ) -> None:
        """Its receipt is the proof of it: with audit off an erasure is a ConfigError
        (exit 2) naming the setting, and the person's row is still there."""
        tenant = fresh_tenant()
        async with flagged(audit_logging=False) as manager:
            await manager.create_tenant(tenant)
            await manager.load(tenant, LoadOptions(source=demo_set))

            with pytest.raises(ConfigError, match="TENANCY_AUDIT_LOGGING") as refused:
                await manager.erase_subject(tenant, SUBJECT)

            assert 1 == await users(manager, tenant, SUBJECT)
            check = await manager.verify_erasure(tenant, SUBJECT)
        assert 2 == refused.value.exit_code
        assert not check.on_record

    async def test_a_drop_erases_earlier_details_under_a_tombstone_and_the_chain_verifies(
        self, flagged: ManagerFactory, demo_set: Path
    ) -> None:
        """The one write with audit off: a drop still reduces the tenant's earlier records
        to the minimal trail, and the tombstone that says so keeps the chain verifiable.
        A tenant never audited leaves no record at all."""
        audited_before, never_audited = fresh_tenant(), fresh_tenant()
        async with flagged() as manager:
            await manager.create_tenant(audited_before)
            await manager.load(audited_before, LoadOptions(source=demo_set))
            settings = manager.settings.model_copy(update={"audit_logging": False})
            async with FixtureManager(settings) as off:
                await off.create_tenant(never_audited)
                await off.drop_tenant(audited_before)
                await off.drop_tenant(never_audited)

            records = await manager.audit_log(audited_before)
            assert [] == await manager.audit_log(never_audited)
            assert (await manager.verify_audit()).ok
        assert ["audit.erase"] == [r.action for r in records if r.action == "audit.erase"]
        assert "tenant.drop" not in {r.action for r in records}
        assert all(r.detail.get("erased") for r in records if r.action != "audit.erase")


class TestCacheOptimizationOff:
    async def test_every_config_read_goes_to_the_control_plane(
        self, flagged: ManagerFactory
    ) -> None:
        """A change made behind the library's back (no invalidation) is read at once,
        inside the revalidation window that a cached read would be served within."""
        tenant = fresh_tenant()
        async with flagged(cache_optimization=False, cache_revalidate_seconds=3600) as manager:
            await manager.create_tenant(tenant, tier="premium")
            first = await manager.get_tenant_config(tenant)
            async with manager.store.control() as conn:
                stored = await control_plane.load_config(conn, tenant)
                assert stored is not None
                stored["limits"] = stored["limits"] | {"api_calls": 7}
                table = control_plane.configs_table
                await conn.execute(
                    update(table).where(table.c.tenant_id == tenant).values(config=stored)
                )

            second = await manager.get_tenant_config(tenant)

            assert isinstance(manager.cache, NoConfigCache)
        assert 10_000 == first.limits.api_calls
        assert 7 == second.limits.api_calls

    @pytest.mark.redis
    async def test_redis_is_never_written_even_with_a_redis_url(
        self, flagged: ManagerFactory, redis_url: str, redis_prefix: str
    ) -> None:
        """With a Redis URL set and the cache off, no key appears under the prefix, and
        readiness says Redis is not used (and is ready)."""
        tenant = fresh_tenant()
        async with flagged(
            cache_optimization=False, redis_url=redis_url, redis_prefix=redis_prefix
        ) as manager:
            await manager.create_tenant(tenant)
            config = await manager.get_tenant_config(tenant)
            checks = await manager.readiness()
        client = Redis.from_url(redis_url, decode_responses=True)
        try:
            keys = await client.keys(f"{redis_prefix}:*")
        finally:
            await client.aclose()
        assert [] == keys
        assert tenant == config.tenant_id
        assert "not used" == checks["redis"]
