"""A PostgreSQL user that may only read (CONNECT, USAGE on the schemas, SELECT on the
tables): ``list``, ``show``, ``audit`` and ``validate-data`` work and write nothing;
what needs a write says which privilege on what is missing (issue 11, item 5)."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tenancy_fixtures import FixtureManager, PermissionDeniedError, Settings
from tests.cli.cli_runner import Cli, with_manager
from tests.postgres import asyncpg_dsn

pytestmark = pytest.mark.postgres

TENANT = "ro_tenant"
T = TypeVar("T")


def _as_user(url: str, user: str) -> str:
    return make_url(url).set(username=user).render_as_string(hide_password=False)


def _admin(postgres_url: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on a superuser connection to the run's database."""

    async def go() -> T:
        connection = await asyncpg.connect(asyncpg_dsn(postgres_url))
        try:
            return await work(connection)
        finally:
            await connection.close()

    return asyncio.run(go())


@pytest.fixture
def reader(postgres_url: str) -> Iterator[str]:
    """A LOGIN role that may only read (CONNECT, USAGE and SELECT on the control plane
    and the tenant); dropped afterwards, since roles outlive the database."""
    role = f"tf_reader_{uuid.uuid4().hex[:10]}"

    async def create(admin: asyncpg.Connection) -> None:
        database = await admin.fetchval("SELECT current_database()")
        await admin.execute(
            f'CREATE ROLE {role} LOGIN; GRANT CONNECT ON DATABASE "{database}" TO {role}'
        )

    _admin(postgres_url, create)
    yield role
    _admin(postgres_url, lambda admin: admin.execute(f"DROP OWNED BY {role}; DROP ROLE {role}"))


@pytest.fixture
def loaded(postgres_url: str, demo_set: Path, reader: str) -> Iterator[None]:
    """One tenant with the demo set, made by the suite's (superuser) connection, that the
    reader may read."""

    async def make(manager: FixtureManager) -> None:
        await manager.create_tenant(TENANT)
        await manager.load_fixtures(TENANT, source=demo_set)

    with_manager(postgres_url, make)
    _admin(
        postgres_url,
        lambda admin: admin.execute(
            f"GRANT USAGE ON SCHEMA tenancy, {TENANT} TO {reader}; "
            f"GRANT SELECT ON ALL TABLES IN SCHEMA tenancy, {TENANT} TO {reader}"
        ),
    )
    yield
    with_manager(postgres_url, lambda manager: manager.drop_tenant(TENANT))


def _written(postgres_url: str) -> tuple[int, int]:
    """Rows in the runs and the audit log."""

    async def count(admin: asyncpg.Connection) -> tuple[int, int]:
        return (
            await admin.fetchval("SELECT count(*) FROM tenancy.runs"),
            await admin.fetchval("SELECT count(*) FROM tenancy.audit_log"),
        )

    return _admin(postgres_url, count)


@pytest.mark.usefixtures("loaded")
def test_a_read_only_user_can_list_show_audit_and_validate_and_writes_nothing(
    postgres_url: str, reader: str
) -> None:
    """list, show, audit and validate-data exit 0 as the reader; validation is not
    recorded (no run id) and nothing is added to the runs or the audit log."""
    cli = Cli(_as_user(postgres_url, reader))
    before = _written(postgres_url)

    listed = cli.json("list")
    shown = cli.json("show", TENANT)
    audited = cli.json("audit", TENANT)
    validated = cli.ok("validate-data", TENANT)
    reports = cli.json("validate-data", TENANT)

    assert [TENANT] == [entry["tenant_id"] for entry in listed]
    assert TENANT == shown["tenant_id"]
    assert {"tenant.create", "fixtures.load"} <= {entry["action"] for entry in audited}
    assert "1 tenant(s) checked, 0 failed" == validated.stdout.strip().splitlines()[-1]
    assert "validation_not_recorded" in validated.stderr
    assert "lacks INSERT on table runs" in validated.stderr
    assert [(True, None)] == [(r["ok"], r["run_id"]) for r in reports]
    assert before == _written(postgres_url)


@pytest.mark.usefixtures("loaded")
def test_a_read_only_user_is_told_which_privilege_a_write_needs(
    postgres_url: str, reader: str
) -> None:
    """init-tenant, load-fixtures and cleanup exit 7 with one error naming the user, the
    privilege and what it is on; nothing is written."""
    cli = Cli(_as_user(postgres_url, reader))
    database = make_url(postgres_url).database
    before = _written(postgres_url)

    results = {
        "init-tenant": cli("init-tenant", "ro_other"),
        "load-fixtures": cli("load-fixtures", TENANT, "--force"),
        "cleanup": cli("cleanup", TENANT, "--yes"),
    }

    errors = {
        command: [line for line in result.stderr.splitlines() if line.startswith("error:")]
        for command, result in results.items()
    }
    assert dict.fromkeys(results, 7) == {c: r.exit_code for c, r in results.items()}
    assert {
        "init-tenant": [
            f"error: tenant 'ro_other': permission denied: user '{reader}' may not create "
            f"tenants: that takes CREATE on database '{database}'"
        ],
        "load-fixtures": [
            # A load locks the tenant's registry row before it reads its revision.
            f"error: tenant '{TENANT}': permission denied: user '{reader}' lacks UPDATE on "
            "table tenants (permission denied for table tenants)"
        ],
        "cleanup": [
            # A drop locks the tenant's registry row first (as loads and snapshots do).
            f"error: tenant '{TENANT}': permission denied: user '{reader}' lacks UPDATE on "
            "table tenants (permission denied for table tenants)"
        ],
    } == errors
    assert all("Traceback" not in r.output for r in results.values())
    assert before == _written(postgres_url)


@pytest.mark.usefixtures("loaded")
def test_a_read_only_user_taking_a_snapshot_is_told_it_lacks_update_not_select(
    postgres_url: str, reader: str
) -> None:
    """``monitor snapshot`` locks the tenant's registry row (``SELECT ... FOR UPDATE``),
    which takes UPDATE: the error said the reader "lacks SELECT on table tenants", the
    one privilege it holds there."""
    cli = Cli(_as_user(postgres_url, reader))

    result = cli("monitor", "snapshot", "-t", TENANT)

    assert 7 == result.exit_code
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert (
        f"error: tenant '{TENANT}': permission denied: user '{reader}' lacks UPDATE on "
        "table tenants (permission denied for table tenants)"
    ) == line


async def test_a_read_only_user_without_a_control_plane_is_told_what_creating_it_takes(
    postgres_url: str, reader: str
) -> None:
    """On a database where no command has run yet, the reader gets PermissionDeniedError:
    the tenancy schema is missing, creating it takes CREATE on the database."""
    database = f"tf_ro_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(asyncpg_dsn(postgres_url))
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        await admin.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {reader}')
        url = make_url(_as_user(postgres_url, reader)).set(database=database)
        settings = Settings(database_url=url.render_as_string(hide_password=False))
        with pytest.raises(PermissionDeniedError) as denied:
            async with FixtureManager(settings) as manager:
                await manager.list_tenants()
    finally:
        await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        await admin.close()

    assert ("CREATE", f"database '{database}'", reader) == (
        denied.value.privilege,
        denied.value.on,
        denied.value.user,
    )
    assert (
        f"permission denied: the control-plane schema 'tenancy' does not exist, and user "
        f"'{reader}' may not create it: that takes CREATE on database '{database}' (or run "
        "any command once as a user who has it)"
    ) == str(denied.value)


async def test_a_user_who_may_add_tables_to_the_control_plane_adds_a_missing_one(
    postgres_url: str, reader: str
) -> None:
    """A control plane missing a table (as after an upgrade that adds one) is completed
    by a user with CREATE on schema tenancy, though not on the database: the existing
    schema is not created again, which PostgreSQL would refuse that user."""
    database = f"tf_ro_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(asyncpg_dsn(postgres_url))
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        admin_url = make_url(postgres_url).set(database=database)
        async with FixtureManager(
            Settings(database_url=admin_url.render_as_string(hide_password=False))
        ) as manager:
            await manager.list_tenants()
        there = await asyncpg.connect(asyncpg_dsn(admin_url.render_as_string(hide_password=False)))
        try:
            await there.execute(
                f'GRANT CONNECT ON DATABASE "{database}" TO {reader}; '
                "DROP TABLE tenancy.plane; "
                f"GRANT USAGE, CREATE ON SCHEMA tenancy TO {reader}; "
                f"GRANT SELECT ON ALL TABLES IN SCHEMA tenancy TO {reader}"
            )
        finally:
            await there.close()
        url = make_url(_as_user(postgres_url, reader)).set(database=database)
        async with FixtureManager(
            Settings(database_url=url.render_as_string(hide_password=False))
        ) as manager:
            tenants = await manager.list_tenants()
    finally:
        await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        await admin.close()

    assert [] == tenants


@pytest.mark.usefixtures("loaded")
def test_a_reader_not_granted_the_write_stamps_still_validates(
    postgres_url: str, reader: str
) -> None:
    """A reader granted SELECT before ``table_write_stamps`` existed (or without it) has
    every table read again instead of failing on the stamps."""
    _admin(
        postgres_url,
        lambda admin: admin.execute(f"REVOKE SELECT ON tenancy.table_write_stamps FROM {reader}"),
    )
    cli = Cli(_as_user(postgres_url, reader))

    [report] = cli.json("validate-data", TENANT)

    assert (True, {"recomputed"}) == (
        report["ok"],
        {c["method"] for c in report["checksums"].values()},
    )
