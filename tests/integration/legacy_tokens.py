"""A tenant whose AI model credential is a token of the master key, as releases before
data keys stored it: what a master-key rotation must not lose."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import delete, update

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tenancy_fixtures.store.control_plane import data_keys_table
from tenancy_fixtures.tenancy.credentials import encrypt_credential

__all__ = ["API_KEY", "TENANT", "keyed", "new_key", "plant_credential", "tenant_with_model"]

TENANT = "rotated"
API_KEY = "the-provider-api-key-value"
MODEL: dict[str, Any] = {
    "model_id": "chat-mini",
    "provider": "openai",
    "model_name": "gpt-4o-mini",
    "version": "2024-07-18",
    "task": "chat",
    "parameters": {"temperature": 0.4},
    "is_default": True,
}


def keyed(settings: Settings, key: str) -> Settings:
    """``settings`` with ``key`` as ``TENANCY_SECRET_KEY``."""
    return settings.model_copy(update={"secret_key": SecretStr(key)})


def new_key() -> str:
    """A new Fernet key."""
    return Fernet.generate_key().decode("ascii")


async def tenant_with_model(settings: Settings, tmp_path: Path, master: str) -> FixtureManager:
    """A manager keyed by ``master`` that made ``TENANT`` and loaded one model into it
    (close it)."""
    manager = FixtureManager(keyed(settings, master))
    await manager.create_tenant(TENANT)
    path = tmp_path / "models.json"
    credentials = {"encrypted": encrypt_credential(API_KEY, master)}
    path.write_text(json.dumps({"models": [{**MODEL, "credentials": credentials}]}), "utf-8")
    await manager.load_fixtures(TENANT, path)
    return manager


async def plant_credential(manager: FixtureManager, token: str, *, data_key: bool) -> None:
    """Store ``token`` as the model's credential, as a release before data keys did (the
    tenant then had no data key: ``data_key=False``)."""
    table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.ai_models"]
    async with manager.store.session(TENANT) as session:
        await session.connection.execute(update(table).values(credentials={"encrypted": token}))
        if not data_key:
            await session.connection.execute(
                delete(data_keys_table).where(data_keys_table.c.tenant_id == TENANT)
            )
