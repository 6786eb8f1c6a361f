"""The drift check compares a fleet of identical tenants once, and never reuses a
comparison for a schema that changed since."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.validation import drift
from tests.integration.reports import failures


async def _catalogue(manager: FixtureManager, tenant_id: str) -> str | None:
    async with manager.store.session(tenant_id, readonly=True) as session:
        return await session.catalog_text()


async def _plant(manager: FixtureManager, tenant_id: str, statement: str) -> None:
    async with manager.store.session(tenant_id) as session:
        await session.connection.execute(text(statement.format(s=session.schema_name)))


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The schema of each Alembic comparison made from here on (earlier ones forgotten)."""
    made: list[str | None] = []
    compare = drift._compare

    def counted(conn: Any, metadata: Any, schema: str | None) -> list[str]:
        made.append(schema)
        return compare(conn, metadata, schema)

    monkeypatch.setattr(drift, "_COMPARED", type(drift._COMPARED)())
    monkeypatch.setattr(drift, "_compare", counted)
    return made


async def test_tenants_of_one_definition_have_one_catalogue_text_without_their_names(
    manager: FixtureManager,
) -> None:
    await manager.create_tenant("fleet_one", tier="premium")
    await manager.create_tenant("fleet_two", tier="free")

    one, two = await _catalogue(manager, "fleet_one"), await _catalogue(manager, "fleet_two")
    await _plant(manager, "fleet_two", "ALTER TABLE {s}.tracks ADD COLUMN mood VARCHAR(20)")

    assert one is not None
    assert "tracks" in one
    assert one == two
    assert "fleet_one" not in one
    assert await _catalogue(manager, "fleet_two") != one


async def test_a_fleet_of_identical_tenants_is_compared_with_the_definition_once(
    manager: FixtureManager, comparisons: list[str | None]
) -> None:
    for tenant_id in ("fleet_one", "fleet_two", "fleet_three"):
        await manager.create_tenant(tenant_id, tier="premium")

    reports = [await manager.validate_tenant(t) for t in ("fleet_one", "fleet_two", "fleet_three")]

    assert [r.ok for r in reports] == [True, True, True], [r.problems for r in reports]
    assert 1 == len(comparisons)


@pytest.mark.parametrize(
    ("planted", "found"),
    [
        ("DROP INDEX {s}.ix_listening_events_played_at", "index ix_listening_events_played_at"),
        ("ALTER TABLE {s}.tracks ADD COLUMN mood VARCHAR(20)", "column tracks.mood is not in"),
    ],
    ids=["dropped index", "added column"],
)
async def test_a_schema_changed_after_a_clean_check_is_compared_afresh(
    manager: FixtureManager, comparisons: list[str | None], planted: str, found: str
) -> None:
    """A clean tenant, then the same tenant drifted: the second check compares again and
    finds the drift; a tenant still clean keeps the first comparison's verdict."""
    await manager.create_tenant("drifting", tier="premium")
    await manager.create_tenant("steady", tier="premium")
    assert (await manager.validate_tenant("drifting")).ok

    await _plant(manager, "drifting", planted)
    drifted = await manager.validate_tenant("drifting")
    steady = await manager.validate_tenant("steady")

    assert not drifted.ok
    assert any(found in p for p in drifted.problems), drifted.problems
    assert steady.ok, steady.problems
    assert 2 == len(comparisons)


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_comment_added_after_a_clean_check_is_compared_afresh(
    manager: FixtureManager, comparisons: list[str | None]
) -> None:
    """PostgreSQL keeps comments, which CREATE TABLE does not show and Alembic compares."""
    await manager.create_tenant("commented", tier="premium")
    assert (await manager.validate_tenant("commented")).ok

    await _plant(manager, "commented", "COMMENT ON COLUMN {s}.tracks.name IS 'display name'")
    commented = await manager.validate_tenant("commented")

    assert not commented.ok
    assert any("comment" in p for p in commented.problems), commented.problems
    assert 2 == len(comparisons)


@pytest.mark.postgres
@pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")
async def test_a_not_valid_check_constraint_is_compared_without_a_reflection_warning(
    pg_manager: FixtureManager, comparisons: list[str | None]
) -> None:
    """PostgreSQL reflects a NOT VALID CHECK constraint with dialect options, which
    SQLAlchemy passed to ``CheckConstraint`` as a ``dialect_options=`` argument: a
    warning (an error here). The drift check compares the tenant and finds no drift."""
    await pg_manager.create_tenant("drift_not_valid")
    await _plant(
        pg_manager, "drift_not_valid", "ALTER TABLE {s}.tracks DROP CONSTRAINT ck_tracks_popularity"
    )
    await _plant(
        pg_manager,
        "drift_not_valid",
        "ALTER TABLE {s}.tracks ADD CONSTRAINT ck_tracks_popularity "
        "CHECK (popularity >= 0 AND popularity <= 100) NOT VALID",
    )

    report = await pg_manager.validate_tenant("drift_not_valid")

    assert comparisons
    assert [] == failures(report, "schema")
