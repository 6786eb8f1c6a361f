"""Rotating the master key on both backends: ``keys rewrap`` moves the tokens only a
master key decrypts (stored before the tenant had a data key) under the tenant's data
key, so they survive the old key's removal, and reports the tokens no key decrypts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, Table, Text, select

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tenancy_fixtures.tenancy.credentials import encrypt_credential, resolve_credential
from tests.cleanup import drop_every_tenant
from tests.integration.legacy_tokens import (
    API_KEY,
    TENANT,
    keyed,
    new_key,
    plant_credential,
    tenant_with_model,
)


@pytest.fixture
async def clean(settings: Settings) -> AsyncIterator[Settings]:
    """``settings`` on a database with no tenant before and after the test (a rewrap
    reads every tenant's key, and the PostgreSQL database is shared)."""
    async with FixtureManager(settings) as manager:
        await drop_every_tenant(manager)
    yield settings
    async with FixtureManager(settings) as manager:
        await drop_every_tenant(manager)


async def _model(manager: FixtureManager) -> Any:
    table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.ai_models"]
    async with manager.store.session(TENANT, readonly=True) as session:
        return (await session.connection.execute(select(table))).one()


@pytest.mark.parametrize("data_key", [True, False], ids=["data-key", "no-data-key"])
async def test_rewrap_keeps_credentials_loaded_before_data_keys(
    clean: Settings, tmp_path: Path, data_key: bool
) -> None:
    """A credential under the old master key (a tenant from before data keys, with or
    without a data key since) still resolves with the new key alone after the rewrap:
    the rewrap stored it under the tenant's data key, in its audited transaction, and
    validate-data still agrees with the table."""
    old, new = new_key(), new_key()
    manager = await tenant_with_model(clean, tmp_path, old)
    async with manager:
        await plant_credential(manager, encrypt_credential(API_KEY, old), data_key=data_key)
    async with FixtureManager(keyed(clean, f"{new},{old}")) as manager:
        report = await manager.rewrap_keys()
        again = await manager.rewrap_keys()
    async with FixtureManager(keyed(clean, new)) as manager:
        cipher = await manager.tenant_cipher(TENANT)
        model = await _model(manager)
        resolved = resolve_credential(model, manager.settings, cipher=cipher)
        audits = [r for r in await manager.audit_log(TENANT, limit=10) if r.action == "keys.rewrap"]
        validation = await manager.validate_tenant(TENANT)

    assert API_KEY == resolved
    assert cipher.is_own(model.credentials["encrypted"])
    assert report.complete
    assert {TENANT: 1} == report.reencrypted
    assert [TENANT] == report.rewrapped
    assert {TENANT: 0} == again.reencrypted
    assert [("ok", 0), ("ok", 1)] == [(r.outcome, r.detail["reencrypted"]) for r in audits[:2]]
    assert validation.ok, validation.problems


async def test_rewrap_reports_tokens_no_key_decrypts(clean: Settings, tmp_path: Path) -> None:
    """A credential under a key that is gone is counted for its tenant and the report is
    not complete (the audit record says failed); the data key is re-wrapped all the same
    and the token left as it was."""
    old, new, lost = new_key(), new_key(), new_key()
    token = encrypt_credential(API_KEY, lost)
    manager = await tenant_with_model(clean, tmp_path, old)
    async with manager:
        await plant_credential(manager, token, data_key=True)
    async with FixtureManager(keyed(clean, f"{new},{old}")) as manager:
        report = await manager.rewrap_keys()
        audit = (await manager.audit_log(TENANT, limit=1))[0]
    async with FixtureManager(keyed(clean, new)) as manager:
        await manager.tenant_cipher(TENANT)  # unwraps with NEW alone
        model = await _model(manager)

    assert not report.complete
    assert {TENANT: 1} == report.undecryptable
    assert {TENANT: 0} == report.reencrypted
    assert {"rewrapped": [TENANT], "reencrypted": {TENANT: 0}, "undecryptable": {TENANT: 1}} == {
        k: v for k, v in report.as_dict().items() if k != "complete"
    }
    assert ("keys.rewrap", "failed") == (audit.action, audit.outcome)
    assert token == model.credentials["encrypted"]


def _vault() -> MetaData:
    md = MetaData()
    Table(
        "notes",
        md,
        Column("note_id", Integer, primary_key=True),
        Column("secret", Text, info={"encrypted": True}),
        Column("cred", JSON, info={"encrypted": "reference"}),
    )
    return md


async def test_rewrap_moves_encrypted_columns_under_the_data_key(
    clean: Settings, tmp_path: Path
) -> None:
    """A column declared ``info={"encrypted": True}`` and a credential reference column
    of a schema of one's own: their master-key tokens are re-encrypted too, the tenant's
    own tokens and nulls left alone."""
    old, new = new_key(), new_key()
    source = tmp_path / "set"
    source.mkdir()
    (source / "notes.jsonl").write_text(
        '{"note_id": 1, "secret": "own note", "cred": null}\n'
        '{"note_id": 2, "secret": null, "cred": {"env": "X"}}\n',
        encoding="utf-8",
    )
    async with FixtureManager(keyed(clean, old), metadata=_vault()) as manager:
        await drop_every_tenant(manager)
        await manager.create_tenant(TENANT)
        await manager.load_fixtures(TENANT, source=source)
        table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.notes"]
        async with manager.store.session(TENANT) as session:
            await session.connection.execute(
                table.insert().values(
                    note_id=3,
                    secret=encrypt_credential("old note", old),
                    cred={"encrypted": encrypt_credential(API_KEY, old)},
                )
            )
    async with FixtureManager(keyed(clean, f"{new},{old}"), metadata=_vault()) as manager:
        report = await manager.rewrap_keys()
    async with FixtureManager(keyed(clean, new), metadata=_vault()) as manager:
        cipher = await manager.tenant_cipher(TENANT)
        async with manager.store.session(TENANT, readonly=True) as session:
            rows = (await session.connection.execute(select(table).order_by("note_id"))).all()
        await drop_every_tenant(manager)

    assert ["own note", None, "old note"] == [
        None if r.secret is None else cipher.decrypt(r.secret) for r in rows
    ]
    assert [None, {"env": "X"}] == [r.cred for r in rows[:2]]
    assert API_KEY == cipher.decrypt(rows[2].cred["encrypted"])
    assert {TENANT: 2} == report.reencrypted


async def test_validate_data_fails_on_tokens_no_key_decrypts(
    clean: Settings, tmp_path: Path
) -> None:
    """The ``tokens`` check fails naming the column of a token no key of
    TENANCY_SECRET_KEY opens (the master key that made it removed without a rewrap), and
    passes a master-key token with a note asking for the rewrap."""
    old = new_key()
    manager = await tenant_with_model(clean, tmp_path, old)
    async with manager:
        await plant_credential(manager, encrypt_credential(API_KEY, new_key()), data_key=True)
        lost = await manager.validate_tenant(TENANT)
        await plant_credential(manager, encrypt_credential(API_KEY, old), data_key=True)
        legacy = await manager.validate_tenant(TENANT)

    assert ["tokens"] == lost.failed_checks
    assert any(p.startswith("ai_models.credentials: 1 token(s) decrypt") for p in lost.problems)
    assert legacy.ok, legacy.problems
    notes = [c.detail for c in legacy.checks if c.check == "tokens" and c.status == "info"]
    assert ["1 token(s) decrypt only with the master key"] == [n.split(":")[0] for n in notes]
