"""Erasure of one person on both backends: delete and pseudonymise modes in one
transaction, aggregates recomputed, validate-data still passing, a receipt without
personal data, and erase --verify finding planted remnants until they are scrubbed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.compliance import erasure
from tenancy_fixtures.compliance.subjects import Fingerprints, reach
from tenancy_fixtures.errors import SchemaOutdatedError, SubjectNotFoundError
from tenancy_fixtures.spotify.daily_stats import refresh_daily_stats
from tenancy_fixtures.store import control_plane
from tests.cleanup import drop_every_tenant
from tests.integration.subject_data import (
    SUBJECT,
    SUBJECT_EMAIL,
    loaded_tenant,
    table,
    table_rows,
)
from tests.planes import plane_of

TENANT = "erasing"
AGGREGATES = ("daily_stats", "track_daily_stats")


async def _reaching(manager: FixtureManager) -> dict[str, int]:
    """Rows per table that still reach the subject."""
    found = {}
    async with manager.store.session(TENANT, readonly=True) as session:
        for name, condition in reach(manager.store.metadata, SUBJECT).items():
            query = select(func.count()).select_from(table(manager, name)).where(condition)
            found[name] = int((await session.connection.execute(query)).scalar_one())
    return found


async def _recomputed_aggregates(manager: FixtureManager) -> dict[str, list[tuple[Any, ...]]]:
    """The aggregates as a full recompute from the events left gives them."""
    async with manager.store.session(TENANT) as session:
        await refresh_daily_stats(session, None)
    rows = await table_rows(manager, TENANT)
    return {name: rows[name] for name in AGGREGATES}


async def _assert_consistent(manager: FixtureManager) -> None:
    """Aggregates agree with the events; validate-data passes; the chain verifies."""
    rows = await table_rows(manager, TENANT)
    assert {n: rows[n] for n in AGGREGATES} == await _recomputed_aggregates(manager)
    validation = await manager.validate_tenant(TENANT)
    assert validation.ok, validation.problems
    assert (await manager.verify_audit()).ok


async def test_delete_erases_the_person_and_what_depends_on_them(manager: FixtureManager) -> None:
    """Their row, events and playlists go (with their tracks), attributions elsewhere
    are cleared; the aggregates are recomputed; the receipt counts but names nobody."""
    await loaded_tenant(manager, TENANT)
    before = await table_rows(manager, TENANT)
    assert (await _reaching(manager))["listening_events"] > 0

    report = await manager.erase_subject(TENANT, SUBJECT)

    assert set((await _reaching(manager)).values()) == {0}
    after = await table_rows(manager, TENANT)
    assert len(after["users"]) == len(before["users"]) - 1
    assert report.deleted["listening_events"] > 0
    assert report.refreshed
    await _assert_consistent(manager)
    receipt = next(r for r in await manager.audit_log(TENANT) if r.action == "data.erase")
    assert receipt.outcome == "ok"
    assert receipt.run_id == report.run_id
    assert receipt.detail["deleted"] == report.deleted
    assert receipt.detail["digest"]
    text = json.dumps(receipt.detail)
    assert SUBJECT not in text
    assert SUBJECT_EMAIL not in text
    assert (await manager.verify_erasure(TENANT, SUBJECT)).ok


async def test_pseudonymise_keeps_the_rows_under_a_pseudonym(manager: FixtureManager) -> None:
    """Every row stays (counts and aggregates unchanged), the person's id and personal
    values are gone, their rows still join to one pseudonymous user."""
    await loaded_tenant(manager, TENANT)
    before = await table_rows(manager, TENANT)

    report = await manager.erase_subject(TENANT, SUBJECT, mode="pseudonymise")

    after = await table_rows(manager, TENANT)
    assert {n: len(r) for n, r in after.items()} == {n: len(r) for n, r in before.items()}
    assert {n: after[n] for n in AGGREGATES} == {n: before[n] for n in AGGREGATES}
    assert set((await _reaching(manager)).values()) == {0}
    assert SUBJECT_EMAIL not in repr(after)
    assert SUBJECT not in repr(after)
    assert report.updated["users"] == 1
    assert report.updated["listening_events"] > 0
    await _assert_consistent(manager)
    assert (await manager.verify_erasure(TENANT, SUBJECT)).ok


async def test_an_erasure_failing_midway_leaves_everything(
    manager: FixtureManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows are deleted, then the aggregate refresh fails: one transaction, so
    nothing of it is kept, and the failure is audited."""
    await loaded_tenant(manager, TENANT)
    before = await table_rows(manager, TENANT)

    async def broken(*_: object) -> None:
        raise RuntimeError("the refresh broke")

    monkeypatch.setattr(erasure, "_refresh_derived", broken)
    with pytest.raises(RuntimeError):
        await manager.erase_subject(TENANT, SUBJECT)

    assert await table_rows(manager, TENANT) == before
    latest = next(r for r in await manager.audit_log(TENANT) if r.action == "data.erase")
    assert latest.outcome == "failed"


async def test_verify_finds_planted_remnants_until_an_erasure_scrubs_them(
    settings: Settings, tmp_path: Path
) -> None:
    """After an erasure, the person's e-mail planted in a reject file and in an audit
    detail are remnants; erasing again scrubs both (the e-mail known from the first
    receipt's fingerprints), and the chain still verifies."""
    reject_dir = tmp_path / "rejects"
    reject_dir.mkdir()
    async with FixtureManager(settings.model_copy(update={"reject_dir": reject_dir})) as manager:
        await drop_every_tenant(manager)
        await _plant_and_scrub(manager, reject_dir)
        await drop_every_tenant(manager)


async def _plant_and_scrub(manager: FixtureManager, reject_dir: Path) -> None:
    await loaded_tenant(manager, TENANT)
    await manager.erase_subject(TENANT, SUBJECT)
    planted = reject_dir / f"{TENANT}-{await plane_of(manager)}-{uuid.uuid4().hex}.jsonl"
    other = {"table": "users", "record": {"user_id": "someone_else", "email": "x@example.org"}}
    mine = {"table": "users", "message": f"email '{SUBJECT_EMAIL}' is taken", "record": {}}
    planted.write_text(json.dumps(other) + "\n" + json.dumps(mine) + "\n")
    async with manager.store.control() as conn:
        await control_plane.append_audit(
            conn,
            actor="pytest",
            action="fixtures.load",
            tenant_id=TENANT,
            outcome="refused",
            detail={"error": "RecordError", "message": f"duplicate e-mail {SUBJECT_EMAIL}."},
        )

    check = await manager.verify_erasure(TENANT, SUBJECT)
    assert not check.ok
    assert check.receipts == 1
    assert any("reject file" in r for r in check.remnants)
    assert any("audit details" in r for r in check.remnants)
    assert SUBJECT_EMAIL not in json.dumps(check.as_dict())

    again = await manager.erase_subject(TENANT, SUBJECT)
    assert again.reject_lines == 1
    assert again.audit_records == 1
    assert (await manager.verify_erasure(TENANT, SUBJECT)).ok
    assert json.loads(planted.read_text()) == other
    assert (await manager.verify_audit()).ok


async def test_an_erasure_scrubs_reject_files_a_load_was_told_to_write_elsewhere(
    settings: Settings, tmp_path: Path
) -> None:
    """A lenient load given a reject directory of its own sets aside a play of the
    person's: the check looks at that file and finds it, the erasure removes it, and the
    check passes afterwards; another file in that directory is not the library's."""
    elsewhere = tmp_path / "elsewhere"
    refused = tmp_path / "plays"
    refused.mkdir()
    play = {"user_id": SUBJECT, "played_at": "2026-01-01T00:00:00+00:00", "ms_played": "long"}
    (refused / "listening_events.jsonl").write_text(json.dumps(play) + "\n")
    async with FixtureManager(
        settings.model_copy(update={"reject_dir": tmp_path / "rejects"})
    ) as manager:
        await drop_every_tenant(manager)
        await loaded_tenant(manager, TENANT)
        report = await manager.load_fixtures(
            TENANT, refused, validation="lenient", reject_dir=elsewhere
        )
        notes = elsewhere / f"{TENANT}-notes.jsonl"  # the user's, named like reject files
        notes.write_text(json.dumps({"email": SUBJECT_EMAIL}) + "\n")
        assert report.reject_file is not None
        assert elsewhere == report.reject_file.parent

        check = await manager.verify_erasure(TENANT, SUBJECT)
        assert any(str(report.reject_file) in r for r in check.remnants), check.remnants
        erased = await manager.erase_subject(TENANT, SUBJECT)
        assert 1 == erased.reject_lines
        assert not report.reject_file.exists()
        assert (await manager.verify_erasure(TENANT, SUBJECT)).ok
        assert SUBJECT_EMAIL in notes.read_text()
        await drop_every_tenant(manager)


@pytest.mark.redis
async def test_verify_reads_the_redis_cached_config_and_an_erasure_drops_it(
    settings: Settings, redis_url: str, redis_prefix: str
) -> None:
    """The person's e-mail in the tenant's config cached in a real Redis is a remnant
    until an erasure drops that cache entry."""
    cached = settings.model_copy(update={"redis_url": redis_url, "redis_prefix": redis_prefix})
    async with FixtureManager(cached) as manager:
        await drop_every_tenant(manager)
        try:
            await loaded_tenant(manager, TENANT)
            await manager.erase_subject(TENANT, SUBJECT)
            plane = await manager.config.plane_id()
            config = (await manager.get_tenant_config(TENANT)).model_dump(mode="json")
            config["settings"] = {**config.get("settings", {}), "contact": SUBJECT_EMAIL}
            assert await manager.cache.set(plane, TENANT, json.dumps(config), version=2**62)
            client = Redis.from_url(redis_url)
            try:
                assert [k async for k in client.scan_iter(f"{redis_prefix}:*")]

                check = await manager.verify_erasure(TENANT, SUBJECT)
                assert "config cache" in check.checked
                assert any("cached config" in r for r in check.remnants)

                await manager.erase_subject(TENANT, SUBJECT)
                assert (await manager.verify_erasure(TENANT, SUBJECT)).ok
            finally:
                await client.aclose()
        finally:
            await drop_every_tenant(manager)


async def test_an_erasure_in_a_tenant_behind_the_schema_head_is_refused_until_migrated(
    manager: FixtureManager,
) -> None:
    """Its tables are rewritten as the schema declares them (once a storage error naming
    a column the old tables lack); nothing is erased until the tenant is migrated."""
    await loaded_tenant(manager, TENANT)
    await manager.migrate(tenants=[TENANT], to="-1")
    before = await _reaching(manager)

    with pytest.raises(SchemaOutdatedError):
        await manager.erase_subject(TENANT, SUBJECT)

    assert before == await _reaching(manager)
    await manager.migrate(tenants=[TENANT])
    await manager.erase_subject(TENANT, SUBJECT)
    assert set((await _reaching(manager)).values()) == {0}


@pytest.mark.parametrize("subject", [SUBJECT.upper(), "nobody", ""])
async def test_erasing_an_id_no_one_holds_is_refused_with_no_receipt_and_verify_says_so(
    manager: FixtureManager, subject: str
) -> None:
    """Another letter case of the person's id, an unknown id, an empty one: it "erased 0
    row(s)" with an ``ok`` receipt, and the check then said nothing of it was left."""
    await loaded_tenant(manager, TENANT)
    before = await table_rows(manager, TENANT)

    with pytest.raises(SubjectNotFoundError) as refused:
        await manager.erase_subject(TENANT, subject)
    check = await manager.verify_erasure(TENANT, subject)

    assert 4 == refused.value.exit_code
    assert "users.user_id" == refused.value.column
    assert "check the id" in str(refused.value)
    assert before == await table_rows(manager, TENANT)
    latest = next(r for r in await manager.audit_log(TENANT) if r.action == "data.erase")
    assert "refused" == latest.outcome
    assert (check.on_record, check.ok, check.receipts) == (False, False, 0)
    assert (await manager.verify_audit()).ok


async def test_a_receipt_that_erased_nothing_does_not_put_the_id_on_record(
    manager: FixtureManager,
) -> None:
    """Such receipts were written for ids no one held: the id is still refused, and the
    check does not count them."""
    await loaded_tenant(manager, TENANT)
    marks = Fingerprints.new(None)
    empty = {"mode": "delete", "deleted": {}, "updated": {}, "audit_records": 0}
    empty |= {"reject_lines": 0, "subject": {"salt": marks.salt, "fingerprint": marks.of("nobody")}}
    async with manager.store.control() as conn:
        await control_plane.append_audit(
            conn,
            actor="pytest",
            action=erasure.RECEIPT,
            tenant_id=TENANT,
            outcome="ok",
            detail=empty,
        )

    with pytest.raises(SubjectNotFoundError):
        await manager.erase_subject(TENANT, "nobody")
    assert not (await manager.verify_erasure(TENANT, "nobody")).on_record


async def test_erasing_a_person_again_after_their_erasure_is_not_refused(
    manager: FixtureManager,
) -> None:
    """Nothing is left of them, but their receipt is on record: erasing again (to scrub
    a remnant found later) goes through."""
    await loaded_tenant(manager, TENANT)
    await manager.erase_subject(TENANT, SUBJECT)

    again = await manager.erase_subject(TENANT, SUBJECT)

    assert 0 == again.total
    check = await manager.verify_erasure(TENANT, SUBJECT)
    assert (check.on_record, check.ok) == (True, True)
