"""The dashboard over HTTP (in-process): the token flow, access rules, what each page
shows, its headers. The same pages in a real browser: test_dashboard_browser.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.monitoring.forecast import forecast_limit
from tenancy_fixtures.service.dashboard import plots
from tenancy_fixtures.service.dashboard.session import COOKIE
from tests.service.conftest import Tokens


@pytest.fixture
def service_settings(service_settings: Settings) -> Settings:
    """Limits enforced, so a refused load shows on the errors page."""
    return service_settings.model_copy(update={"enforce_limits": True})


async def _sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/dashboard/login", data={"token": token})


async def test_pages_send_a_browser_without_a_token_to_sign_in(
    client: httpx.AsyncClient, tenants: list[str]
) -> None:
    """Every page redirects to the login form until a token is given."""
    for path in ("/dashboard/", "/dashboard/tenants/victim", "/dashboard/errors"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/login"
    form = await client.get("/dashboard/login")
    assert form.status_code == 200
    assert 'name="token"' in form.text


async def test_signing_in_keeps_the_token_in_a_strict_http_only_cookie(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """A live fleet token: 303 to the tenants page and a cookie no script can read and no
    other site can send; the pages then render; signing out forgets it."""
    response = await _sign_in(client, tokens.fleet["read"])
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/dashboard"):
        assert attribute.lower() in cookie.lower()
    page = await client.get("/dashboard/")
    assert page.status_code == 200
    assert "victim" in page.text
    assert "intruder" in page.text
    out = await client.post("/dashboard/logout")
    assert out.status_code == 303
    assert (await client.get("/dashboard/")).status_code == 303


async def test_a_wrong_or_revoked_token_is_refused(
    client: httpx.AsyncClient, manager: FixtureManager, tokens: Tokens
) -> None:
    """A token that is not live sets no cookie; one revoked after signing in stops at
    the next page."""
    refused = await _sign_in(client, "tfk_0123456789abcdef.not-a-secret")
    assert refused.status_code == 401
    assert "set-cookie" not in refused.headers
    issued = await manager.create_token(scope="read", name="dash")
    assert (await _sign_in(client, issued.bearer)).status_code == 303
    assert (await client.get("/dashboard/")).status_code == 200
    await manager.revoke_token(issued.token.token_id)
    assert (await client.get("/dashboard/")).status_code == 303


async def test_a_tenant_token_sees_its_tenant_only(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """It lands on its tenant's page; another tenant's page is 404 like a missing one;
    the fleet pages are 403."""
    response = await _sign_in(client, tokens.tenant[("victim", "read")])
    assert response.headers["location"] == "/dashboard/tenants/victim"
    assert (await client.get("/dashboard/tenants/victim")).status_code == 200
    other = await client.get("/dashboard/tenants/intruder")
    missing = await client.get("/dashboard/tenants/ghost")
    assert other.status_code == missing.status_code == 404
    assert other.text.replace("intruder", "X") == missing.text.replace("ghost", "X")
    assert (await client.get("/dashboard/errors")).status_code == 403
    home = await client.get("/dashboard/")
    assert home.headers["location"] == "/dashboard/tenants/victim"


async def test_a_login_posted_from_another_site_is_refused(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """A cross-site form cannot sign a browser in (login CSRF)."""
    response = await client.post(
        "/dashboard/login",
        data={"token": tokens.fleet["read"]},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_login_form_past_the_body_limit_is_no_token_not_a_500(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """A 2 MiB login form (declared up front): the login page saying it is not a live
    token, as for any other field that is no token."""
    form = b"token=" + b"a" * (2 << 20)
    response = await client.post(
        "/dashboard/login",
        content=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 401, response.text
    assert "not a live token" in response.text


async def test_pages_forbid_scripts_and_framing(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """Every page carries a policy that runs no script and loads only from here."""
    await _sign_in(client, tokens.fleet["read"])
    for path in ("/dashboard/login", "/dashboard/", "/dashboard/tenants/victim"):
        headers = (await client.get(path)).headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["cache-control"] == "no-store"
    css = await client.get("/dashboard/static/dashboard.css")
    assert css.status_code == 200
    assert "svg.plot" in css.text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/dashboard/login", "GET, HEAD, POST"),
        ("DELETE", "/dashboard/", "GET, HEAD"),
        ("POST", "/dashboard/tenants/victim", "GET, HEAD"),
        ("POST", "/dashboard/static/dashboard.css", "GET, HEAD"),
        ("PUT", "/tenants/victim", "DELETE, GET, HEAD"),
    ],
)
async def test_a_method_a_path_does_not_take_is_a_405_naming_the_ones_it_does(
    client: httpx.AsyncClient, tokens: Tokens, method: str, path: str, allowed: str
) -> None:
    """A 405 must say which methods the path takes (RFC 9110): the dashboard's, under
    its mount, answered an empty ``Allow``, as the API's routes do not."""
    await _sign_in(client, tokens.fleet["read"])
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed


async def test_the_tenant_page_shows_rows_runs_forecasts_and_audit(
    client: httpx.AsyncClient, manager: FixtureManager, tokens: Tokens
) -> None:
    """After a load and a few snapshots: the row counts, the throughput plot, a forecast
    plot per counted limit with its limit line, the audit tail."""
    await manager.load_fixtures("victim")
    await manager.usage_snapshot("victim")
    await _sign_in(client, tokens.fleet["read"])
    page = (await client.get("/dashboard/tenants/victim")).text
    assert 'id="row-counts"' in page
    assert "tracks" in page
    assert 'id="throughput"' in page
    assert "<circle" in page
    for limit in ("users", "workspaces", "storage"):
        assert f'id="forecast-{limit}"' in page
    assert 'class="limit"' in page
    assert "fixtures.load" in page or "tenant.create" in page


async def test_the_errors_page_groups_a_refused_load(
    client: httpx.AsyncClient, manager: FixtureManager, tokens: Tokens
) -> None:
    """A load refused by a limit shows in the fleet's errors, with a bar per day."""
    await manager.update_tenant_config("victim", limits={"users": 1})
    with pytest.raises(Exception, match="limit 'users' exceeded"):
        await manager.load_fixtures("victim")
    await _sign_in(client, tokens.fleet["read"])
    page = (await client.get("/dashboard/errors")).text
    assert "LimitExceededError" in page
    assert 'class="bar-column"' in page


def test_the_trend_reaches_the_limit_line_on_the_forecast_day() -> None:
    """Linear growth of 2 a day from 0 to 18 reaches 30 six days after the newest point:
    the trend line ends on the limit line, at that day's x."""
    start = datetime(2026, 12, 1, tzinfo=UTC)
    times = [start + timedelta(days=d) for d in range(10)]
    values = [2 * d for d in range(10)]
    forecast = forecast_limit("t", "users", 30, times, values)
    assert forecast.days_to_limit == pytest.approx(6.0)
    svg = str(plots.forecast_plot(list(zip(times, map(float, values), strict=True)), forecast))
    frame = plots.Frame(start, times[-1] + timedelta(days=6 * 1.15), 30 * 1.08)
    crossing = frame.x(times[-1] + timedelta(days=6))
    assert f'x2="{crossing:.1f}" y2="{frame.y(30):.1f}"' in svg
    assert svg.count("<circle") == 10


@pytest.mark.parametrize(
    "number", ["%C2%B2", "9" * 5000, "007"], ids=["superscript", "huge", "zeros"]
)
async def test_a_page_number_that_is_no_ascii_number_shows_a_page_not_a_500(
    client: httpx.AsyncClient, tokens: Tokens, number: str
) -> None:
    """``"²"`` passed str.isdigit() and failed int() (500), as did 5000 digits; each is
    now the default (or the last) page, with the page's headers."""
    await _sign_in(client, tokens.fleet["read"])
    for url in (f"/dashboard/?page={number}", f"/dashboard/errors?days={number}"):
        response = await client.get(url)
        assert response.status_code == 200, (url[:40], response.text[:200])
        assert response.headers["cache-control"] == "no-store"


async def test_an_unexpected_error_is_a_500_page_keeping_its_headers(
    app: FastAPI, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure the page does not expect: a 500 page saying nothing of it, with the
    policy and no-store headers (not the API's problem document)."""

    async def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(app.state.manager, "list_tenants", failing)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        await _sign_in(client, tokens.fleet["read"])
        response = await client.get("/dashboard/")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert "secret" not in response.text
