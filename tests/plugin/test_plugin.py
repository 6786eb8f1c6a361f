"""The pytest plugin, used by inner test suites as an app's suite would use it, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.store import control_plane
from tests.plugin.conftest import InnerRun, tenants_left, written_ids

pytestmark = pytest.mark.usefixtures("backend")

_SCENARIOS = """\
from pathlib import Path

import pytest

IDS = Path({ids!r})


@pytest.mark.tenant_fixtures("artists_set")
async def test_a_marked_tenant_holds_the_set(tenant, tenancy_manager):
    (IDS / "a.id").write_text(tenant.tenant_id)
    status = await tenancy_manager.tenant_status(tenant.tenant_id)
    assert status.row_counts["artists"] == 2
    assert tenant.load.row_counts == {{"artists": 2}}


async def test_b_the_next_tenant_is_fresh(tenant, tenancy_manager):
    (IDS / "b.id").write_text(tenant.tenant_id)
    assert tenant.tenant_id != (IDS / "a.id").read_text()
    status = await tenancy_manager.tenant_status(tenant.tenant_id)
    assert sum(status.row_counts.values()) == 0
    mine = tenant.tenant_id.rsplit("_", 1)[0] + "_"
    left = [t.tenant_id for t in await tenancy_manager.list_tenants(prefix=mine)]
    assert left == [tenant.tenant_id]


def test_c_fails_on_purpose(tenant):
    (IDS / "c.id").write_text(tenant.tenant_id)
    raise AssertionError("fails on purpose")


def test_d_factory_makes_tenants_with_options(tenant_factory):
    made = tenant_factory.many(3, tier="premium", limits={{"users": 7}})
    made.append(tenant_factory(fixtures="artists_set"))
    for number, one in enumerate(made):
        (IDS / f"d{{number}}.id").write_text(one.tenant_id)
    assert [t.config.tier for t in made] == ["premium"] * 3 + ["free"]
    assert made[0].config.limits.users == 7
    assert made[3].load.row_counts == {{"artists": 2}}
"""

_MANY = """\
from pathlib import Path

import pytest

IDS = Path({ids!r})


@pytest.mark.parametrize("n", range(6))
async def test_each_gets_its_own_tenant(n, tenant, tenancy_manager):
    (IDS / f"{{n}}.id").write_text(tenant.tenant_id)
    status = await tenancy_manager.tenant_status(tenant.tenant_id)
    assert sum(status.row_counts.values()) == 0
"""


def _inner_file(pytester: pytest.Pytester, source: str) -> Path:
    ids = pytester.path / "ids"
    ids.mkdir()
    pytester.makepyfile(test_inner=source.format(ids=str(ids)))
    return ids


async def test_each_test_gets_a_fresh_tenant_dropped_even_when_the_test_fails(
    pytester: pytest.Pytester, inner: InnerRun, database_url: str
) -> None:
    """Marker loading, isolation between tests, the factory, and no tenant left after a
    run with a failing test."""
    ids = _inner_file(pytester, _SCENARIOS)

    result = inner()

    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_c_fails_on_purpose*fails on purpose*"])
    assert len(set(written_ids(ids))) == 3 + 4
    assert await tenants_left(database_url) == []


async def test_the_inner_suite_passes_under_xdist_with_distinct_tenants(
    pytester: pytest.Pytester, inner: InnerRun, database_url: str
) -> None:
    """Two workers: every test its own tenant, none left behind."""
    ids = _inner_file(pytester, _MANY)

    result = inner("-n", "2")

    result.assert_outcomes(passed=6)
    assert len(set(written_ids(ids))) == 6
    assert {i.split("_")[1] for i in written_ids(ids)} == {"gw0", "gw1"}
    assert await tenants_left(database_url) == []


async def test_a_load_that_fails_or_a_marker_mistake_errors_the_test_and_leaves_no_tenant(
    pytester: pytest.Pytester, inner: InnerRun, database_url: str
) -> None:
    """A marker naming a set that cannot load errors the test and drops its tenant; a
    misspelled marker keyword errors it with the marker's signature."""
    pytester.makepyfile(
        test_inner=textwrap.dedent(
            """
            import pytest

            @pytest.mark.tenant_fixtures("no_such_set")
            def test_never_runs(tenant):
                raise AssertionError("unreachable")

            @pytest.mark.tenant_fixtures("artists_set", teir="pro")
            def test_never_runs_either(tenant):
                raise AssertionError("unreachable")
            """
        )
    )

    result = inner()

    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*no_such_set*"])
    result.stdout.fnmatch_lines(["*unknown keyword teir='pro' (did you mean tier=?)*"])
    assert await tenants_left(database_url) == []


_INTERRUPTING_CONFTEST = """\
import os
import signal
import threading

from tenancy_fixtures.manager import FixtureManager

_create = FixtureManager.create_tenant
_main = threading.main_thread().ident


async def create_tenant(self, *args, **kwargs):
    made = await _create(self, *args, **kwargs)
    if os.environ.get("INTERRUPT_CREATE"):
        # Ctrl-C reaches the test while the plugin waits for the tenant: made all the same.
        signal.pthread_kill(_main, signal.SIGINT)
        await __import__("asyncio").sleep(0.3)
    return made


FixtureManager.create_tenant = create_tenant
"""


async def test_a_run_interrupted_while_a_tenant_is_made_leaves_no_tenant(
    pytester: pytest.Pytester,
    inner: InnerRun,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C while the plugin waits for a tenant being made: the making goes on to the
    end on the plugin's loop, and the tenant is dropped, though no fixture holds it."""
    pytester.makeconftest(_INTERRUPTING_CONFTEST)
    pytester.makepyfile(
        test_inner="""
        def test_interrupted(tenant):
            raise AssertionError("unreachable")
        """
    )
    monkeypatch.setenv("INTERRUPT_CREATE", "1")

    result = inner()

    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    assert await tenants_left(database_url) == []


async def _spare_schemas(database_url: str) -> set[str]:
    settings = Settings(database_url=database_url, actor="pytest")
    async with FixtureManager(settings) as manager, manager.store.control(readonly=True) as conn:
        pool = control_plane.schema_pool_table
        return set((await conn.execute(select(pool.c.schema_name))).scalars())


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_run_with_spares_leaves_the_pool_the_database_keeps_as_it_was(
    pytester: pytest.Pytester, inner: InnerRun, database_url: str
) -> None:
    """Spare schemas the app's `warm-up` keeps are neither trimmed to the run's number
    when a worker starts nor dropped when it ends: the run adds its own and removes
    those alone."""
    async with FixtureManager(Settings(database_url=database_url, actor="pytest")) as manager:
        await manager.warm_up(3)
    kept = await _spare_schemas(database_url)
    pytester.makepyfile(
        test_inner="""
        import asyncio

        from sqlalchemy import func, select

        from tenancy_fixtures import FixtureManager
        from tenancy_fixtures.store import control_plane

        async def spares(settings):
            async with FixtureManager(settings) as manager:
                async with manager.store.control(readonly=True) as conn:
                    pool = select(func.count()).select_from(control_plane.schema_pool_table)
                    return (await conn.execute(pool)).scalar_one()

        def test_the_worker_adds_its_spares(tenancy_manager):
            assert asyncio.run(spares(tenancy_manager.settings)) == 3 + 2
        """
    )

    result = inner("--tenancy-spares", "2")

    result.assert_outcomes(passed=1)
    assert len(kept) == 3
    assert await _spare_schemas(database_url) == kept


async def test_the_manager_acting_as_another_actor_runs_on_the_plugins_loop_too(
    pytester: pytest.Pytester, inner: InnerRun, database_url: str
) -> None:
    """``tenancy_manager.acting_as(actor)`` is awaited from any loop like the manager:
    its pooled connections stay on the plugin's loop, so the tests after it still work."""
    pytester.makepyfile(
        test_inner="""
        import asyncio

        async def test_acting_as(tenancy_manager):
            alice = tenancy_manager.acting_as("alice")
            ids = [f"alice_{n}" for n in range(4)]
            await asyncio.gather(*(alice.create_tenant(i) for i in ids))
            records = await tenancy_manager.audit_log(tenant_id=ids[0])
            assert records[0].actor == "alice"
            await asyncio.gather(*(alice.drop_tenant(i) for i in ids))

        def test_then_a_factory(tenant_factory):
            tenant_factory.many(3)

        async def test_then_a_tenant(tenant, tenancy_manager):
            await asyncio.gather(*(tenancy_manager.tenant_status(str(tenant)) for _ in range(4)))
        """
    )

    result = inner()

    result.assert_outcomes(passed=3)
    assert await tenants_left(database_url) == []


async def test_factory_features_given_as_one_string_are_refused_not_read_as_characters(
    pytester: pytest.Pytester, inner: InnerRun, database_url: str
) -> None:
    """``tenant_factory(features="sso")`` says to write a list, as the marker does, instead
    of refusing an unknown feature 's'; no tenant is made."""
    pytester.makepyfile(
        test_inner="""
        def test_one_string(tenant_factory):
            tenant_factory(features="sso")
        """
    )

    result = inner()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*list of feature names, not the string 'sso'*"])
    assert await tenants_left(database_url) == []
