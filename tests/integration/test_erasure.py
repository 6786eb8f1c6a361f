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

from tenancy_fixtures import FixtureManager, Settings, TenantFixture
from tenancy_fixtures.compliance import erasure
from tenancy_fixtures.compliance.subjects import Fingerprints, reach
from tenancy_fixtures.errors import (
    ConfigError,
    RecordsRefusedError,
    SchemaOutdatedError,
    SettingsError,
    SubjectNotFoundError,
)
from tenancy_fixtures.spotify.daily_stats import refresh_daily_stats
from tenancy_fixtures.store import control_plane
from tests.cleanup import drop_every_tenant
from tests.integration.subject_data import (
    SUBJECT,
    SUBJECT_EMAIL,
    loaded_tenant,
    table,
    table_rows,
    with_secret_key,
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


async def test_a_failed_erasures_message_quoting_the_person_is_scrubbed_and_verify_finds_it(
    manager: FixtureManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error ends an erasure (a registered derivation's own, say), its message quoting
    the person's e-mail in the failed ``data.erase`` record. The next erasure scrubs it,
    and erase --verify reports one left after an erasure. Every ``data.erase`` record
    was kept as a receipt: the e-mail stayed, and the check passed."""
    await loaded_tenant(manager, TENANT)

    async def broken(*_: object) -> None:
        raise ValueError(f"daily_stats: no listener row for '{SUBJECT_EMAIL}'")

    async def failed_erasure() -> None:
        with monkeypatch.context() as patched:
            patched.setattr(erasure, "_refresh_derived", broken)
            with pytest.raises(ValueError, match="no listener row"):
                await manager.erase_subject(TENANT, SUBJECT)

    await failed_erasure()
    assert SUBJECT_EMAIL in json.dumps(await _details(manager))
    await manager.erase_subject(TENANT, SUBJECT)
    assert SUBJECT_EMAIL not in json.dumps(await _details(manager))
    assert (await manager.verify_erasure(TENANT, SUBJECT)).ok

    await failed_erasure()
    check = await manager.verify_erasure(TENANT, SUBJECT)
    assert [r for r in check.remnants if r.startswith("audit details: 1 record")], check.remnants
    await manager.erase_subject(TENANT, SUBJECT)
    assert (await manager.verify_erasure(TENANT, SUBJECT)).ok
    assert (await manager.verify_audit()).ok


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
    await _append_receipt(manager, empty)

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


USERS = "user_id,display_name,email,country,product,created_at\n"
JOINED = "GB,free,2026-01-01T00:00:00+00:00"


async def _append_receipt(manager: FixtureManager, detail: dict[str, Any]) -> None:
    """An erasure receipt of ``detail`` appended to the chain, as an earlier release (or
    an erasure of nothing) wrote it."""
    async with manager.store.control() as conn:
        await control_plane.append_audit(
            conn,
            actor="pytest",
            action=erasure.RECEIPT,
            tenant_id=TENANT,
            outcome="ok",
            detail=detail,
        )


def _users_set(root: Path, name: str, *rows: str) -> Path:
    """A fixture set of one users.csv holding ``rows`` (``id,name,email``)."""
    source = root / name
    source.mkdir()
    (source / "fixtures.json").write_text(
        json.dumps({"name": name, "files": [{"table": "users", "path": "users.csv"}]})
    )
    (source / "users.csv").write_text(USERS + "".join(f"{r},{JOINED}\n" for r in rows))
    return source


async def _details(manager: FixtureManager) -> dict[int, tuple[str, dict[str, Any]]]:
    """The tenant's audit records, all of them (earlier tests' tenants of this name on
    the shared PostgreSQL database included): action and detail by id. Only the newest
    100 were read, so a record the erasure under test added pushed the oldest out of
    reach and the comparison failed with a KeyError (seen under load)."""
    records = await manager.audit_log(TENANT, limit=1_000_000)
    return {r.audit_id: (r.action, dict(r.detail)) for r in records}


async def _unchanged(manager: FixtureManager, before: dict[int, Any]) -> bool:
    """Whether every audit record of ``before`` still has its detail."""
    after = await _details(manager)
    return all(after[audit_id] == record for audit_id, record in before.items())


def _numbered(tmp_path: Path) -> Path:
    return _users_set(
        tmp_path,
        "num",
        "1,Ann One,ann@example.com",
        "2,Bob Two,bob@example.com",
        "3,Cat Three,cat@example.com",
    )


async def test_erasing_a_number_id_leaves_numbers_keys_and_other_receipts_alone(
    settings: Settings, tmp_path: Path
) -> None:
    """Users 1, 2, 3; a reject line of another person says ``"line": 3``. Erasing 2 then
    1: user 2's receipt (``"users": 1``) stays and their check stays ``ok``; erasing 3
    leaves the reject line; no load or tenant detail is scrubbed. It matched numbers,
    keys and words: user 1's erasure wiped user 2's receipt."""
    reject_dir = tmp_path / "rejects"
    async with FixtureManager(settings.model_copy(update={"reject_dir": reject_dir})) as manager:
        await drop_every_tenant(manager)
        await manager.create_tenant(TenantFixture(tenant_id=TENANT, tier="premium"))
        await manager.load_fixtures(TENANT, _numbered(tmp_path))
        other = _users_set(tmp_path, "other", "x_1,Xan,x1@example", "x_2,Yan,x2@example")
        lenient = await manager.load_fixtures(TENANT, other, validation="lenient")
        assert lenient.reject_file is not None
        rejected = lenient.reject_file.read_text()
        assert '"line": 3' in rejected

        assert (await manager.erase_subject(TENANT, "2")).audit_records == 0
        assert (await manager.verify_erasure(TENANT, "2")).ok
        before = await _details(manager)
        first = await manager.erase_subject(TENANT, "1")
        third = await manager.erase_subject(TENANT, "3")

        assert (first.audit_records, first.reject_lines) == (0, 0)
        assert (third.audit_records, third.reject_lines) == (0, 0)
        assert await _unchanged(manager, before)
        assert rejected == lenient.reject_file.read_text()
        for subject in ("1", "2", "3"):
            assert (await manager.verify_erasure(TENANT, subject)).ok, subject
        assert (await manager.verify_audit()).ok
        await drop_every_tenant(manager)


@pytest.mark.parametrize("subject", ["premium", "fingerprints", "line", "x_1@example"])
async def test_an_id_only_words_of_details_or_reject_lines_hold_is_refused_scrubbing_nothing(
    settings: Settings, tmp_path: Path, subject: str
) -> None:
    """``premium`` (a tier in the tenant's creation detail), ``fingerprints`` (a key of
    every receipt), ``line`` (a key of reject lines), an e-mail of a refused record
    that is not this id's: no row or record is theirs, so the erasure is refused
    before anything is scrubbed, and nothing is. It wiped the details and issued a
    receipt."""
    reject_dir = tmp_path / "rejects"
    async with FixtureManager(settings.model_copy(update={"reject_dir": reject_dir})) as manager:
        await drop_every_tenant(manager)
        await manager.create_tenant(TenantFixture(tenant_id=TENANT, tier="premium"))
        await manager.load_fixtures(TENANT, _numbered(tmp_path))
        await manager.erase_subject(TENANT, "2")
        other = _users_set(tmp_path, "other", "x_1,Xan,x_1@example")
        lenient = await manager.load_fixtures(TENANT, other, validation="lenient")
        assert lenient.reject_file is not None
        rejected = lenient.reject_file.read_text()
        before = await _details(manager)

        with pytest.raises(SubjectNotFoundError):
            await manager.erase_subject(TENANT, subject)

        assert await _unchanged(manager, before)
        assert rejected == lenient.reject_file.read_text()
        assert not (await manager.verify_erasure(TENANT, subject)).on_record
        await drop_every_tenant(manager)


async def test_a_refused_persons_e_mail_quoted_in_an_audit_detail_goes_with_their_reject_line(
    settings: Settings, tmp_path: Path
) -> None:
    """``dan_77`` exists only as refused records: a strict load's refusal quotes their
    e-mail in its audit detail, a lenient load set the record aside. Erasing them
    removes the line and scrubs the detail (the e-mail known from their record), and
    the check finds neither. A refused record's e-mail that another person's row holds
    is that person's: it is not searched for. The detail stayed, and the check passed."""
    reject_dir = tmp_path / "rejects"
    async with FixtureManager(settings.model_copy(update={"reject_dir": reject_dir})) as manager:
        await drop_every_tenant(manager)
        await manager.create_tenant(TenantFixture(tenant_id=TENANT, tier="premium"))
        await manager.load_fixtures(TENANT, _numbered(tmp_path))
        bad = _users_set(tmp_path, "bad", "dan_77,Dan Four,dan.four@example")
        with pytest.raises(RecordsRefusedError):
            await manager.load_fixtures(TENANT, bad)
        assert "dan.four@example" in json.dumps(await _details(manager))
        await manager.load_fixtures(TENANT, bad, validation="lenient")
        taken = tmp_path / "taken"
        taken.mkdir()
        (taken / "users.jsonl").write_text(
            json.dumps({"user_id": "dan_77", "email": "bob@example.com", "country": "no"}) + "\n"
        )
        assert (await manager.load_fixtures(TENANT, taken, validation="lenient")).rejected

        report = await manager.erase_subject(TENANT, "dan_77")

        assert (report.total, report.audit_records, report.reject_lines) == (0, 1, 2)
        assert "dan.four@example" not in json.dumps(await _details(manager))
        assert (await manager.verify_erasure(TENANT, "dan_77")).ok
        await drop_every_tenant(manager)


@pytest.mark.parametrize("subject", ["\udcff", "user\udc80"])
async def test_a_subject_id_that_is_not_valid_text_is_refused_as_invalid_input(
    manager: FixtureManager, tmp_path: Path, subject: str
) -> None:
    """A byte the shell could not decode (a lone surrogate): erase, erase --verify and
    a subject export refuse it as they refuse a NUL (exit 2). It was an unexpected
    UnicodeEncodeError (exit 1), a StorageError on PostgreSQL."""
    await manager.create_tenant(TenantFixture(tenant_id=TENANT, tier="enterprise"))

    for attempt in (
        manager.erase_subject(TENANT, subject),
        manager.verify_erasure(TENANT, subject),
        manager.export_tenant(TENANT, tmp_path / "out", subject=subject),
    ):
        with pytest.raises(ConfigError) as refused:
            await attempt
        assert 2 == refused.value.exit_code
        assert "not valid UTF-8" in str(refused.value)


async def test_a_master_key_set_after_an_erasure_still_finds_its_receipt(
    settings: Settings, tmp_path: Path
) -> None:
    """An erasure without a master key, then one is set: the receipt (keyed by its
    salt alone, which it now records) is still on record and the check passes; one
    written before receipts recorded it is found too; erasing again keeps the key the
    first receipt used. The check said no erasure of the id was on record."""
    async with FixtureManager(settings) as manager:
        await drop_every_tenant(manager)
        await manager.create_tenant(TenantFixture(tenant_id=TENANT, tier="premium"))
        await manager.load_fixtures(TENANT, _numbered(tmp_path))
        await manager.erase_subject(TENANT, "1")
        old = Fingerprints.new(None)
        older = {"mode": "delete", "deleted": {"users": 1}, "updated": {}, "audit_records": 0}
        older |= {"subject": {"salt": old.salt, "fingerprint": old.of("someone")}}
        await _append_receipt(manager, older)
    async with FixtureManager(with_secret_key(settings)) as keyed:
        assert (await keyed.verify_erasure(TENANT, "1")).ok
        assert (await keyed.verify_erasure(TENANT, "someone")).on_record
        await keyed.erase_subject(TENANT, "1")
        await keyed.erase_subject(TENANT, "2")
        log = await keyed.audit_log(TENANT)  # a dropped namesake's trails hold no subject
        receipts = [r.detail["subject"] for r in log if "subject" in r.detail]
        assert [r.get("key") for r in receipts] == ["data", "salt", None, "salt"]
        assert (await keyed.verify_erasure(TENANT, "1")).receipts == 1
        assert (await keyed.verify_erasure(TENANT, "2")).ok
        await drop_every_tenant(keyed)


async def test_verify_without_the_master_key_of_keyed_receipts_is_refused_not_not_found(
    settings: Settings, tmp_path: Path
) -> None:
    """An erasure under a master key keeps fingerprints keyed by the tenant's data key.
    Checked without TENANCY_SECRET_KEY, the erasure was said not to be on record (exit 4,
    "check the id"), though it is: the check is refused, saying the key is needed, and
    passes once the key is set again."""
    keyed_settings = with_secret_key(settings)
    async with FixtureManager(keyed_settings) as keyed:
        await drop_every_tenant(keyed)
        await keyed.create_tenant(TenantFixture(tenant_id=TENANT, tier="premium"))
        await keyed.load_fixtures(TENANT, _numbered(tmp_path))
        await keyed.erase_subject(TENANT, "1")
    async with FixtureManager(settings) as keyless:
        with pytest.raises(SettingsError) as refused:
            await keyless.verify_erasure(TENANT, "1")
        assert 2 == refused.value.exit_code
        assert "1 erasure receipt(s) of the tenant" in str(refused.value)
        assert "TENANCY_SECRET_KEY" in str(refused.value)
    async with FixtureManager(keyed_settings) as keyed:
        assert (await keyed.verify_erasure(TENANT, "1")).ok
        await drop_every_tenant(keyed)
