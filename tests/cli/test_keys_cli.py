"""keys rewrap from the shell, on both backends: how many tokens it moved under each
tenant's data key, and exit 13 naming the tenant whose tokens no key decrypts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.cli.audit import UNDECRYPTABLE_EXIT
from tenancy_fixtures.tenancy.credentials import encrypt_credential
from tests.cleanup import drop_every_tenant
from tests.cli.cli_runner import Cli
from tests.integration.legacy_tokens import (
    API_KEY,
    TENANT,
    new_key,
    plant_credential,
    tenant_with_model,
)


def _legacy_tenant(database_url: str, tmp_path: Path, master: str, token: str) -> None:
    """The only tenant of the database: ``TENANT``, its credential ``token`` and no data
    key, as before data keys."""

    async def go() -> None:
        settings = Settings(database_url=database_url, actor="pytest")
        async with FixtureManager(settings) as manager:
            await drop_every_tenant(manager)
        manager = await tenant_with_model(settings, tmp_path, master)
        async with manager:
            await plant_credential(manager, token, data_key=False)

    asyncio.run(go())


def test_keys_rewrap_says_how_many_tokens_it_reencrypted(database_url: str, tmp_path: Path) -> None:
    """With NEW,OLD: the tenant's master-key credential is re-encrypted (the JSON counts
    it), and with NEW alone a second rewrap finds nothing left to move or lose."""
    old, new = new_key(), new_key()
    _legacy_tenant(database_url, tmp_path, old, encrypt_credential(API_KEY, old))
    rotating = Cli(database_url, {"TENANCY_SECRET_KEY": f"{new},{old}"})
    after = Cli(database_url, {"TENANCY_SECRET_KEY": new})

    report = json.loads(rotating.ok("keys", "rewrap", "--json").stdout)
    text = after.ok("keys", "rewrap").stdout
    after.ok("cleanup", TENANT, "--yes")

    assert {
        "complete": True,
        "rewrapped": [TENANT],
        "reencrypted": {TENANT: 1},
        "undecryptable": {},
    } == report
    assert "re-wrapped 1 tenant data key(s); re-encrypted 0 token(s)" in " ".join(text.split())


def test_keys_rewrap_exits_13_naming_the_tenant_whose_tokens_no_key_decrypts(
    database_url: str, tmp_path: Path
) -> None:
    """A credential under a key given nowhere: the rewrap is not complete, says so on
    stderr with the tenant and its count, and exits 13 (JSON still on stdout)."""
    old, new = new_key(), new_key()
    _legacy_tenant(database_url, tmp_path, old, encrypt_credential(API_KEY, new_key()))
    rotating = Cli(database_url, {"TENANCY_SECRET_KEY": f"{new},{old}"})

    result = rotating("keys", "rewrap", "--json")
    rotating.ok("cleanup", TENANT, "--yes")

    assert UNDECRYPTABLE_EXIT == result.exit_code, result.output
    assert {TENANT: 1} == json.loads(result.stdout)["undecryptable"]
    assert f"{TENANT} (1)" in result.stderr
