"""Erasure of rows that belong to a person only through a parent (``"through"`` keys) on
a schema of the user's own, on both backends: a user's posts reference them, the notes
on a post are the post owner's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, MetaData, String, Table, Text

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.compliance import erasure
from tenancy_fixtures.errors import StorageError
from tenancy_fixtures.store.base import TENANT_SCHEMA

from .table_rows import rows_by_key

TENANT = "notebook"
NOTE = "Alice private note phone 555-1234"
ROWS = {
    "users": [{"user_id": "u1", "name": "Alice Secret"}, {"user_id": "u2", "name": "Bob"}],
    "posts": [
        {"post_id": "p1", "owner_id": "u1", "body": "alice post"},
        {"post_id": "p2", "owner_id": "u2", "body": "bob post"},
    ],
    "notes": [
        {"note_id": "n1", "post_id": "p1", "text": NOTE},
        {"note_id": "n2", "post_id": "p2", "text": "Bob's note"},
    ],
}


def notebook(*, nullable_through: bool = False) -> MetaData:
    """Users, their posts (a subject reference) and notes on posts (a "through" key,
    required or nullable)."""
    metadata = MetaData(schema=TENANT_SCHEMA)
    personal = {"personal": True}
    Table(
        "users",
        metadata,
        Column("user_id", String(64), primary_key=True, info={"subject": "id"}),
        Column("name", String(200), info=personal),
    )
    Table(
        "posts",
        metadata,
        Column("post_id", String(64), primary_key=True),
        Column(
            "owner_id",
            ForeignKey("users.user_id"),
            nullable=False,
            info={"subject": "reference"},
        ),
        Column("body", Text, info=personal),
    )
    Table(
        "notes",
        metadata,
        Column("note_id", String(64), primary_key=True),
        Column(
            "post_id",
            ForeignKey("posts.post_id"),
            nullable=nullable_through,
            info={"subject": "through"},
        ),
        Column("text", Text, info=personal),
    )
    return metadata


@pytest.fixture(params=["required", "nullable"])
def through_key(request: pytest.FixtureRequest) -> str:
    """The notes' "through" key to their post: required, or nullable."""
    return str(request.param)


@pytest.fixture
async def notes_manager(
    settings: Settings, tmp_path: Path, through_key: str
) -> AsyncIterator[FixtureManager]:
    """A manager on the notebook schema with one loaded tenant, dropped afterwards."""
    directory = tmp_path / "notebook"
    directory.mkdir()
    files = []
    for name, rows in ROWS.items():
        lines = "".join(json.dumps(row) + "\n" for row in rows)
        (directory / f"{name}.jsonl").write_text(lines, encoding="utf-8")
        files.append({"table": name, "path": f"{name}.jsonl"})
    manifest = {"name": "notebook", "files": files}
    (directory / "fixtures.json").write_text(json.dumps(manifest), encoding="utf-8")
    metadata = notebook(nullable_through=through_key == "nullable")
    async with FixtureManager(settings, metadata=metadata) as manager:
        await manager.create_tenant(TENANT, tier="premium")
        await manager.load_fixtures(TENANT, directory)
        yield manager
        await manager.drop_tenant(TENANT)


async def _rows(manager: FixtureManager) -> dict[str, dict[str, tuple[Any, ...]]]:
    return await rows_by_key(manager, TENANT)


async def test_pseudonymising_rewrites_the_personal_columns_of_rows_reached_through_a_parent(
    notes_manager: FixtureManager,
) -> None:
    """The note on the person's post is theirs: its text becomes an HMAC with the post's
    body and owner, in one erasure; the other person's post and note stay as they were."""
    before = await _rows(notes_manager)

    report = await notes_manager.erase_subject(TENANT, "u1", mode="pseudonymise")

    after = await _rows(notes_manager)
    assert report.updated == {"users": 1, "posts": 1, "notes": 1}
    assert NOTE not in repr(after)
    assert "Alice" not in repr(after)
    post_id, text = after["notes"]["n1"]
    assert post_id == "p1"
    assert text != NOTE
    assert len(text) == 32
    (pseudonym,) = set(after["users"]) - {"u2"}
    assert after["posts"]["p1"][0] == pseudonym
    for table in ("users", "posts", "notes"):
        others = {k: v for k, v in before[table].items() if k not in ("u1", "p1", "n1")}
        assert others.items() <= after[table].items()
    assert (await notes_manager.validate_tenant(TENANT)).ok
    assert (await notes_manager.verify_erasure(TENANT, "u1")).ok


async def test_deleting_removes_the_rows_reached_through_a_parent(
    notes_manager: FixtureManager,
) -> None:
    """Delete mode takes the note on the person's post with the post (children first, so
    the note is found while its post still names the person), also where the note's key
    to the post is nullable: the note is the person's, not merely pointing at them (it
    was kept, its key cleared and its text in clear, and verify passed)."""
    report = await notes_manager.erase_subject(TENANT, "u1")

    after = await _rows(notes_manager)
    assert report.deleted == {"users": 1, "posts": 1, "notes": 1}
    assert set(after["notes"]) == {"n2"}
    assert NOTE not in repr(after)
    assert (await notes_manager.verify_erasure(TENANT, "u1")).ok


async def test_a_pseudonymisation_missing_a_row_reached_through_a_parent_is_refused(
    notes_manager: FixtureManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row reaching the pseudonym once the erasure is done whose personal columns it
    did not rewrite (nothing could find it afterwards: it no longer reaches the person)
    refuses the erasure; the tenant is left as it was."""
    read = erasure._reached_rows

    async def missing_notes(session: Any, table: Table, *args: Any) -> Any:
        found = await read(session, table, *args)
        if table.name == "notes":
            found.rows = []
        return found

    monkeypatch.setattr(erasure, "_reached_rows", missing_notes)
    before = await _rows(notes_manager)

    with pytest.raises(StorageError, match="'notes' reach the subject's pseudonym"):
        await notes_manager.erase_subject(TENANT, "u1", mode="pseudonymise")

    assert await _rows(notes_manager) == before
    latest = next(r for r in await notes_manager.audit_log(TENANT) if r.action == "data.erase")
    assert latest.outcome == "refused"
