"""The audit log is append-only for the application on PostgreSQL: a trigger refuses
``UPDATE``, ``DELETE`` and ``TRUNCATE`` of ``tenancy.audit_log``.

One update is let through, the one a tenant drop makes (see
:func:`~tenancy_fixtures.store.control_plane.erase_audit_detail`): the detail, and only
the detail, replaced by a minimal trail (``{"erased": true}``, with the error's class
name). Every chained field stays as it was, so the hash still links, and the drop records
the erasure in the chain with a tombstone; ``audit verify`` refuses an erased detail that
no tombstone covers. A superuser can still disable the trigger: the chain is what tells.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy_fixtures.store.control_plane import CONTROL_SCHEMA

__all__ = ["GUARD_TRIGGER", "install_audit_guard"]

GUARD_TRIGGER = "audit_log_append_only"

_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {CONTROL_SCHEMA}.audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $guard$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (to_jsonb(NEW) - 'detail') = (to_jsonb(OLD) - 'detail')
       AND jsonb_typeof(NEW.detail::jsonb) = 'object'
       AND (NEW.detail::jsonb - 'error') = '{{"erased": true}}'::jsonb
       AND coalesce(jsonb_typeof(NEW.detail::jsonb -> 'error'), 'string') = 'string'
    THEN
        RETURN NEW;  -- a tenant drop erasing a detail; the chain records it
    END IF;
    RAISE EXCEPTION '{CONTROL_SCHEMA}.audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$guard$
"""

_TRIGGERS = (
    f"CREATE OR REPLACE TRIGGER {GUARD_TRIGGER} BEFORE UPDATE OR DELETE "
    f"ON {CONTROL_SCHEMA}.audit_log FOR EACH ROW "
    f"EXECUTE FUNCTION {CONTROL_SCHEMA}.audit_log_append_only()",
    f"CREATE OR REPLACE TRIGGER {GUARD_TRIGGER}_truncate BEFORE TRUNCATE "
    f"ON {CONTROL_SCHEMA}.audit_log FOR EACH STATEMENT "
    f"EXECUTE FUNCTION {CONTROL_SCHEMA}.audit_log_append_only()",
)


async def install_audit_guard(conn: AsyncConnection) -> None:
    """Create (or replace) the trigger; call it where control-plane set-up is serialised."""
    await conn.execute(text(_FUNCTION))
    for statement in _TRIGGERS:
        await conn.execute(text(statement))
