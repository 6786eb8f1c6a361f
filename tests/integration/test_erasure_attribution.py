"""Delete-mode erasure of rows that are a person's by a nullable reference (a comment
whose author may be unknown, a review) on a schema of the user's own, on both backends:
the row stays shared without the reference and without its personal columns, or goes
when one of those cannot be NULL; rows of others pointing at it keep their own data."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, MetaData, String, Table, Text

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tests.integration.subject_data import loaded_tenant, table_rows

from .table_rows import rows_by_key

TENANT = "board"
#: A demo user who added tracks to other people's playlists.
CONTRIBUTOR = "74969c68-c3b6-4a3f-a0d7-d0fa3768a239"
EMAIL = "alice.private@example.com"
COMMENT = f"Alice here, write to me at {EMAIL}"
ROWS = {
    "users": [
        {"user_id": "u1", "name": "Alice Secret", "email": EMAIL},
        {"user_id": "u2", "name": "Bob", "email": "bob@example.com"},
    ],
    "boards": [{"board_id": "b1", "owner_id": "u2", "title": "Bob's board"}],
    "comments": [
        {"comment_id": "c1", "board_id": "b1", "author_id": "u1", "body": COMMENT},
        {"comment_id": "c2", "board_id": "b1", "author_id": "u2", "body": "Bob's comment"},
    ],
    "attachments": [
        {"attachment_id": "a1", "comment_id": "c1", "caption": "Alice on holiday"},
        {"attachment_id": "a2", "comment_id": "c2", "caption": "Bob's photo"},
    ],
    "reviews": [
        {"review_id": "r1", "board_id": "b1", "reviewer_id": "u1", "text": "Alice's review"},
        {"review_id": "r2", "board_id": "b1", "reviewer_id": "u2", "text": "Bob's review"},
    ],
    "votes": [{"vote_id": "v1", "review_id": "r1"}, {"vote_id": "v2", "review_id": "r2"}],
    "bookmarks": [
        {"bookmark_id": "k1", "review_id": "r1", "label": "Bob's bookmark"},
        {"bookmark_id": "k2", "review_id": "r2", "label": "Bob's other bookmark"},
    ],
}


def _key(target: str, *, nullable: bool, info: dict[str, Any] | None = None) -> Column[Any]:
    name = target.split(".")[1]
    return Column(name, ForeignKey(target), nullable=nullable, info=info or {})


def board() -> MetaData:
    """Users; a board of Bob's; comments with a nullable author (a subject reference)
    and a personal body that may be NULL; attachments belonging through their comment;
    reviews with a nullable reviewer and a personal text that may not be NULL; votes on
    a review (a required key) and bookmarks of it (a nullable key, Bob's own label)."""
    md = MetaData(schema=TENANT_SCHEMA)
    personal = {"personal": True}
    reference = {"subject": "reference"}
    Table(
        "users",
        md,
        Column("user_id", String(64), primary_key=True, info={"subject": "id"}),
        Column("name", String(200), info=personal),
        Column("email", String(320), unique=True, info=personal),
    )
    owner: Column[str] = Column(
        "owner_id", ForeignKey("users.user_id"), nullable=False, info=reference
    )
    board_id = Column("board_id", String(64), primary_key=True)
    Table("boards", md, board_id, owner, Column("title", Text))
    author: Column[str] = Column(
        "author_id", ForeignKey("users.user_id"), nullable=True, info=reference
    )
    Table(
        "comments",
        md,
        Column("comment_id", String(64), primary_key=True),
        _key("boards.board_id", nullable=False),
        author,
        Column("body", Text, info=personal),
    )
    Table(
        "attachments",
        md,
        Column("attachment_id", String(64), primary_key=True),
        _key("comments.comment_id", nullable=False, info={"subject": "through"}),
        Column("caption", Text, info=personal),
    )
    reviewer: Column[str] = Column(
        "reviewer_id", ForeignKey("users.user_id"), nullable=True, info=reference
    )
    Table(
        "reviews",
        md,
        Column("review_id", String(64), primary_key=True),
        _key("boards.board_id", nullable=False),
        reviewer,
        Column("text", Text, nullable=False, info=personal),
    )
    Table(
        "votes",
        md,
        Column("vote_id", String(64), primary_key=True),
        _key("reviews.review_id", nullable=False),
    )
    Table(
        "bookmarks",
        md,
        Column("bookmark_id", String(64), primary_key=True),
        _key("reviews.review_id", nullable=True),
        Column("label", Text, info=personal),
    )
    return md


@pytest.fixture
async def board_manager(settings: Settings, tmp_path: Path) -> AsyncIterator[FixtureManager]:
    """A manager on the board schema with one loaded tenant, dropped afterwards."""
    files = []
    for name, rows in ROWS.items():
        lines = "".join(json.dumps(row) + "\n" for row in rows)
        (tmp_path / f"{name}.jsonl").write_text(lines, encoding="utf-8")
        files.append({"table": name, "path": f"{name}.jsonl"})
    manifest = {"name": "board", "files": files}
    (tmp_path / "fixtures.json").write_text(json.dumps(manifest), encoding="utf-8")
    async with FixtureManager(settings, metadata=board()) as manager:
        await manager.create_tenant(TENANT, tier="premium")
        await manager.load_fixtures(TENANT, tmp_path)
        yield manager
        await manager.drop_tenant(TENANT)


async def _rows(manager: FixtureManager) -> dict[str, dict[str, tuple[Any, ...]]]:
    return await rows_by_key(manager, TENANT)


async def test_deleting_clears_the_personal_columns_of_a_row_a_nullable_reference_makes_theirs(
    board_manager: FixtureManager,
) -> None:
    """The comment the person wrote on someone else's board stays (the board's thread),
    without its author and without its body; the caption of its attachment (theirs
    through the comment) goes too. The comment kept its body in clear, quoting their
    e-mail address, and verify found it."""
    report = await board_manager.erase_subject(TENANT, "u1")

    after = await _rows(board_manager)
    assert after["comments"]["c1"] == ("b1", None, None)
    assert after["attachments"]["a1"] == ("c1", None)
    assert COMMENT not in repr(after)
    assert "Alice" not in repr(after)
    assert after["comments"]["c2"] == ("b1", "u2", "Bob's comment")
    assert after["attachments"]["a2"] == ("c2", "Bob's photo")
    assert report.updated["comments"] == 1
    assert report.cleared["comments"] == {"author_id": 1, "body": 1}
    assert report.cleared["attachments"] == {"caption": 1}
    assert (await board_manager.validate_tenant(TENANT)).ok
    assert (await board_manager.verify_erasure(TENANT, "u1")).ok


async def test_deleting_removes_a_row_a_nullable_reference_makes_theirs_when_its_text_is_required(
    board_manager: FixtureManager,
) -> None:
    """A review whose personal text cannot be NULL goes instead, with the votes that
    cannot outlive it; another person's bookmark of it stays with its own label, only
    its pointer cleared. The receipt counts each table once per row."""
    report = await board_manager.erase_subject(TENANT, "u1")

    after = await _rows(board_manager)
    assert set(after["reviews"]) == {"r2"}
    assert set(after["votes"]) == {"v2"}
    assert after["bookmarks"] == {
        "k1": (None, "Bob's bookmark"),
        "k2": ("r2", "Bob's other bookmark"),
    }
    assert report.deleted == {"users": 1, "reviews": 1, "votes": 1}
    assert report.updated == {"comments": 1, "attachments": 1, "bookmarks": 1}
    assert report.cleared["bookmarks"] == {"review_id": 1}
    receipt = next(r for r in await board_manager.audit_log(TENANT) if r.action == "data.erase")
    assert receipt.detail["cleared"] == report.cleared
    assert (await board_manager.validate_tenant(TENANT)).ok
    assert (await board_manager.verify_erasure(TENANT, "u1")).ok


async def test_deleting_only_unlinks_tracks_the_person_added_to_others_playlists(
    manager: FixtureManager,
) -> None:
    """On the Spotify schema a playlist track someone added to another person's playlist
    is their contribution: it stays in the playlist with ``added_by`` cleared (the table
    declares no personal column to clear), counted as such in the receipt."""
    tenant = "erasing"
    await loaded_tenant(manager, tenant)
    before = await table_rows(manager, tenant)
    at = [c.name for c in manager.store.metadata.tables[f"{TENANT_SCHEMA}.playlist_tracks"].c]
    added = at.index("added_by")
    theirs = {r[0] for r in before["playlists"] if r[1] == CONTRIBUTOR}
    tracks = before["playlist_tracks"]
    contributed = [r for r in tracks if r[added] == CONTRIBUTOR and r[0] not in theirs]
    assert contributed

    report = await manager.erase_subject(tenant, CONTRIBUTOR)

    after = await table_rows(manager, tenant)
    kept = {r[:2]: r for r in after["playlist_tracks"]}
    assert all(kept[r[:2]][added] is None for r in contributed)
    assert report.cleared["playlist_tracks"]["added_by"] == len(contributed)
    assert (await manager.verify_erasure(tenant, CONTRIBUTOR)).ok
