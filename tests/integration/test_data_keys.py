"""Per-tenant data keys on both backends: credentials stored under the tenant's key, a
drop that destroys the key first (a dump taken before it stays unreadable), rotation of
the master key, and credentials from before data keys that keep working."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr
from sqlalchemy import Column, MetaData, String, Table, select, update

from tenancy_fixtures import ConfigError, FixtureManager, Settings
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tenancy_fixtures.tenancy.credentials import (
    encrypt_credential,
    generate_secret_key,
    resolve_credential,
)
from tenancy_fixtures.tenancy.data_keys import TenantCipher, row_encrypter

from .legacy_tokens import API_KEY, MODEL

TENANT = "keyed_tenant"


def _models_file(tmp_path: Path, master: str) -> Path:
    path = tmp_path / "models.json"
    credentials = {"encrypted": encrypt_credential(API_KEY, master)}
    path.write_text(json.dumps({"models": [{**MODEL, "credentials": credentials}]}), "utf-8")
    return path


def _keyed(settings: Settings, key: str) -> Settings:
    return settings.model_copy(update={"secret_key": SecretStr(key)})


async def _stored_token(manager: FixtureManager) -> str:
    table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.ai_models"]
    async with manager.store.session(TENANT, readonly=True) as session:
        found = await session.connection.execute(select(table.c.credentials))
        return str(found.scalar_one()["encrypted"])


async def test_a_dump_taken_before_the_drop_cannot_be_decrypted_after_it(
    settings: Settings, tmp_path: Path
) -> None:
    """The credential is stored under the tenant's own key, not the master key; the drop
    deletes that key first, so the token dumped before it decrypts with nothing left,
    not even with the master key or the key of a new tenant of the same id."""
    master = generate_secret_key()
    async with FixtureManager(_keyed(settings, master)) as manager:
        await manager.create_tenant(TENANT)
        await manager.load_fixtures(TENANT, _models_file(tmp_path, master))
        dumped = await _stored_token(manager)
        cipher = await manager.tenant_cipher(TENANT)
        before = resolve_credential(
            {"credentials": {"encrypted": dumped}}, manager.settings, cipher=cipher
        )

        await manager.drop_tenant(TENANT)
        drop = (await manager.audit_log(TENANT, limit=1))[0]
        await manager.create_tenant(TENANT)
        reborn = await manager.tenant_cipher(TENANT)
        await manager.drop_tenant(TENANT)

    assert API_KEY == before
    assert drop.detail["key_destroyed"] is True
    with pytest.raises(InvalidToken):
        Fernet(master).decrypt(dumped.encode())
    with pytest.raises(ConfigError, match="does not decrypt"):
        reborn.decrypt(dumped)


async def test_rotating_the_master_key_rewraps_every_data_key(
    settings: Settings, tmp_path: Path
) -> None:
    """After `keys rewrap` with NEW,OLD the old master key can go: the tenant's stored
    credential still decrypts with NEW alone."""
    old, new = generate_secret_key(), generate_secret_key()
    async with FixtureManager(_keyed(settings, old)) as manager:
        await manager.create_tenant(TENANT)
        await manager.load_fixtures(TENANT, _models_file(tmp_path, old))
        token = await _stored_token(manager)
    async with FixtureManager(_keyed(settings, f"{new},{old}")) as manager:
        rewrapped = (await manager.rewrap_keys()).rewrapped
    async with FixtureManager(_keyed(settings, new)) as manager:
        cipher = await manager.tenant_cipher(TENANT)
        after = cipher.decrypt(token)
        actions = [r.action for r in await manager.audit_log(limit=5)]
        await manager.drop_tenant(TENANT)

    assert TENANT in rewrapped
    assert API_KEY == after
    assert "keys.rewrap" in actions


async def test_a_credential_stored_under_the_master_key_keeps_working(
    settings: Settings, tmp_path: Path
) -> None:
    """A token stored before data keys (under the master key, planted here with SQL) is
    still decrypted by the tenant's cipher, which falls back to the master key."""
    master = generate_secret_key()
    token = encrypt_credential(API_KEY, master)
    async with FixtureManager(_keyed(settings, master)) as manager:
        await manager.create_tenant(TENANT)
        await manager.load_fixtures(TENANT, _models_file(tmp_path, master))
        table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.ai_models"]
        async with manager.store.session(TENANT) as session:
            await session.connection.execute(update(table).values(credentials={"encrypted": token}))
        cipher = await manager.tenant_cipher(TENANT)
        await manager.drop_tenant(TENANT)

    assert API_KEY == cipher.decrypt(token)
    assert not cipher.is_own(token)


def test_a_column_declared_encrypted_is_stored_as_a_token_of_the_tenant_key() -> None:
    """``info={"encrypted": True}`` turns each value into a token only the tenant's key
    reads; null stays null, other columns are untouched."""
    table = Table(
        "notes",
        MetaData(),
        Column("note_id", String(10), primary_key=True),
        Column("secret", String(400), info={"encrypted": True}),
    )
    cipher = TenantCipher("t", Fernet.generate_key(), _master())
    encrypt = row_encrypter(table, cipher)
    assert encrypt is not None

    rows = encrypt([("a", "my diary"), ("b", None)])

    assert ("a", "b") == (rows[0][0], rows[1][0])
    assert rows[1][1] is None
    assert "my diary" != rows[0][1]
    assert "my diary" == cipher.decrypt(rows[0][1])


def _master() -> Any:
    from tenancy_fixtures.secret_keys import fernet_for

    return fernet_for(generate_secret_key())
