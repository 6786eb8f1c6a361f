"""Who owns a tenant schema on PostgreSQL, who may do what in it, and as whom the
library writes to it: least privilege.

**The model.** With ``tenant_roles`` each tenant gets two ``NOLOGIN`` roles, each with
a comment naming its tenant and database (so they are found by name later, whatever
the settings are then):

* the *owner role* (the tenant role's name with the prefix in capitals:
  ``TF_ROLE_acme``) owns the schema and everything in it. It is not a superuser and
  has no right on any other schema or on the control plane.
* the *tenant role* (``tf_role_acme``), for the application, gets what an application
  needs and nothing more: ``USAGE`` on the schema, ``SELECT, INSERT, UPDATE, DELETE``
  on its tables, ``USAGE, SELECT`` on its sequences — never ``CREATE`` on the schema,
  ``TRIGGER``, ``REFERENCES`` or ``TRUNCATE``, so it cannot plant a table, function,
  trigger, rule, view or policy. Default privileges of the owner role give tables and
  sequences created later (migrations) the same grants.

Without ``tenant_roles`` the connecting user owns the schemas, as before.

**How the library writes.** Every statement on a tenant's tables (the DDL of
provisioning and migrations, ``COPY``, merges, deletes, the key rebuilds of a bulk
load) runs after ``SET LOCAL ROLE <schema owner>`` and is followed by ``SET LOCAL ROLE
NONE`` before the control plane is written, in the same transaction. Why this:

* Triggers, rule actions, policies and column defaults run with the rights of the
  current role. The owner role is ``NOLOGIN``, not a superuser and limited to its own
  schema, so whatever runs during a write gets no more than the tenant's own rights:
  not the loader's login (often a superuser), not other tenants, not the control plane.
* ``LOCAL`` ends with the transaction, committed or not, so a pooled connection never
  keeps the role. The switch happens only when the schema's owner is a ``NOLOGIN``
  role other than the connecting user (a login is never impersonated).
* Not ``SECURITY DEFINER`` functions owned by the owner role: ``COPY`` cannot run in
  one, each statement shape would need its own, and such a function is itself a
  privileged object that an unpinned ``search_path`` lets others hijack.
* Not ``session_replication_role = replica`` to silence triggers: it needs a
  superuser and also silences the foreign-key triggers loads rely on; ``ALTER TABLE
  ... DISABLE TRIGGER USER`` needs an exclusive lock on every table and an undo.

A role switch cannot contain a ``SECURITY DEFINER`` function owned by a superuser (it
runs as its owner, whoever calls it) nor a deferred constraint trigger (it fires at
commit, after the switch back). So, in addition, a session locks the tenant's tables
before its first write (``ROW EXCLUSIVE``: no trigger can be added until it commits)
and refuses to write while code the schema does not declare is attached to them
(:mod:`.foreign_objects`); ``validate-data`` reports such objects as failures.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
from sqlalchemy import ARRAY, String, bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from tenancy_fixtures.errors import PermissionDeniedError
from tenancy_fixtures.store.base import AccessFinding, AccessReview, SchemaObject

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "SchemaOwner",
    "TenantRoles",
    "acting_as",
    "check_can_provision",
    "drop_roles",
    "literal",
    "our_roles",
    "permission_error",
    "review_access",
    "role_setting",
    "run_script",
    "schema_owner",
    "set_up_roles",
    "tenant_roles",
]

_PREPARER = postgresql.dialect().identifier_preparer  # type: ignore[no-untyped-call]
#: What an application needs on its tenant's objects; anything else is withheld.
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT")
_WITHHELD_TABLE = ("TRUNCATE", "REFERENCES", "TRIGGER")
_WITHHELD_SEQUENCE = ("UPDATE",)


def quote(name: str) -> str:
    """``name`` as a PostgreSQL identifier."""
    return str(_PREPARER.quote_identifier(name))


def literal(value: str) -> str:
    """``value`` as a PostgreSQL string literal, read the same whatever the server's
    ``standard_conforming_strings``: one holding a backslash is an escape string
    (``E'...'``) with its backslashes doubled."""
    quoted = value.replace("'", "''")
    if "\\" in value:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"


@dataclass(frozen=True)
class TenantRoles:
    """The two roles of one tenant: the application's and the schema's owner."""

    tenant: str
    owner: str


def tenant_roles(prefix: str, tenant_id: str) -> TenantRoles:
    """The role names of ``tenant_id``. The owner's has the prefix in capitals, which no
    tenant role of any prefix can have (prefixes and ids are lowercase), in as few
    bytes as the tenant role's."""
    return TenantRoles(f"{prefix}{tenant_id}", f"{prefix.upper()}{tenant_id}")


def _comment(kind: str, tenant_id: str, database: str) -> str:
    return f"tenancy-fixtures {kind} role of tenant '{tenant_id}' in database '{database}'"


async def run_script(conn: AsyncConnection, statements: Sequence[str]) -> None:
    """Run ``statements`` in one round trip (the simple query protocol), in the
    connection's transaction."""
    raw = await conn.get_raw_connection()
    await raw.driver_connection.execute(";\n".join(statements))  # type: ignore[union-attr]


async def set_up_roles(
    conn: AsyncConnection,
    *,
    schema: str,
    roles: TenantRoles,
    tenant_id: str,
    database: str,
    tables: Sequence[str],
    types: Sequence[str] = (),
) -> None:
    """Create the tenant's roles, hand ``schema`` and its ``tables`` and ``types`` (those
    that exist already: a spare schema's) to the owner role, and grant the tenant role
    what an application needs, now and for tables created later.

    The connecting user becomes a member of the owner role, to switch to it for writes.
    Raises ``asyncpg.DuplicateObjectError`` if a role exists already.
    """
    owner, tenant = quote(roles.owner), quote(roles.tenant)
    qschema = quote(schema)
    await run_script(
        conn,
        [
            f"CREATE ROLE {owner} NOLOGIN",
            f"COMMENT ON ROLE {owner} IS {literal(_comment('owner', tenant_id, database))}",
            f"CREATE ROLE {tenant} NOLOGIN",
            f"COMMENT ON ROLE {tenant} IS {literal(_comment('tenant', tenant_id, database))}",
            f"GRANT {owner} TO CURRENT_USER",
            f"ALTER SCHEMA {qschema} OWNER TO {owner}",
            *(f"ALTER TABLE {qschema}.{quote(t)} OWNER TO {owner}" for t in tables),
            *(f"ALTER TYPE {qschema}.{quote(t)} OWNER TO {owner}" for t in types),
            # As the owner from here on: the grants and default privileges are its own.
            f"SET LOCAL ROLE {owner}",
            f"REVOKE ALL ON SCHEMA {qschema} FROM PUBLIC",
            f"GRANT USAGE ON SCHEMA {qschema} TO {tenant}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {qschema} "
            f"GRANT {', '.join(TABLE_PRIVILEGES)} ON TABLES TO {tenant}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {qschema} "
            f"GRANT {', '.join(SEQUENCE_PRIVILEGES)} ON SEQUENCES TO {tenant}",
            f"GRANT {', '.join(TABLE_PRIVILEGES)} ON ALL TABLES IN SCHEMA {qschema} TO {tenant}",
            f"GRANT {', '.join(SEQUENCE_PRIVILEGES)} ON ALL SEQUENCES IN SCHEMA {qschema} "
            f"TO {tenant}",
            "SET LOCAL ROLE NONE",
        ],
    )


async def check_can_provision(conn: AsyncConnection, *, roles: bool, tenant_id: str) -> None:
    """Raise :class:`PermissionDeniedError` naming what creating a tenant takes, if the
    connecting user lacks it: ``CREATE`` on the database, and with ``roles``
    ``CREATEROLE``. Checked first, so the error names that rather than the first
    statement that happens to be refused."""
    row = (
        await conn.execute(
            text(
                "SELECT current_user, current_database(), "
                "has_database_privilege(current_database(), 'CREATE'), "
                "rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
            )
        )
    ).one()
    user, database, can_create, can_create_roles = row
    missing: list[tuple[str, str, str]] = []
    if not can_create:
        missing.append(("CREATE", f"database '{database}'", f"CREATE on database '{database}'"))
    if roles and not can_create_roles:
        missing.append(("CREATEROLE", f"role '{user}'", "the CREATEROLE attribute (tenant roles)"))
    if missing:
        raise PermissionDeniedError(
            f"permission denied: user '{user}' may not create tenants: that takes "
            + " and ".join(phrase for _, _, phrase in missing),
            privilege=missing[0][0],
            on=missing[0][1],
            user=str(user),
            tenant_id=tenant_id,
        )


@dataclass(frozen=True)
class SchemaOwner:
    """A tenant schema's owner, and whether the library writes as it."""

    name: str
    #: A NOLOGIN role other than the connecting user: writes switch to it.
    write_as: str | None


async def schema_owner(conn: AsyncConnection, schema: str) -> SchemaOwner | None:
    """Who owns ``schema``; ``None`` if there is no such schema."""
    found = await conn.execute(
        text(
            "SELECT r.rolname, NOT r.rolcanlogin AND r.rolname <> current_user "
            "FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = :s"
        ),
        {"s": schema},
    )
    row = found.first()
    if row is None:
        return None
    return SchemaOwner(str(row[0]), str(row[0]) if row[1] else None)


def role_setting(role: str) -> str:
    """The statement :func:`acting_as` switches to ``role`` with."""
    return f"SET LOCAL ROLE {quote(role)}"


@asynccontextmanager
async def acting_as(
    conn: AsyncConnection, role: str | None, *, tenant_id: str | None = None
) -> AsyncIterator[None]:
    """Run the block's statements as ``role`` (nothing changes when it is ``None``).

    The role is set back only if the block succeeds: a failed statement aborts the
    transaction, and its rollback ends the ``LOCAL`` setting. A privilege the role
    lacks is a :class:`PermissionDeniedError` naming the role.
    """
    if role is None:
        yield
        return
    await conn.execute(text(role_setting(role)))
    try:
        yield
    except (DBAPIError, asyncpg.PostgresError) as exc:
        denied = permission_error(exc, user=None, role=role, tenant_id=tenant_id)
        if denied is None:
            raise
        raise denied from exc
    await conn.execute(text("SET LOCAL ROLE NONE"))


async def our_roles(
    conn: AsyncConnection, roles: TenantRoles, *, tenant_id: str, database: str, schema: str
) -> list[str]:
    """Which of the tenant's role names exist as roles of this tenant in this database.

    A role is this tenant's if its comment says so, or, made by a version that did not
    comment its roles, if it owns or holds a privilege on the tenant's schema. A role
    of the same name made for another database sharing the cluster is left alone.
    """
    found = await conn.execute(
        text(
            "SELECT r.rolname, shobj_description(r.oid, 'pg_authid'), EXISTS ("
            "  SELECT 1 FROM pg_namespace n WHERE n.nspname = :schema AND ("
            "    n.nspowner = r.oid"
            "    OR r.oid IN (SELECT (aclexplode(n.nspacl)).grantee)))"
            " FROM pg_roles r WHERE r.rolname IN (:tenant, :owner) ORDER BY 1"
        ),
        {"schema": schema, "tenant": roles.tenant, "owner": roles.owner},
    )
    expected = {
        roles.tenant: _comment("tenant", tenant_id, database),
        roles.owner: _comment("owner", tenant_id, database),
    }
    return [
        str(name)
        for name, note, holds in found.all()
        if note == expected[name] or (note is None and holds)
    ]


async def drop_roles(conn: AsyncConnection, names: Sequence[str]) -> None:
    """Drop ``names`` and whatever they still own or hold in this database.

    ``DROP OWNED BY`` takes membership in the role, which a connecting user that is not
    a superuser has only in the owner role: it takes it (``CREATEROLE``) first.
    """
    statements: list[str] = []
    for name in names:
        role = quote(name)
        statements += [
            f"GRANT {role} TO CURRENT_USER",
            f"DROP OWNED BY {role}",
            f"DROP ROLE {role}",
        ]
    if statements:
        await run_script(conn, statements)


_DENIED_FOR = re.compile(r"permission denied for (?P<kind>[a-z ]+?) (?P<name>\S+)$")
_OWNER_OF = re.compile(r"must be owner of (?P<kind>[a-z ]+?) (?P<name>\S+)$")
_SET_ROLE = re.compile(r'permission denied to set role "?(?P<name>[^"]+)"?')
_VERBS = re.compile(
    r"\b(INSERT|UPDATE|DELETE|TRUNCATE|COPY|LOCK|SELECT|CREATE|ALTER|DROP|GRANT)\b", re.I
)
#: A row-locking clause: ``SELECT ... FOR UPDATE`` (or ``SHARE``) needs UPDATE too.
_LOCKING = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b", re.I)


def _privilege_for(kind: str, statement: str | None) -> str | None:
    verb = _VERBS.search(statement or "")
    word = verb[1].upper() if verb else None
    if kind == "database":
        return "CREATE" if word == "CREATE" else "CONNECT"
    if kind == "schema":
        return "CREATE" if word == "CREATE" else "USAGE"
    if word in ("COPY", "INSERT"):
        return "INSERT"
    if word in ("ALTER", "DROP", "CREATE", "GRANT"):
        return "ownership"
    if word == "LOCK":
        return "INSERT, UPDATE or DELETE"
    if word == "SELECT" and _LOCKING.search(statement or ""):
        return "UPDATE"  # the user may well hold SELECT: the lock is what was refused
    return word


def is_insufficient_privilege(exc: BaseException) -> bool:
    """Whether ``exc`` (SQLAlchemy's, asyncpg's or its cause) is SQLSTATE 42501."""
    error = getattr(exc, "orig", None) or exc
    cause = getattr(error, "__cause__", None)
    return "42501" in {getattr(e, "sqlstate", None) for e in (exc, error, cause)}


def permission_error(
    exc: BaseException,
    *,
    user: str | None,
    tenant_id: str | None,
    role: str | None = None,
    statement: str | None = None,
) -> PermissionDeniedError | None:
    """The typed error for a refused privilege (SQLSTATE 42501), saying who lacks what
    on which object; ``None`` for any other failure.

    ``role``: the statement ran as this role (the schema owner), not as ``user``;
    ``statement``: what ran, where the error does not carry it (``COPY``).
    """
    if not is_insufficient_privilege(exc):
        return None
    error = getattr(exc, "orig", None) or exc
    message = str(error).strip().splitlines()[0] if str(error).strip() else "permission denied"
    message = message.split(": ", 1)[-1] if message.startswith("<") else message
    statement = statement or getattr(exc, "statement", None)
    if role is not None:
        who = f"role '{role}' (the schema owner the library writes as)"
    else:
        who = f"user '{user}'" if user else "the database user"
    privilege: str | None = None
    on: str | None = None
    if (match := _SET_ROLE.search(message)) is not None:
        privilege, on = "membership", f"role '{match['name']}'"
        hint = (
            f"{who} must be a member of role '{match['name']}', the schema owner the "
            f'library writes as (GRANT "{match["name"]}" TO ...)'
        )
    elif (match := _DENIED_FOR.search(message)) is not None:
        on = f"{match['kind']} {match['name']}"
        privilege = _privilege_for(match["kind"], statement)
        hint = f"{who} lacks {privilege or 'a privilege'} on {on}"
    elif (match := _OWNER_OF.search(message)) is not None:
        privilege, on = "ownership", f"{match['kind']} {match['name']}"
        hint = f"{who} must own {on} (or be a member of its owner)"
    else:
        hint = f"{who} lacks a privilege"
    return PermissionDeniedError(
        f"permission denied: {hint} ({message})",
        privilege=privilege,
        on=on,
        user=role or user,
        tenant_id=tenant_id,
    )


#: Every privilege of the reviewed roles and of PUBLIC on the tenant's schema and its
#: declared tables and their sequences (anything else is an undeclared object, reported
#: as such); the owner role's on other schemas; the roles' attributes.
_PRIVILEGES = text(
    """
    WITH holder(kind, name) AS (
        SELECT 'tenant role', rolname FROM pg_roles WHERE rolname = :tenant
        UNION ALL SELECT 'owner role', rolname FROM pg_roles WHERE rolname = :owner
        UNION ALL SELECT 'PUBLIC', 'public'
    ), ns AS (SELECT oid FROM pg_namespace WHERE nspname = :schema)
    SELECT h.kind, h.name, p.priv, 'schema', :schema,
           has_schema_privilege(h.name, ns.oid, p.priv)
    FROM holder h, ns, unnest(ARRAY['USAGE', 'CREATE']) p(priv)
    WHERE h.kind <> 'owner role'
    UNION ALL
    SELECT h.kind, h.name, p.priv, 'table', c.relname,
           has_table_privilege(h.name, c.oid, p.priv)
    FROM holder h, ns, pg_class c,
         unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES',
                      'TRIGGER']) p(priv)
    WHERE h.kind <> 'owner role' AND c.relnamespace = ns.oid AND c.relkind IN ('r', 'p')
      AND c.relname = ANY(:declared)
    UNION ALL
    SELECT h.kind, h.name, p.priv, 'sequence', c.relname,
           has_sequence_privilege(h.name, c.oid, p.priv)
    FROM holder h, ns, pg_class c, unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) p(priv)
    WHERE h.kind <> 'owner role' AND c.relnamespace = ns.oid AND c.relkind = 'S'
      AND EXISTS (
          SELECT 1 FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
            AND t.relnamespace = ns.oid AND t.relname = ANY(:declared))
    UNION ALL
    SELECT h.kind, h.name, p.priv, 'schema', n.nspname,
           has_schema_privilege(h.name, n.oid, p.priv)
    FROM holder h, pg_namespace n, unnest(ARRAY['USAGE', 'CREATE']) p(priv)
    WHERE h.kind = 'owner role' AND n.nspname <> :schema
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'public')
      AND n.nspname NOT LIKE 'pg\\_%'
    UNION ALL
    SELECT h.kind, h.name, a.attr, 'role', h.name, a.held
    FROM holder h JOIN pg_roles r ON r.rolname = h.name,
         LATERAL (VALUES ('SUPERUSER', r.rolsuper), ('CREATEROLE', r.rolcreaterole),
                         ('LOGIN', r.rolcanlogin AND h.kind = 'owner role')) a(attr, held)
    ORDER BY 1, 2, 4, 5, 3
    """
).bindparams(bindparam("declared", type_=ARRAY(String)))
_OWNERS = text(
    """
    SELECT 'table', c.relname, pg_get_userbyid(c.relowner), pg_get_userbyid(n.nspowner)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND c.relname = ANY(:declared)
      AND c.relowner <> n.nspowner
    ORDER BY 2
    """
).bindparams(bindparam("declared", type_=ARRAY(String)))


def _expected(holder_kind: str, privilege: str, kind: str) -> bool:
    """Whether the model grants ``privilege`` on a ``kind`` to a ``holder_kind``."""
    if holder_kind != "tenant role":
        return False  # PUBLIC: nothing; the owner role: nothing outside its schema
    if kind == "schema":
        return privilege == "USAGE"
    if kind == "table":
        return privilege in TABLE_PRIVILEGES
    if kind == "sequence":
        return privilege in SEQUENCE_PRIVILEGES
    return False  # role attributes


async def review_access(
    conn: AsyncConnection, schema: str, roles: TenantRoles, declared: Collection[str]
) -> AccessReview:
    """Compare ownership and privileges on ``schema`` and its ``declared`` tables with
    the model above.

    The tenant's roles are reviewed when they exist, whatever ``tenant_roles`` says now.
    """
    owners = (await conn.execute(_OWNERS, {"schema": schema, "declared": sorted(declared)})).all()
    owner_row = await schema_owner(conn, schema)
    review = AccessReview(schema_owner=owner_row.name if owner_row else "")
    review.misowned = [SchemaObject(kind, name, detail=owner) for kind, name, owner, _ in owners]
    rows = (
        await conn.execute(
            _PRIVILEGES,
            {
                "schema": schema,
                "tenant": roles.tenant,
                "owner": roles.owner,
                "declared": sorted(declared),
            },
        )
    ).all()
    holders: dict[str, str] = {}
    for holder_kind, holder, privilege, kind, name, held in rows:
        holders.setdefault(holder_kind, holder)
        if bool(held) != _expected(holder_kind, privilege, kind):
            review.findings.append(
                AccessFinding(
                    holder_kind,
                    "PUBLIC" if holder_kind == "PUBLIC" else holder,
                    privilege,
                    kind,
                    name,
                    bool(held),
                )
            )
    if roles.owner in holders.values() and review.schema_owner != roles.owner:
        review.misowned.insert(0, SchemaObject("schema", schema, detail=review.schema_owner))
    if review.schema_owner == roles.tenant:
        review.findings.insert(
            0, AccessFinding("tenant role", roles.tenant, "ownership", "schema", schema, True)
        )
    order = ("tenant role", "owner role", "PUBLIC")
    review.findings.sort(key=lambda f: order.index(f.holder_kind))
    review.reviewed = [
        kind if kind == "PUBLIC" else f"{kind} {holders[kind]}" for kind in order if kind in holders
    ]
    return review
