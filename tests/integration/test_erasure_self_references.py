"""Erasing a person of a user's schema whose subject table refers to itself: another
person's nullable key to them (their manager, their inviter) only loses that pointer,
or follows their pseudonym; that person's row is never taken for theirs (their export
does not hold it)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, select

from tenancy_fixtures import FixtureManager, Settings, TenantFixture
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


async def _rows(
    manager: FixtureManager, tenant_id: str, table: str, order: str
) -> list[tuple[Any, ...]]:
    """The rows of ``table`` in ``tenant_id``, ordered by the column ``order``."""
    async with manager.store.session(tenant_id, readonly=True) as session:
        found = session.metadata.tables[f"tenant.{table}"]
        rows = await session.connection.execute(select(found).order_by(found.c[order]))
        return [tuple(row) for row in rows]


async def _people(manager: FixtureManager) -> list[tuple[Any, ...]]:
    return await _rows(manager, "staff", "person", "name")


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


def _members() -> MetaData:
    """Members who invite members: ``invited_by`` holds a person's id (declared a
    reference, without a foreign key), in the subject table itself."""
    metadata = MetaData()
    Table(
        "member",
        metadata,
        Column("id", String(20), primary_key=True, info={"subject": "id"}),
        Column("name", String(40), info={"personal": True}),
        Column("email", String(80), unique=True, info={"personal": True}),
        Column("invited_by", String(20), info={"subject": "reference"}),
    )
    return metadata


MEMBERS = [
    {"id": "ada_1", "name": "Ada", "email": "ada@example.com", "invited_by": None},
    {"id": "bo_2", "name": "Bo", "email": "bo@example.com", "invited_by": "ada_1"},
    {"id": "cy_3", "name": "Cy", "email": "cy@example.com", "invited_by": "bo_2"},
]


@pytest.fixture
async def members(settings: Settings, tmp_path: Path) -> AsyncIterator[FixtureManager]:
    async with FixtureManager(settings, metadata=_members()) as manager:
        await drop_every_tenant(manager)
        source = tmp_path / "members"
        source.mkdir()
        rows = "".join(json.dumps(row) + "\n" for row in MEMBERS)
        (source / "member.jsonl").write_text(rows, encoding="utf-8")
        await manager.create_tenant(TenantFixture(tenant_id="club", tier="enterprise"))
        await manager.load_fixtures("club", source)
        yield manager
        await drop_every_tenant(manager)


async def _members_rows(manager: FixtureManager) -> list[tuple[Any, ...]]:
    return await _rows(manager, "club", "member", "id")


async def test_erasing_a_person_leaves_the_people_they_invited_their_own_data(
    members: FixtureManager,
) -> None:
    """Bo goes; Cy, whom Bo invited, keeps her name and e-mail and only loses the
    pointer to Bo. Her row was taken for Bo's (a nullable reference to him): her name and
    e-mail were set to NULL (her row deleted had a name been required)."""
    report = await members.erase_subject("club", "bo_2")

    assert [
        ("ada_1", "Ada", "ada@example.com", None),
        ("cy_3", "Cy", "cy@example.com", None),
    ] == await _members_rows(members)
    assert {"member": 1} == dict(report.deleted)
    assert (await members.verify_erasure("club", "bo_2")).ok
    validation = await members.validate_tenant("club", recompute_checksums=True)
    assert validation.ok, validation.problems


async def test_a_persons_export_holds_their_own_row_not_those_of_the_people_they_invited(
    members: FixtureManager, tmp_path: Path
) -> None:
    """Bo's export holds Bo's row; it held Cy's too, her e-mail with it."""
    report = await members.export_tenant("club", tmp_path / "bo", subject="bo_2")

    exported = (tmp_path / "bo" / "member.jsonl").read_text(encoding="utf-8")
    assert {"member": 1} == report.rows
    assert [MEMBERS[1]] == [json.loads(line) for line in exported.splitlines()]
