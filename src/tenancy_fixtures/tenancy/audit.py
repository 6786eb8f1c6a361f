"""The audit log's one way in: every operation runs inside :func:`audited`.

Create, config change, load, recorded validation, drop and warm-up each run in an
``audited(...)`` scope. On success the operation records its outcome through the scope
(:meth:`Audit.record`), on its own connection, so the record commits with what it
describes. On failure the scope records the refusal (a :class:`TenancyFixturesError`)
or failure (anything else) in a transaction of its own, with the error's type and
message only, logs it, and re-raises. Either way it logs the outcome (``operation_done``,
``operation_refused``...) and reports it and the duration to an optional observer (the
manager's metrics).

With ``TENANCY_AUDIT_LOGGING=false`` nothing is written: :meth:`Audit.record` and
:func:`audit_failure` return at once (the settings refuse that while a compliance
feature needs the log). Operations still run, log and report to the observer as before.
Two exceptions: an erasure is refused (its receipt is its proof), and a drop still
reduces the tenant's earlier records to the minimal trail, appending the ``audit.erase``
tombstone without which the chain would report them (a tenant never audited has none).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tenancy_fixtures.errors import TenancyFixturesError
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TenantStore

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["Audit", "Observer", "audit_failure", "audited", "error_context"]

log = get_logger("tenancy_fixtures.tenancy.audit")

#: Told each operation's outcome (``ok``, ``unchanged``..., ``error`` or ``cancelled``)
#: and seconds.
Observer = Callable[[str, float], None]
#: Longest wait for the audit record of a cancelled operation.
CANCELLED_AUDIT_SECONDS = 5.0


@dataclass
class Audit:
    """One audited operation in progress: its run id, start, and recorded outcome."""

    store: TenantStore
    actor: str
    action: str
    tenant_id: str | None
    run_id: str
    started_at: datetime = field(default_factory=control_plane.utcnow)
    #: The outcome last recorded (``ok`` until the operation says otherwise).
    outcome: str = "ok"
    _started: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        """Seconds since the operation started."""
        return time.perf_counter() - self._started

    async def record(
        self,
        conn: AsyncConnection | None = None,
        *,
        outcome: str = "ok",
        detail: Mapping[str, Any],
    ) -> None:
        """Record the operation's success on ``conn`` (inside the operation's own
        transaction) or, without one, in a transaction of its own."""
        self.outcome = outcome
        if not self.store.settings.audit_logging:
            return
        if conn is None:
            async with self.store.control() as own:
                await self.record(own, outcome=outcome, detail=detail)
            return
        await control_plane.append_audit(
            conn,
            actor=self.actor,
            action=self.action,
            tenant_id=self.tenant_id,
            outcome=outcome,
            run_id=self.run_id,
            detail=dict(detail),
        )


@asynccontextmanager
async def audited(
    store: TenantStore,
    *,
    actor: str,
    action: str,
    tenant_id: str | None,
    run_id: str | None = None,
    observe: Observer | None = None,
) -> AsyncIterator[Audit]:
    """Run the block as the audited operation ``action`` on ``tenant_id`` by ``actor``.

    A typed error escaping the block is given ``tenant_id`` when it names no tenant,
    then audited as refused; any other exception is audited as failed; a cancellation
    (a timeout, a service stopping its jobs) as cancelled. All re-raise.
    """
    audit = Audit(store, actor, action, tenant_id, run_id or control_plane.new_run_id())
    try:
        yield audit
    except asyncio.CancelledError as cancelled:
        try:
            # Bounded: whatever cancels (a service stopping) waits for this write.
            async with asyncio.timeout(CANCELLED_AUDIT_SECONDS):
                await audit_failure(
                    store,
                    actor=actor,
                    action=action,
                    tenant_id=tenant_id,
                    error=cancelled,
                    run_id=audit.run_id,
                    # A cancel can land after the operation committed its own record.
                    unless_recorded=True,
                )
        except TimeoutError:
            log.warning("audit_write_failed", action=action, tenant_id=tenant_id, reason="timeout")
        log.info("operation_cancelled", action=action, tenant_id=tenant_id, run_id=audit.run_id)
        if observe is not None:
            observe("cancelled", audit.seconds)
        raise
    except Exception as exc:
        if isinstance(exc, TenancyFixturesError) and exc.tenant_id is None:
            exc.tenant_id = tenant_id
        await audit_failure(
            store, actor=actor, action=action, tenant_id=tenant_id, error=exc, run_id=audit.run_id
        )
        bound = log.bind(action=action, tenant_id=tenant_id, run_id=audit.run_id)
        if isinstance(exc, TenancyFixturesError):
            bound.info("operation_refused", error=str(exc))
        else:
            bound.error("operation_failed", exc_info=exc)
        if observe is not None:
            observe("error", audit.seconds)
        raise
    _done(audit, observe)


def _done(audit: Audit, observe: Observer | None) -> None:
    """Log a succeeded operation (whatever TENANCY_AUDIT_LOGGING says: with the audit log
    off, this is its trace) and report it to ``observe``."""
    log.info(
        "operation_done",
        action=audit.action,
        tenant_id=audit.tenant_id,
        run_id=audit.run_id,
        outcome=audit.outcome,
        seconds=round(audit.seconds, 3),
    )
    if observe is not None:
        observe(audit.outcome, audit.seconds)


async def audit_failure(
    store: TenantStore,
    *,
    actor: str,
    action: str,
    tenant_id: str | None,
    error: BaseException,
    run_id: str | None = None,
    unless_recorded: bool = False,
) -> None:
    """Record a refused, failed or cancelled operation in its own transaction; with
    ``unless_recorded``, not if run ``run_id`` has a record already."""
    if not store.settings.audit_logging:
        return
    outcome = "refused" if isinstance(error, TenancyFixturesError) else "failed"
    if isinstance(error, asyncio.CancelledError):
        outcome = "cancelled"
    try:
        async with store.control() as conn:
            if (
                unless_recorded
                and run_id is not None
                and await control_plane.run_audited(conn, run_id=run_id, tenant_id=tenant_id)
            ):
                return
            await control_plane.append_audit(
                conn,
                actor=actor,
                action=action,
                tenant_id=tenant_id,
                outcome=outcome,
                run_id=run_id,
                detail={
                    "error": type(error).__name__,
                    "message": str(error)[:2000],
                    **error_context(error),
                },
            )
    except TenancyFixturesError as exc:  # typed: it says what went wrong in one line
        log.warning("audit_write_failed", action=action, tenant_id=tenant_id, reason=str(exc))
    except Exception:  # the original error matters more than a failed audit write
        log.exception("audit_write_failed", action=action, tenant_id=tenant_id)


#: Typed context a refusal's audit record keeps, so refusals can be grouped (see
#: monitoring.errors): the rule broken, the table, a limit and its numbers.
_CONTEXT = ("rule", "table", "limit", "value", "maximum")


def error_context(error: BaseException) -> dict[str, Any]:
    """What ``error`` says of where and why, as plain values (no record content);
    ``rules``: how many records broke each rule, for a refusal listing many."""
    found: dict[str, Any] = {}
    for name in _CONTEXT:
        value = getattr(error, name, None)
        if isinstance(value, str | int) and not isinstance(value, bool):
            found[name] = value
    rules = getattr(error, "rules", None)
    if isinstance(rules, dict) and rules:
        found["rules"] = {str(k): int(v) for k, v in rules.items()}
    listed: dict[tuple[str, str], int] = {}
    for each in getattr(error, "errors", None) or ():
        key = (str(getattr(each, "rule", None) or ""), str(getattr(each, "table", None) or ""))
        listed[key] = listed.get(key, 0) + 1
    if listed:  # the listed problems (capped), by rule and table
        found["problems"] = [
            {"rule": rule or None, "table": table or None, "records": n}
            for (rule, table), n in sorted(listed.items())
        ]
    return found
