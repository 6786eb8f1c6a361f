"""Service tokens of one tenant live and die with it, on both backends."""

from __future__ import annotations

import pytest

from tenancy_fixtures import FixtureManager, TenantNotFoundError
from tenancy_fixtures.errors import TokenNotFoundError
from tenancy_fixtures.store.base import TenantStore
from tenancy_fixtures.store.control_plane import TenantRecord
from tenancy_fixtures.tenancy import tokens
from tenancy_fixtures.tenancy.tenants import get_tenant


async def test_a_token_for_a_tenant_dropped_while_it_is_made_is_not_kept(
    manager: FixtureManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tenant was looked up, then the token stored in a transaction of its own: a
    drop in between left a token naming no tenant, which a tenant made again under the
    same id (another customer's) then honoured."""
    await manager.create_tenant("short_lived")

    async def dropped_meanwhile(store: TenantStore, tenant_id: str) -> TenantRecord:
        record = await get_tenant(store, tenant_id)
        await manager.drop_tenant(tenant_id)  # another process, between the two steps
        return record

    monkeypatch.setattr(tokens, "get_tenant", dropped_meanwhile)

    with pytest.raises(TenantNotFoundError):
        await manager.create_token(scope="admin", tenant_id="short_lived")

    assert await manager.list_tokens(tenant_id="short_lived", include_revoked=True) == []


async def test_a_token_is_revoked_by_its_bearer_string_and_a_miss_never_repeats_the_secret(
    manager: FixtureManager,
) -> None:
    """``token revoke`` takes the id; given the bearer string (pasted whole from where it
    was kept) it answered "no live token has id 'tfk_<id>.<secret>'", printing the
    secret to the terminal and the logs, and the token stayed live."""
    issued = await manager.create_token(scope="read", name="pasted")
    secret = issued.bearer.partition(".")[2]

    revoked = await manager.revoke_token(issued.bearer)

    assert revoked.token_id == issued.token.token_id
    assert await manager.authenticate_token(issued.bearer) is None
    with pytest.raises(TokenNotFoundError) as again:
        await manager.revoke_token(issued.bearer)
    assert secret not in str(again.value)
