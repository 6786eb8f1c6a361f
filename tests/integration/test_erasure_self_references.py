"""Erasing a person of a user's schema whose subject table refers to itself: another
person's nullable key to them (their manager) only loses that pointer, or follows
their pseudonym."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, select

from tenancy_fixtures import FixtureManager, Settings
from tests.cleanup import drop_every_tenant


def _staff() -> MetaData:
    metadata = MetaData()
    Table(
        "person",
        metadata,
        Column("id", Integer, primary_key=True, info={"subject": "id"}),
        Column("name", String(40), info={"personal": True}),
        Column("manager_id", Integer, ForeignKey("person.id")),
    )
    return metadata


@pytest.fixture
async def staff(settings: Settings, tmp_path: Path) -> AsyncIterator[FixtureManager]:
    async with FixtureManager(settings, metadata=_staff()) as manager:
        await drop_every_tenant(manager)
        rows = [
            '{"id": 1, "name": "Ada"}',
            '{"id": 2, "name": "Bo", "manager_id": 1}',
            '{"id": 3, "name": "Cy", "manager_id": 2}',
        ]
        (tmp_path / "person.jsonl").write_text("\n".join(rows) + "\n")
        await manager.create_tenant("staff")
        await manager.load_fixtures("staff", tmp_path)
        yield manager
        await drop_every_tenant(manager)


async def _people(manager: FixtureManager) -> list[tuple[Any, ...]]:
    async with manager.store.session("staff", readonly=True) as session:
        person = session.metadata.tables["tenant.person"]
        rows = await session.connection.execute(select(person).order_by(person.c.name))
        return [tuple(row) for row in rows]


async def test_erasing_a_manager_clears_the_manager_key_of_the_people_they_managed(
    staff: FixtureManager,
) -> None:
    report = await staff.erase_subject("staff", "2")
    validation = await staff.validate_tenant("staff", recompute_checksums=True)

    assert [(1, "Ada", None), (3, "Cy", None)] == await _people(staff)
    assert {"person": 1} == dict(report.deleted)
    assert validation.ok, validation.problems


async def test_pseudonymising_a_manager_moves_the_manager_key_to_their_pseudonym(
    staff: FixtureManager,
) -> None:
    await staff.erase_subject("staff", "2", mode="pseudonymise")
    validation = await staff.validate_tenant("staff", recompute_checksums=True)

    people = {row[0]: row for row in await _people(staff)}
    (pseudonym,) = set(people) - {1, 3}
    assert "Bo" != people[pseudonym][1]
    assert 1 == people[pseudonym][2]
    assert (3, "Cy", pseudonym) == people[3]
    assert validation.ok, validation.problems
