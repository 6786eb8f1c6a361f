"""Least privilege on PostgreSQL: what a tenant role may do, who owns a tenant schema, as
whom loads write, and that roles are found by name when a tenant is dropped.

The attack these tests replay (issue 11, item 1): with tenant roles, the tenant role had
every right on its schema, so it could add a table, a function and a trigger on its own
``users`` table; the next load, connected as a superuser, fired the trigger, which
copied other tenants' and the control plane's rows into the tenant's table.
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tenancy_fixtures import (
    FixtureManager,
    PermissionDeniedError,
    Settings,
    StorageError,
    ValidationFailedError,
)
from tests.integration.reports import failures
from tests.postgres import role_exists

pytestmark = pytest.mark.postgres

APPLICATION = ("SELECT", "INSERT", "UPDATE", "DELETE")
TABLE_PRIVILEGES = (*APPLICATION, "TRUNCATE", "REFERENCES", "TRIGGER")
SCHEMA_PRIVILEGES = ("USAGE", "CREATE")


def _settings(postgres_url: str, *, roles: bool) -> Settings:
    return Settings(database_url=postgres_url, actor="pytest", tenant_roles=roles)


async def _attempt(admin: asyncpg.Connection, role: str, statement: str) -> str:
    """Run ``statement`` as ``role`` in a transaction that is rolled back; the name of the
    error it raised, or ``allowed``."""
    transaction = admin.transaction()
    await transaction.start()
    try:
        await admin.execute(f'SET LOCAL ROLE "{role}"')
        await admin.execute(statement)
    except asyncpg.PostgresError as exc:
        return type(exc).__name__
    finally:
        await transaction.rollback()
    return "allowed"


async def test_a_tenant_role_is_refused_every_way_to_plant_code_in_its_schema(
    roles_manager: FixtureManager,
    tenant_ids: Callable[[str], str],
    admin: asyncpg.Connection,
    demo_set: Path,
) -> None:
    """As the tenant role: CREATE TABLE, FUNCTION, VIEW, TRIGGER, RULE, POLICY, ALTER TABLE
    and TRUNCATE in its schema all fail with permission errors; writing rows does not."""
    ta = tenant_ids("a")
    await roles_manager.create_tenant(ta)
    await roles_manager.load_fixtures(ta, source=demo_set)
    role = roles_manager.store.tenant_role(ta)
    assert role is not None
    # A trigger function anyone may execute, so that only CREATE TRIGGER itself is judged.
    await admin.execute(
        "CREATE OR REPLACE FUNCTION public.lp_noop() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN NEW; END $$"
    )
    attempts = {
        "create table": f"CREATE TABLE {ta}.stolen (what text)",
        "create function": f"CREATE FUNCTION {ta}.grab() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN NEW; END $$",
        "create view": f"CREATE VIEW {ta}.v AS SELECT 1 AS one",
        "create trigger": f"CREATE TRIGGER grab AFTER INSERT OR UPDATE ON {ta}.users "
        "FOR EACH STATEMENT EXECUTE FUNCTION public.lp_noop()",
        "create rule": f"CREATE RULE r AS ON INSERT TO {ta}.users DO ALSO NOTHING",
        "create policy": f"CREATE POLICY p ON {ta}.users USING (true)",
        "alter table": f"ALTER TABLE {ta}.users ADD COLUMN z int",
        "truncate": f"TRUNCATE {ta}.users CASCADE",
        "write rows": f"UPDATE {ta}.users SET display_name = display_name",
    }
    try:
        outcomes = {what: await _attempt(admin, role, sql) for what, sql in attempts.items()}
    finally:
        await admin.execute("DROP FUNCTION public.lp_noop()")

    assert (
        dict.fromkeys(attempts, "InsufficientPrivilegeError") | {"write rows": "allowed"}
        == outcomes
    )


def _plant_the_attack(ta: str, tb: str) -> list[str]:
    """The issue's attack, as a superuser would plant it: a table, a function copying
    counts of another tenant's users and of the audit log into it, a trigger firing it."""
    return [
        f"CREATE TABLE {ta}.stolen (what text, n bigint, who text)",
        f"""CREATE FUNCTION {ta}.grab() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO {ta}.stolen SELECT '{tb}.users', count(*), current_user FROM {tb}.users;
            INSERT INTO {ta}.stolen
                SELECT 'tenancy.audit_log', count(*), current_user FROM tenancy.audit_log;
            RETURN NULL;
        END $$""",
        f"CREATE TRIGGER grab AFTER INSERT OR UPDATE ON {ta}.users "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {ta}.grab()",
    ]


@pytest.mark.parametrize("roles", [True, False], ids=["roles", "no_roles"])
async def test_a_load_refuses_while_a_trigger_planted_by_a_superuser_is_attached(
    postgres_url: str,
    tenant_ids: Callable[[str], str],
    admin: asyncpg.Connection,
    demo_set: Path,
    roles: bool,
) -> None:
    """The issue's attack planted by a superuser: load --force refuses, the trigger never
    fires (nothing stolen), the rows stay as they were, and validate-data fails on it."""
    ta, tb = tenant_ids("a"), tenant_ids("b")
    superuser = await admin.fetchval("SELECT current_user")
    async with FixtureManager(_settings(postgres_url, roles=roles)) as manager:
        try:
            for tenant in (ta, tb):
                await manager.create_tenant(tenant)
                await manager.load_fixtures(tenant, source=demo_set)
            for statement in _plant_the_attack(ta, tb):
                await admin.execute(statement)
            users_before = await admin.fetch(f"SELECT * FROM {ta}.users ORDER BY user_id")

            with pytest.raises(ValidationFailedError) as refused:
                await manager.load_fixtures(ta, source=demo_set, force=True)
            report = await manager.validate_tenant(ta)
            stolen = await admin.fetch(f"SELECT * FROM {ta}.stolen")
            users_after = await admin.fetch(f"SELECT * FROM {ta}.users ORDER BY user_id")
        finally:
            for tenant in (ta, tb):
                await manager.drop_tenant(tenant)

    assert [
        f"trigger grab on users (runs {ta}.grab()) is not part of the tenant schema and "
        "writing the tenant's tables would run it; remove it before loading "
        "(validate-data lists everything undeclared)"
    ] == refused.value.problems
    assert ta == refused.value.tenant_id
    assert [] == stolen
    assert users_before == users_after
    assert [
        f"function grab() (owned by {superuser}) is not declared by the tenant schema",
        f"table stolen (owned by {superuser}) is not declared by the tenant schema",
        f"trigger grab on users (runs {ta}.grab()) is not declared by the tenant schema",
    ] == failures(report, "objects")


async def test_a_load_writes_as_the_schema_owner_role_not_as_the_connecting_superuser(
    roles_manager: FixtureManager,
    tenant_ids: Callable[[str], str],
    admin: asyncpg.Connection,
    demo_set: Path,
) -> None:
    """With INSERT revoked from the owner role, a superuser-connected load is refused for
    the owner role's lack of it: the rows are written as that role."""
    ta = tenant_ids("a")
    await roles_manager.create_tenant(ta)
    owner = roles_manager.store.owner_role(ta)
    assert f"TF_ROLE_{ta}" == owner
    assert await admin.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    await admin.execute(f'REVOKE INSERT ON ALL TABLES IN SCHEMA {ta} FROM "{owner}"')

    with pytest.raises(PermissionDeniedError) as denied:
        await roles_manager.load_fixtures(ta, source=demo_set)

    error = denied.value
    assert ("INSERT", owner, ta) == (error.privilege, error.user, error.tenant_id)
    assert (error.on or "").startswith("table "), error.on
    assert 0 == await admin.fetchval(f"SELECT count(*) FROM {ta}.users")


async def _privileges(
    admin: asyncpg.Connection, role: str, schema: str
) -> dict[tuple[str, str, str, str], bool]:
    """Every schema and table privilege ``role`` has in ``schema``, by
    (role, schema, object, privilege); the schema itself is the object ``"schema"``."""
    held: dict[tuple[str, str, str, str], bool] = {}
    for privilege in SCHEMA_PRIVILEGES:
        held[(role, schema, "schema", privilege)] = await admin.fetchval(
            "SELECT has_schema_privilege($1, $2, $3)", role, schema, privilege
        )
    rows = await admin.fetch(
        "SELECT c.relname, p, has_table_privilege($1, c.oid, p) "
        "FROM pg_class c CROSS JOIN unnest($3::text[]) p "
        "WHERE c.relnamespace = to_regnamespace($2) AND c.relkind IN ('r', 'p')",
        role,
        schema,
        list(TABLE_PRIVILEGES),
    )
    for table, privilege, granted in rows:
        held[(role, schema, table, privilege)] = granted
    return held


async def test_role_matrix_only_the_diagonal_holds_privileges(
    roles_manager: FixtureManager, tenant_ids: Callable[[str], str], admin: asyncpg.Connection
) -> None:
    """3 tenants x their 3 tenant roles (and 3 owner roles), every table and schema
    privilege, the control plane included: a tenant role holds USAGE and SELECT, INSERT,
    UPDATE, DELETE on its own tenant only; an owner role everything on its own only."""
    tenants = [tenant_ids(name) for name in ("m1", "m2", "m3")]
    for tenant in tenants:
        await roles_manager.create_tenant(tenant)
    store = roles_manager.store
    tenant_role = {str(store.tenant_role(t)): t for t in tenants}
    owner_role = {str(store.owner_role(t)): t for t in tenants}
    actual: dict[tuple[str, str, str, str], bool] = {}
    for role in [*tenant_role, *owner_role]:
        for schema in [*tenants, "tenancy"]:
            actual |= await _privileges(admin, role, schema)

    def granted(role: str, schema: str, obj: str, privilege: str) -> bool:
        if owner_role.get(role) == schema:
            return True
        if tenant_role.get(role) != schema:
            return False
        return privilege == "USAGE" if obj == "schema" else privilege in APPLICATION

    tables = {t.name for t in store.metadata.sorted_tables}
    control = {
        "schema",
        *(
            r["relname"]
            for r in await admin.fetch(
                "SELECT relname FROM pg_class WHERE relnamespace = 'tenancy'::regnamespace "
                "AND relkind = 'r'"
            )
        ),
    }
    assert {(s, o) for s in tenants for o in tables | {"schema"}} | {
        ("tenancy", o) for o in control
    } == {(s, o) for (_, s, o, _) in actual}
    assert 6 * (3 * (len(tables) * 7 + 2) + (len(control) - 1) * 7 + 2) == len(actual)
    assert {key: granted(*key) for key in actual} == actual


async def test_tables_created_later_by_the_owner_get_the_application_grants(
    roles_manager: FixtureManager, tenant_ids: Callable[[str], str], admin: asyncpg.Connection
) -> None:
    """A table a migration creates as the owner role gets SELECT, INSERT, UPDATE, DELETE
    for the tenant role (default privileges), and neither TRIGGER, REFERENCES nor
    TRUNCATE; its sequence USAGE and SELECT, not UPDATE."""
    ta = tenant_ids("a")
    await roles_manager.create_tenant(ta)
    owner, role = roles_manager.store.owner_role(ta), roles_manager.store.tenant_role(ta)
    async with admin.transaction():
        await admin.execute(f'SET LOCAL ROLE "{owner}"')
        await admin.execute(f"CREATE TABLE {ta}.later (id serial PRIMARY KEY)")

    held = {
        privilege: await admin.fetchval(
            "SELECT has_table_privilege($1, $2, $3)", role, f"{ta}.later", privilege
        )
        for privilege in TABLE_PRIVILEGES
    }
    sequence = {
        privilege: await admin.fetchval(
            "SELECT has_sequence_privilege($1, $2, $3)", role, f"{ta}.later_id_seq", privilege
        )
        for privilege in ("USAGE", "SELECT", "UPDATE")
    }

    assert {p: p in APPLICATION for p in TABLE_PRIVILEGES} == held
    assert {"USAGE": True, "SELECT": True, "UPDATE": False} == sequence


async def test_a_tenant_made_from_a_spare_schema_has_the_same_owner_and_grants(
    roles_manager: FixtureManager, tenant_ids: Callable[[str], str], admin: asyncpg.Connection
) -> None:
    """A spare claimed by a new tenant is handed to its owner role, table by table, and
    passes the objects and privileges checks like a schema made from the DDL."""
    await roles_manager.warm_up(1)
    ta = tenant_ids("spare")
    await roles_manager.create_tenant(ta)
    owner = roles_manager.store.owner_role(ta)

    owners = await admin.fetch(
        "SELECT pg_get_userbyid(c.relowner) FROM pg_class c "
        "WHERE c.relnamespace = to_regnamespace($1) "
        "UNION SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1",
        ta,
    )
    spares = await admin.fetchval("SELECT count(*) FROM tenancy.schema_pool")
    report = await roles_manager.validate_tenant(ta)

    assert 0 == spares, "the tenant was not made from the spare"
    assert [owner] == [r[0] for r in owners]
    assert ([], []) == (failures(report, "objects"), failures(report, "privileges"))


async def test_a_spare_schema_holding_undeclared_objects_is_discarded_when_claimed(
    roles_manager: FixtureManager, tenant_ids: Callable[[str], str], admin: asyncpg.Connection
) -> None:
    """A trigger planted in a spare never reaches a tenant: the spare is dropped when
    claimed and the tenant's schema is made from the DDL instead."""
    await roles_manager.warm_up(1)
    spare = await admin.fetchval("SELECT schema_name FROM tenancy.schema_pool")
    await admin.execute(
        f"CREATE FUNCTION {spare}.grab() RETURNS trigger LANGUAGE plpgsql "
        f"AS $$ BEGIN RETURN NULL; END $$; "
        f"CREATE TRIGGER grab AFTER INSERT ON {spare}.users "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {spare}.grab()"
    )
    ta = tenant_ids("a")

    await roles_manager.create_tenant(ta)

    assert None is await admin.fetchval("SELECT to_regnamespace($1)", spare)
    async with roles_manager.store.session(ta, readonly=True) as session:
        assert [] == await session.undeclared_objects()


async def test_grants_beyond_what_an_application_needs_fail_the_privileges_check(
    roles_manager: FixtureManager, tenant_ids: Callable[[str], str], admin: asyncpg.Connection
) -> None:
    """Grants beyond the model (a tenant created by an older version, or a DBA's) are
    failures: CREATE, TRIGGER and REFERENCES for the tenant role, USAGE for PUBLIC."""
    ta = tenant_ids("a")
    await roles_manager.create_tenant(ta)
    role = roles_manager.store.tenant_role(ta)
    clean = await roles_manager.validate_tenant(ta)
    await admin.execute(
        f'GRANT CREATE ON SCHEMA {ta} TO "{role}"; '
        f'GRANT TRIGGER, REFERENCES ON {ta}.users, {ta}.tracks TO "{role}"; '
        f"GRANT USAGE ON SCHEMA {ta} TO PUBLIC"
    )

    report = await roles_manager.validate_tenant(ta)

    assert [] == failures(clean, "privileges")
    assert [
        f"tenant role {role} holds CREATE on schema {ta}, which it must not",
        f"tenant role {role} holds REFERENCES, TRIGGER on tables tracks, users, which it must not",
        f"PUBLIC holds USAGE on schema {ta}, which it must not",
    ] == failures(report, "privileges")


async def test_dropping_a_tenant_without_the_roles_setting_drops_its_roles(
    postgres_url: str, tenant_ids: Callable[[str], str], admin: asyncpg.Connection
) -> None:
    """A tenant made with tenant roles and dropped by a manager without the setting (a
    `cleanup` without TENANCY_TENANT_ROLES) leaves no role; making it again works."""
    ta = tenant_ids("a")
    roles = (f"tf_role_{ta}", f"TF_ROLE_{ta}")
    async with FixtureManager(_settings(postgres_url, roles=True)) as with_roles:
        await with_roles.create_tenant(ta)
    created = [await role_exists(admin, r) for r in roles]

    async with FixtureManager(_settings(postgres_url, roles=False)) as without_roles:
        await without_roles.drop_tenant(ta)

    assert [True, True] == created
    assert [False, False] == [await role_exists(admin, r) for r in roles]
    async with FixtureManager(_settings(postgres_url, roles=True)) as with_roles:
        await with_roles.create_tenant(ta)
        assert [True, True] == [await role_exists(admin, r) for r in roles]
        await with_roles.drop_tenant(ta)


async def test_roles_left_behind_by_a_dropped_tenant_are_named_and_removed_by_cleanup(
    roles_manager: FixtureManager, tenant_ids: Callable[[str], str], admin: asyncpg.Connection
) -> None:
    """Roles whose tenant is gone (schema and registry dropped behind the library's back):
    creating the tenant again says `cleanup` removes them; dropping the tenant does."""
    ta = tenant_ids("a")
    await roles_manager.create_tenant(ta)
    await admin.execute(
        f"DROP SCHEMA {ta} CASCADE; DELETE FROM tenancy.tenants WHERE tenant_id = '{ta}'"
    )

    with pytest.raises(StorageError) as refused:
        await roles_manager.create_tenant(ta)
    left_behind = await roles_manager.store.storage_exists(ta)
    await roles_manager.drop_tenant(ta)

    assert f"`cleanup {ta}` removes it" in str(refused.value)
    assert left_behind
    assert not await roles_manager.store.storage_exists(ta)
    await roles_manager.create_tenant(ta)
    assert [] == (await roles_manager.validate_tenant(ta)).problems


async def test_a_role_of_the_same_name_made_for_another_database_is_left_alone(
    postgres_url: str, tenant_ids: Callable[[str], str], admin: asyncpg.Connection
) -> None:
    """Dropping a tenant removes only roles whose comment names this database: a role of
    the same name that another database's tenant uses stays."""
    ta = tenant_ids("a")
    other = f"tf_role_{ta}"
    note = f"tenancy-fixtures tenant role of tenant '{ta}' in database 'elsewhere'"
    await admin.execute(f'CREATE ROLE "{other}" NOLOGIN')
    await admin.execute(f"COMMENT ON ROLE \"{other}\" IS '{note.replace(chr(39), chr(39) * 2)}'")
    async with FixtureManager(_settings(postgres_url, roles=False)) as manager:
        await manager.create_tenant(ta)
        await manager.drop_tenant(ta)
        gone = not await manager.store.storage_exists(ta)

    assert gone
    assert await role_exists(admin, other)


async def test_a_loader_that_is_not_a_superuser_runs_the_whole_lifecycle_with_roles(
    postgres_url: str, tenant_ids: Callable[[str], str], admin: asyncpg.Connection, demo_set: Path
) -> None:
    """A login with CREATEROLE that owns its database (no superuser) creates tenants with
    roles, from the DDL and from a spare, loads them twice, validates and drops them."""
    login = f"tf_loader_{uuid.uuid4().hex[:8]}"
    database = f"tf_lp_{uuid.uuid4().hex[:8]}"
    await admin.execute(f"CREATE ROLE {login} LOGIN CREATEROLE")
    await admin.execute(f"CREATE DATABASE {database} OWNER {login}")
    tenants = [tenant_ids("fresh"), tenant_ids("spare")]
    url = make_url(postgres_url).set(username=login, database=database)
    settings = Settings(
        database_url=url.render_as_string(hide_password=False), actor="pytest", tenant_roles=True
    )
    try:
        async with FixtureManager(settings) as manager:
            problems = {}
            for tenant in tenants:
                await manager.create_tenant(tenant)
                await manager.load_fixtures(tenant, source=demo_set)
                await manager.load_fixtures(tenant, source=demo_set, force=True)
                problems[tenant] = (await manager.validate_tenant(tenant)).problems
                if tenant == tenants[0]:
                    await manager.warm_up(1)
            for tenant in tenants:
                await manager.drop_tenant(tenant)
    finally:
        await admin.execute(f"DROP DATABASE {database} WITH (FORCE)")
        left = [
            r[0]
            for t in tenants
            for r in await admin.fetch(
                "SELECT rolname FROM pg_roles WHERE rolname IN ($1, $2)",
                f"tf_role_{t}",
                f"TF_ROLE_{t}",
            )
        ]
        await admin.execute(f"DROP ROLE {login}")

    assert {tenant: [] for tenant in tenants} == problems
    assert [] == left
