"""The plugin's rolled-back mode: ``tenant_session`` on the worker's shared tenant, used by
inner test suites on SQLite and on PostgreSQL; and the fresh mode beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugin.conftest import InnerRun, tenants_left

pytestmark = pytest.mark.usefixtures("backend")

#: The inner suites' model: the engine's artists table, declared as an app declares it
#: (no schema), and a count of its rows.
_MODEL = """\
from pathlib import Path

import pytest
from sqlalchemy import String, func, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

IDS = Path({ids!r})


class Base(DeclarativeBase):
    pass


class Artist(Base):
    __tablename__ = "artists"
    artist_id: Mapped[str] = mapped_column(String(22), primary_key=True)
    name: Mapped[str]
    popularity: Mapped[int | None]


async def count(session):
    return await session.scalar(select(func.count()).select_from(Artist))


def keep(name, tenant):
    (IDS / f"{{name}}.id").write_text(tenant.tenant_id)

"""

_ROLLED_BACK = """
pytestmark = pytest.mark.tenant_fixtures("artists_set")


async def test_a_commits_through_the_session(tenant, tenant_session):
    keep("a", tenant)
    tenant_session.add(Artist(artist_id="4Z8W4fKeB5YxbusRsdQVPb", name="Third"))
    await tenant_session.commit()
    await tenant_session.execute(
        insert(Artist).values(artist_id="1vCWHaC5f2uS3yhpwWbIA6", name="Fourth")
    )
    await tenant_session.commit()
    assert await count(tenant_session) == 4


async def test_b_sees_only_the_set(tenant, tenant_session, tenancy_manager):
    keep("b", tenant)
    assert await count(tenant_session) == 2
    status = await tenancy_manager.tenant_status(tenant.tenant_id)
    assert status.row_counts["artists"] == 2


async def test_c_writes_on_the_connection_and_fails(tenant, tenant_session):
    keep("c", tenant)
    connection = await tenant_session.connection()
    await connection.execute(insert(Artist).values(artist_id="6eUKZXaKkcviH0Ku9w2n3V", name="X"))
    raise AssertionError("fails on purpose")


async def test_d_sees_only_the_set_after_a_failure(tenant, tenant_session):
    keep("d", tenant)
    streamed = await tenant_session.stream(select(Artist.name).order_by(Artist.name))
    assert [row.name async for row in streamed] == ["First", "Second"]


async def test_e_savepoints_inside_the_test(tenant, tenant_session):
    keep("e", tenant)
    async with tenant_session.begin_nested():
        tenant_session.add(Artist(artist_id="4Z8W4fKeB5YxbusRsdQVPb", name="Kept"))
    nested = await tenant_session.begin_nested()
    tenant_session.add(Artist(artist_id="1vCWHaC5f2uS3yhpwWbIA6", name="Undone"))
    await nested.rollback()
    assert await count(tenant_session) == 3


@pytest.mark.tenant_fixtures("artists_set", tier="premium")
async def test_f_another_tier_is_another_tenant(tenant, tenant_session):
    keep("f", tenant)
    assert tenant.config.tier == "premium"
    assert await count(tenant_session) == 2


def test_g_a_sync_test_shares_the_tenant(tenant, tenant_session):
    keep("g", tenant)
    assert tenant.shared
"""

_COMMITS_THE_CONNECTION = """
pytestmark = pytest.mark.tenant_fixtures("artists_set")


async def test_a_commits_the_connection_itself(tenant, tenant_session):
    keep("a", tenant)
    connection = await tenant_session.connection()
    await connection.execute(insert(Artist).values(artist_id="4Z8W4fKeB5YxbusRsdQVPb", name="X"))
    await connection.commit()


async def test_b_gets_a_new_shared_tenant(tenant, tenant_session):
    keep("b", tenant)
    assert await count(tenant_session) == 2
"""

_COMMITS_AS_SQL = """
from sqlalchemy import text

pytestmark = pytest.mark.tenant_fixtures("artists_set")


async def test_a_commits_with_sql(tenant, tenant_session):
    keep("a", tenant)
    row = insert(Artist).values(artist_id="4Z8W4fKeB5YxbusRsdQVPb", name="X")
    await tenant_session.execute(row)
    await tenant_session.execute(text("COMMIT"))


async def test_b_gets_a_new_shared_tenant(tenant, tenant_session):
    keep("b", tenant)
    assert await count(tenant_session) == 2
"""

_MODES = """
@pytest.mark.tenant_fixtures("artists_set", shared=False)
async def test_a_fresh_tenant_with_a_session(tenant, tenant_session):
    keep("a", tenant)
    assert not tenant.shared
    connection = await tenant_session.connection()
    await connection.execute(insert(Artist).values(artist_id="4Z8W4fKeB5YxbusRsdQVPb", name="X"))
    await connection.commit()  # the tenant is this test's alone


@pytest.mark.tenant_fixtures("artists_set", shared=False)
async def test_b_fresh_again(tenant, tenant_session):
    keep("b", tenant)
    assert await count(tenant_session) == 2


@pytest.mark.tenant_fixtures("artists_set", shared=True)
def test_c_shared_without_a_session(tenant):
    keep("c", tenant)
    assert tenant.shared


@pytest.mark.tenant_fixtures("artists_set")
def test_d_a_session_gets_the_same_shared_tenant(tenant, tenant_session):
    keep("d", tenant)


@pytest.mark.tenant_fixtures("artists_set")
def test_e_without_a_session_a_fresh_one(tenant):
    keep("e", tenant)
    assert not tenant.shared


@pytest.mark.tenant_fixtures("artists_set", shared="yes")
def test_f_shared_must_be_a_bool(tenant):
    raise AssertionError("unreachable")
"""

_MANY = """
@pytest.mark.tenant_fixtures("artists_set")
@pytest.mark.parametrize("n", range(6))
async def test_each_sees_its_own_row_only(n, tenant, tenant_session):
    keep(str(n), tenant)
    tenant_session.add(Artist(artist_id=f"{{n}}" * 22, name=f"Artist {{n}}"))
    await tenant_session.commit()
    assert await count(tenant_session) == 3
"""


def _inner_file(pytester: pytest.Pytester, tests: str) -> Path:
    ids = pytester.path / "ids"
    ids.mkdir()
    pytester.makepyfile(test_inner=(_MODEL + tests).format(ids=str(ids)))
    return ids


def _ids(directory: Path) -> dict[str, str]:
    return {p.stem: p.read_text() for p in directory.glob("*.id")}


async def test_rows_a_test_writes_through_the_session_are_gone_in_the_next_test(
    pytester: pytest.Pytester, inner: InnerRun, database_url: str
) -> None:
    """Commits through the session, writes on its connection, a failing test: the next
    test sees the set alone, on the same shared tenant; a tier of its own is another
    tenant; none is left after the run."""
    ids = _inner_file(pytester, _ROLLED_BACK)

    result = inner()

    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(["FAILED *test_c_writes_on_the_connection_and_fails*"])
    made = _ids(ids)
    assert {made[name] for name in "abcdeg"} == {made["a"]}
    assert made["f"] != made["a"]
    assert await tenants_left(database_url) == []


async def test_committing_the_connection_itself_fails_the_test_and_replaces_the_tenant(
    pytester: pytest.Pytester, inner: InnerRun, database_url: str
) -> None:
    """The connection's own commit() writes to the shared tenant for good: the test
    errors at teardown, and the next test gets a new tenant loaded with the set."""
    ids = _inner_file(pytester, _COMMITS_THE_CONNECTION)

    result = inner()

    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*committed the transaction of tenant_session itself*"])
    made = _ids(ids)
    assert made["a"] != made["b"]
    assert await tenants_left(database_url) == []


async def test_a_commit_sent_as_sql_errors_the_test_and_replaces_the_tenant(
    pytester: pytest.Pytester, inner: InnerRun, database_url: str
) -> None:
    """A ``COMMIT`` the test sends as SQL ends the session's transaction where SQLAlchemy
    does not see it: the test errors at teardown and the next one gets a new tenant
    (it kept the old one, holding the committed row)."""
    ids = _inner_file(pytester, _COMMITS_AS_SQL)

    result = inner()

    result.assert_outcomes(passed=2, errors=1)
    made = _ids(ids)
    assert made["a"] != made["b"]
    assert await tenants_left(database_url) == []


async def test_the_marker_chooses_a_fresh_or_the_shared_tenant(
    pytester: pytest.Pytester, inner: InnerRun, database_url: str
) -> None:
    """``shared=False`` gives a session on a fresh tenant (its commits allowed),
    ``shared=True`` the shared tenant without a session; unmarked, a session decides."""
    ids = _inner_file(pytester, _MODES)

    result = inner()

    result.assert_outcomes(passed=5, errors=1)
    result.stdout.fnmatch_lines(["*shared must be True, False or None, not str 'yes'*"])
    made = _ids(ids)
    assert len({made["a"], made["b"], made["c"], made["e"]}) == 4
    assert made["c"] == made["d"]
    assert await tenants_left(database_url) == []


async def test_each_xdist_worker_has_its_own_shared_tenant(
    pytester: pytest.Pytester, inner: InnerRun, database_url: str
) -> None:
    """Two workers: one shared tenant each, every test sees its own row alone, none is
    left behind."""
    ids = _inner_file(pytester, _MANY)

    result = inner("-n", "2")

    result.assert_outcomes(passed=6)
    shared = set(_ids(ids).values())
    assert {tenant_id.split("_")[1] for tenant_id in shared} == {"gw0", "gw1"}
    assert len(shared) == 2
    assert await tenants_left(database_url) == []


async def test_a_statement_the_test_times_out_is_over_before_the_rollback_at_teardown(
    pytester: pytest.Pytester, inner: InnerRun
) -> None:
    """``asyncio.wait_for`` cancelling a statement of ``tenant_session``: the statement
    ends on the plugin's loop before the await returns, so the teardown's rollback never
    meets it half-cancelled (it raised PendingRollbackError) and the shared tenant is
    kept for the next test."""
    pytester.makepyfile(
        test_inner="""
        import asyncio

        import pytest
        from sqlalchemy import text

        SLOW = {
            "postgresql": "SELECT pg_sleep(0.6)",
            "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            "WHERE x < 3000000) SELECT count(*) FROM c",
        }
        SEEN = set()

        @pytest.mark.parametrize("n", range(2))
        async def test_times_out(n, tenant, tenant_session, tenancy_manager):
            slow = text(SLOW[tenancy_manager.settings.backend])
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(tenant_session.execute(slow), 0.05)
            SEEN.add(tenant.tenant_id)
            assert len(SEEN) == 1  # the first test's teardown kept the shared tenant
        """
    )

    result = inner()

    result.assert_outcomes(passed=2)
