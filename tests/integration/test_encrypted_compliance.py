"""Erasure and export of a schema with encrypted columns, on both backends: a
pseudonymised personal value stays a token of the tenant's data key (the export
decrypts it, the copy reloads and validates), ``erase --verify`` reads through the
encryption, and an export without the master key is refused rather than writing
tokens only the source tenant's key opens."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)

from tenancy_fixtures import FixtureManager, Settings, TenantFixture
from tenancy_fixtures.errors import SettingsError
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tenancy_fixtures.tenancy.data_keys import TenantCipher
from tests.cleanup import drop_every_tenant
from tests.integration.subject_data import with_secret_key

TENANT = "vault"
COPY = "vault_copy"
PEOPLE = (
    '{"person_id": "p1", "email": "a@example.com", "diary": "p1 diary", "ssn": "123"}\n'
    '{"person_id": "p2", "email": "b@example.com", "diary": "p2 diary", "ssn": null}\n'
)
NOTES = (
    '{"note_id": 1, "person_id": "p1", "secret_note": "hello p1", "cred": {"env": "X"}}\n'
    '{"note_id": 2, "person_id": "p2", "secret_note": "hello p2", "cred": null}\n'
)
HEX = re.compile(r"[0-9a-f]{32}")


def _metadata() -> MetaData:
    md = MetaData()
    Table(
        "people",
        md,
        Column("person_id", String(40), primary_key=True, info={"subject": "id"}),
        Column("email", String(200), unique=True, info={"personal": True}),
        Column("diary", Text, info={"encrypted": True, "personal": True}),
        Column("ssn", Text, info={"encrypted": True}),
    )
    Table(
        "notes",
        md,
        Column("note_id", Integer, primary_key=True),
        Column(
            "person_id",
            String(40),
            ForeignKey("people.person_id"),
            nullable=False,
            info={"subject": "reference"},
        ),
        Column("secret_note", Text, info={"encrypted": True, "personal": True}),
        Column("cred", JSON, info={"encrypted": "reference"}),
    )
    return md


@pytest.fixture
async def vault(settings: Settings, tmp_path: Path) -> AsyncIterator[FixtureManager]:
    """A keyed manager on the schema, with the tenant loaded (its values encrypted)."""
    source = tmp_path / "set"
    source.mkdir()
    (source / "people.jsonl").write_text(PEOPLE, encoding="utf-8")
    (source / "notes.jsonl").write_text(NOTES, encoding="utf-8")
    async with FixtureManager(with_secret_key(settings), metadata=_metadata()) as manager:
        await drop_every_tenant(manager)
        await manager.create_tenant(TenantFixture(tenant_id=TENANT, tier="enterprise"))
        await manager.load_fixtures(TENANT, source=source)
        yield manager
        await drop_every_tenant(manager)


async def _rows(manager: FixtureManager, tenant: str, name: str) -> list[dict[str, Any]]:
    found = manager.store.metadata.tables[f"{TENANT_SCHEMA}.{name}"]
    async with manager.store.session(tenant, readonly=True) as session:
        result = await session.connection.execute(select(found).order_by(*found.primary_key))
        return [dict(r._mapping) for r in result]


def _plain(cipher: TenantCipher, rows: list[dict[str, Any]], column: str) -> list[Any]:
    return [None if r[column] is None else cipher.decrypt(r[column]) for r in rows]


async def test_a_pseudonymised_encrypted_column_holds_tokens_of_the_pseudonym(
    vault: FixtureManager, tmp_path: Path
) -> None:
    """The subject's encrypted personal values (their own row's and their notes') become
    tokens of the tenant's key for a pseudonym; the others' stay; validate-data and the
    erasure check pass; the export decrypts them and its copy reloads and validates. The
    pseudonym was written in clear, and the export failed on it."""
    report = await vault.erase_subject(TENANT, "p1", mode="pseudonymise")
    cipher = await vault.tenant_cipher(TENANT)
    people = await _rows(vault, TENANT, "people")
    notes = await _rows(vault, TENANT, "notes")

    assert report.updated == {"people": 1, "notes": 1}
    assert all(cipher.is_own(r["diary"]) for r in people)
    assert all(cipher.is_own(r["secret_note"]) for r in notes)
    assert [r["person_id"] for r in people][1] == "p2"
    pseudonym, theirs = _plain(cipher, people, "diary")
    assert (HEX.fullmatch(pseudonym) is not None, theirs) == (True, "p2 diary")
    assert HEX.fullmatch(_plain(cipher, notes, "secret_note")[0])
    assert _plain(cipher, notes, "secret_note")[1] == "hello p2"
    assert (await vault.validate_tenant(TENANT)).ok
    assert (await vault.verify_erasure(TENANT, "p1")).ok

    await vault.export_tenant(TENANT, tmp_path / "out")
    await vault.create_tenant(TenantFixture(tenant_id=COPY, tier="enterprise"))
    await vault.load_fixtures(COPY, source=tmp_path / "out")
    copied = await vault.tenant_cipher(COPY)
    copy_notes = await _rows(vault, COPY, "notes")
    assert _plain(copied, copy_notes, "secret_note") == _plain(cipher, notes, "secret_note")
    assert (await vault.validate_tenant(COPY)).ok


async def test_erase_verify_finds_a_value_of_the_subject_inside_an_encrypted_column(
    vault: FixtureManager,
) -> None:
    """A value of the erased subject (their e-mail) left in another row's encrypted
    personal column is a remnant: the check reads the values, not their tokens."""
    await vault.erase_subject(TENANT, "p1")
    assert (await vault.verify_erasure(TENANT, "p1")).ok
    cipher = await vault.tenant_cipher(TENANT)
    notes = vault.store.metadata.tables[f"{TENANT_SCHEMA}.notes"]
    async with vault.store.session(TENANT) as session:
        planted = cipher.encrypt("forwarded from a@example.com")
        await session.connection.execute(update(notes).values(secret_note=planted))

    check = await vault.verify_erasure(TENANT, "p1")

    assert not check.ok
    assert any("secret_note" in r for r in check.remnants), check.remnants


async def test_pseudonymising_encrypted_columns_without_the_master_key_is_refused(
    vault: FixtureManager,
) -> None:
    """Without TENANCY_SECRET_KEY no token of the tenant's key can be written: refused,
    nothing changed (the pseudonym went into the column in clear)."""
    before = await _rows(vault, TENANT, "notes")
    keyless = vault.settings.model_copy(update={"secret_key": None})
    async with FixtureManager(keyless, metadata=_metadata()) as manager:
        with pytest.raises(SettingsError, match="TENANCY_SECRET_KEY") as refused:
            await manager.erase_subject(TENANT, "p1", mode="pseudonymise")
        assert 2 == refused.value.exit_code
        assert before == await _rows(manager, TENANT, "notes")


async def test_an_export_without_the_master_key_of_encrypted_values_is_refused(
    vault: FixtureManager, tmp_path: Path
) -> None:
    """The tokens of the tenant's data key were written unchanged: a copy loaded
    elsewhere held tokens only the source tenant's key opens. Now a typed refusal,
    nothing written; a tenant with a data key but no encrypted value still exports."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "people.jsonl").write_text(
        '{"person_id": "p9", "email": "z@example.com", "diary": null, "ssn": null}\n'
    )
    await vault.create_tenant(TenantFixture(tenant_id=COPY, tier="enterprise"))
    await vault.load_fixtures(COPY, source=plain)
    keyless = vault.settings.model_copy(update={"secret_key": None})
    async with FixtureManager(keyless, metadata=_metadata()) as manager:
        with pytest.raises(SettingsError, match="TENANCY_SECRET_KEY") as refused:
            await manager.export_tenant(TENANT, tmp_path / "out")
        assert 2 == refused.value.exit_code
        assert not (tmp_path / "out").exists()

        report = await manager.export_tenant(COPY, tmp_path / "plain_out")
    assert report.rows == {"people": 1}
