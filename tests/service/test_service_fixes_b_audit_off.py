"""The service with the audit log off (``TENANCY_AUDIT_LOGGING=false``): the API and the
dashboard say that nothing is being recorded, as the CLI's notes do, instead of showing
zero refusals as if there were none."""

from __future__ import annotations

import httpx
import pytest

from tenancy_fixtures import Settings
from tests.service.conftest import Tokens


@pytest.fixture
def service_settings(service_settings: Settings) -> Settings:
    """The audit log off, limits enforced (a refused load is then not counted)."""
    return service_settings.model_copy(update={"audit_logging": False, "enforce_limits": True})


async def test_errors_and_audit_say_the_audit_log_is_off(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """``GET /errors`` answered 0 refused, 0 failed, and the audit routes an empty page,
    with nothing saying they are not being recorded: ``audit_logging: false`` does."""
    headers = {"Authorization": f"Bearer {tokens.fleet['read']}"}
    errors = await client.get("/errors", headers=headers)
    assert errors.status_code == 200, errors.text
    assert errors.json()["audit_logging"] is False
    for path in ("/audit", "/tenants/victim/audit"):
        page = await client.get(path, headers=headers)
        assert page.status_code == 200, page.text
        assert page.json()["audit_logging"] is False


async def test_dashboard_pages_say_the_audit_log_is_off(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """The errors page said "Nothing refused or failed in this period" and the tenant
    page listed no audit records as if nothing had happened; both now say why."""
    signed_in = await client.post("/dashboard/login", data={"token": tokens.fleet["read"]})
    assert signed_in.status_code == 303
    errors = await client.get("/dashboard/errors")
    assert errors.status_code == 200
    assert 'id="audit-off"' in errors.text
    assert "not being recorded" in errors.text
    assert "Nothing refused or failed" not in errors.text
    tenant = await client.get("/dashboard/tenants/victim")
    assert tenant.status_code == 200
    assert 'id="audit-off"' in tenant.text
