"""Limits enforced: a tenant's usage against the hard limits of its tier or config.

:func:`check_limits` compares a usage snapshot with the limits of a stored config: a
value past a limit is a breach (a load refuses with :class:`LimitExceededError` and
rolls back), a value at or past ``warn_ratio`` of it a warning (logged and recorded
in the run's detail and audit record). :func:`check_lowered_limits` refuses a config
change that would set a limit below what the tenant holds already.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tenancy_fixtures.errors import LimitBelowUsageError, LimitExceededError
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.monitoring.usage import (
    LIMIT_COUNTERS,
    STORAGE_LIMIT,
    UsageSnapshot,
    measure_usage,
)
from tenancy_fixtures.store.base import TenantSession

__all__ = ["LimitCheck", "LimitUse", "check_limits", "check_lowered_limits", "config_limits"]

log = get_logger("tenancy_fixtures.monitoring.limits")


@dataclass(frozen=True)
class LimitUse:
    """One limit of one tenant: what it counts, the value, the maximum."""

    limit: str
    value: int
    maximum: int
    table: str | None = None

    @property
    def ratio(self) -> float:
        """The share of the limit in use (``inf`` for a limit of 0 in use)."""
        if self.maximum == 0:
            return float("inf") if self.value else 0.0
        return self.value / self.maximum

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        ratio = self.ratio
        return {
            "limit": self.limit,
            "table": self.table,
            "value": self.value,
            "maximum": self.maximum,
            "ratio": round(ratio, 4) if ratio != float("inf") else None,
        }


@dataclass(frozen=True)
class LimitCheck:
    """Every counted limit of a tenant, those past the warning share, those past the
    limit."""

    tenant_id: str
    uses: tuple[LimitUse, ...]
    warn_ratio: float
    warnings: tuple[LimitUse, ...] = field(default=())
    breaches: tuple[LimitUse, ...] = field(default=())

    def raise_for_breach(self) -> None:
        """Raise :class:`LimitExceededError` for the first limit passed, if any."""
        if self.breaches:
            raise _refusal(LimitExceededError, self.breaches[0], self.tenant_id)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (what a load records in its run detail)."""
        return {
            "warn_ratio": self.warn_ratio,
            "uses": [u.as_dict() for u in self.uses],
            "warnings": [u.limit for u in self.warnings],
            "breaches": [u.limit for u in self.breaches],
        }


def config_limits(config: Mapping[str, Any] | None) -> dict[str, int]:
    """The numeric limits of a stored config (storage in bytes)."""
    limits = (config or {}).get("limits") or {}
    return {str(k): int(v) for k, v in limits.items() if isinstance(v, int)}


def check_limits(
    usage: UsageSnapshot, limits: Mapping[str, int], *, warn_ratio: float
) -> LimitCheck:
    """``usage`` against ``limits``: each limit something counts, checked."""
    uses: list[LimitUse] = []
    for limit, maximum in sorted(limits.items()):
        if limit not in usage.counters:
            continue  # a rate or a limit no domain counts: not a load's business
        table = LIMIT_COUNTERS[limit].table if limit in LIMIT_COUNTERS else None
        uses.append(LimitUse(limit, usage.counters[limit], maximum, table))
    return LimitCheck(
        usage.tenant_id,
        tuple(uses),
        warn_ratio,
        warnings=tuple(u for u in uses if warn_ratio <= u.ratio <= 1.0 and u.value),
        breaches=tuple(u for u in uses if u.value > u.maximum),
    )


async def check_lowered_limits(
    session: TenantSession, lowered: Mapping[str, int], enforce: bool
) -> None:
    """Refuse a config change that lowers the limits ``lowered`` (name: new value) below
    what the tenant holds, measured in the change's transaction: its next load would
    be refused, and every load after it. A :class:`LimitBelowUsageError` for the first
    such limit; without ``enforce`` (``TENANCY_ENFORCE_LIMITS=false``, where loads
    past a limit only warn) the change is kept and the breach logged."""
    usage = await measure_usage(session, source="config")
    for use in check_limits(usage, lowered, warn_ratio=1.0).breaches:
        if enforce:
            raise _refusal(LimitBelowUsageError, use, session.tenant_id)
        log.warning(
            "limit_exceeded",
            tenant_id=session.tenant_id,
            limit=use.limit,
            value=use.value,
            maximum=use.maximum,
            source="config",
        )


def _refusal(kind: type[LimitExceededError], use: LimitUse, tenant_id: str) -> LimitExceededError:
    """The ``kind`` error for ``use``, a limit passed (storage in bytes)."""
    return kind(
        limit=use.limit,
        value=use.value,
        maximum=use.maximum,
        tenant_id=tenant_id,
        table=use.table,
        unit=" bytes" if use.limit == STORAGE_LIMIT else "",
    )
