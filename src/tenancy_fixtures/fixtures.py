"""The one abstraction: a fixture is a named, versioned, idempotent step on one tenant.

A fixture knows what it applies (``apply``), how to check it is still there
(``verify``) and a checksum of what it applies. :func:`apply_fixtures` is the only
place that decides whether to run one: the control plane remembers each applied
fixture with its checksum, so an unchanged fixture is skipped and a changed one is
applied again.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from tenancy_fixtures import control_plane
from tenancy_fixtures.errors import TenantNotFoundError
from tenancy_fixtures.store.base import TenantSession

__all__ = ["BaseFixture", "FixtureResult", "apply_fixtures"]

FixtureKind = Literal["structural", "data"]


@dataclass(frozen=True)
class FixtureResult:
    """What applying one fixture to one tenant did."""

    fixture: str
    status: Literal["applied", "unchanged"]
    checksum: str
    row_counts: Mapping[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: Per table, the content checksum of the rows this application wrote.
    content_checksums: Mapping[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Rows written by this fixture (0 when unchanged)."""
        return sum(self.row_counts.values()) if self.status == "applied" else 0


class BaseFixture(ABC):
    """A named, versioned, idempotent step applied to one tenant inside its transaction."""

    kind: ClassVar[FixtureKind] = "data"
    #: Bump when the fixture's code changes what it writes, so it is applied again.
    version: ClassVar[int] = 1

    @property
    @abstractmethod
    def name(self) -> str:
        """A stable name: the key of this fixture in the control plane."""

    @abstractmethod
    def checksum(self) -> str:
        """A hex digest of everything this fixture applies."""

    @abstractmethod
    async def apply(self, session: TenantSession) -> Mapping[str, int]:
        """Apply to ``session``'s tenant; returns rows written per table."""

    async def verify(self, session: TenantSession) -> list[str]:
        """Problems that show the fixture is no longer in place (empty: all is well)."""
        del session
        return []

    def table_checksums(self) -> Sequence[control_plane.TableChecksum]:
        """What the last ``apply`` wrote to each table, with content checksums.

        Data fixtures say; structural ones write no rows and return nothing.
        """
        return ()


async def apply_fixtures(
    session: TenantSession,
    fixtures: Sequence[BaseFixture],
    *,
    run_id: str,
    force: bool = False,
    new_tenant: bool = False,
) -> list[FixtureResult]:
    """Apply each fixture whose checksum differs from the one recorded; record the new one.

    Runs inside the caller's transaction, so all of them commit together or none.
    ``new_tenant``: the tenant was registered in this transaction, so nothing is
    recorded yet and no other transaction can see it (no lock, no lookup).
    """
    recorded: dict[str, control_plane.AppliedFixture] = {}
    if not new_tenant:
        if not await control_plane.lock_tenant(session.connection, session.tenant_id):
            raise TenantNotFoundError(session.tenant_id)
        recorded = await control_plane.applied_fixtures(session.connection, session.tenant_id)
    results: list[FixtureResult] = []
    for fixture in fixtures:
        checksum = fixture.checksum()
        prior = recorded.get(fixture.name)
        if (
            not force
            and prior is not None
            and prior.checksum == checksum
            and prior.version == fixture.version
        ):
            results.append(FixtureResult(fixture.name, "unchanged", checksum, prior.row_counts))
            continue
        started = time.perf_counter()
        counts = dict(await fixture.apply(session))
        written = fixture.table_checksums()
        await control_plane.record_table_checksums(
            session.connection,
            session.tenant_id,
            fixture=fixture.name,
            run_id=run_id,
            checksums=written,
        )
        await control_plane.record_fixture(
            session.connection,
            session.tenant_id,
            fixture=fixture.name,
            kind=fixture.kind,
            version=fixture.version,
            checksum=checksum,
            row_counts=counts,
            run_id=run_id,
            replace=fixture.name in recorded,
        )
        results.append(
            FixtureResult(
                fixture.name,
                "applied",
                checksum,
                counts,
                time.perf_counter() - started,
                {w.table: w.checksum for w in written},
            )
        )
    return results
