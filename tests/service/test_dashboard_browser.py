"""The dashboard in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium), against the app served by uvicorn on a free
port: the token flow, pages rendering with data, plots drawing non-empty SVG, and no
console errors (a CSP violation or a failed request would be one). Screenshots go to
``test-artifacts/dashboard/`` (or ``$TENANCY_TEST_ARTIFACTS``); the run prints where.

One server and one browser for the module (~10 s); ``xdist_group`` keeps the module
on one worker under ``make test`` (``--dist loadgroup``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.errors import LimitExceededError
from tenancy_fixtures.service import create_app
from tenancy_fixtures.store import usage_ledger
from tenancy_fixtures.store.control_plane import utcnow
from tests.conftest import DEMO_SET, unavailable

pytestmark = pytest.mark.xdist_group("browser")

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(
    os.environ.get("TENANCY_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")
)


@dataclass(frozen=True)
class Site:
    """The running dashboard: its address and the tokens to sign in with."""

    url: str
    fleet: str
    tenant: str


async def _prepare(settings: Settings) -> tuple[str, str]:
    """Two tenants with history: ``acme_music`` loaded twice and ten days of growing
    usage (so its forecast has a trend), ``tiny_free`` refused a load past its limit."""
    async with FixtureManager(settings) as manager:
        await manager.create_tenant("acme_music", tier="premium")
        await manager.create_tenant("tiny_free", tier="free")
        await manager.load_fixtures("acme_music")
        await manager.load_fixtures("acme_music", force=True)
        now = utcnow()
        snapshot = await manager.usage_snapshot("acme_music")
        async with manager.store.control() as conn:
            for day in range(10):
                grown = {**snapshot.counters, "users": 20 - 2 * (10 - day)}
                await usage_ledger.record_snapshot(
                    conn,
                    usage_ledger.UsageSnapshot(
                        "acme_music",
                        now - timedelta(days=10 - day),
                        snapshot.storage_bytes,
                        snapshot.row_counts,
                        grown,
                    ),
                )
        with contextlib.suppress(LimitExceededError):
            await manager.load_fixtures("tiny_free", source=DEMO_SET)
        await manager.usage_snapshot("tiny_free")
        fleet = await manager.create_token(scope="read", name="browser")
        tenant = await manager.create_token(scope="read", tenant_id="acme_music", name="browser")
    return fleet.bearer, tenant.bearer


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The app on a fresh SQLite directory, served by uvicorn in a thread."""
    base = tmp_path_factory.mktemp("dashboard")
    settings = Settings(
        database_url=f"sqlite:///{base / 'data'}",
        actor="browser",
        enforce_limits=True,
        reject_dir=base / "rejects",
    )
    fleet, tenant = asyncio.run(_prepare(settings))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "uvicorn did not start"
    yield Site(f"http://127.0.0.1:{port}", fleet, tenant)
    server.should_exit = True
    thread.join(10)
    listener.close()


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Iterator[WebDriver]:
    """Headless Chromium through chromedriver, keeping the console log."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        unavailable("Debian's chromium and chromium-driver are not installed (make test does)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,3000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:  # None on an xdist worker
        with capture.global_and_fixture_disabled():
            reporter.ensure_newline()
            reporter.write_line(f"dashboard screenshots: {ARTIFACTS / 'dashboard'}")


@pytest.fixture(autouse=True)
def _fresh_console(browser: WebDriver) -> None:
    """Each test reads only its own console messages, even after a test that failed."""
    _console_errors(browser)


def _console_errors(driver: WebDriver) -> list[str]:
    """Console messages of level SEVERE since the last call."""
    entries: list[dict[str, str]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [e["message"] for e in entries if e["level"] == "SEVERE"]


def _screenshot(driver: WebDriver, name: str) -> Path:
    folder = ARTIFACTS / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def _gone(element: WebElement) -> bool:
    """Whether ``element`` has left the page: stale, or (while chromium is between two
    documents) a node that "does not belong to the document"."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" not in str(exc):
            raise
        return True
    return False


def _wait_until_replaced(driver: WebDriver, element: WebElement) -> None:
    """Wait for the page holding ``element`` to be replaced (a click returns before)."""
    WebDriverWait(driver, 10).until(lambda _: _gone(element))


def _sign_in(driver: WebDriver, site: Site, token: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{site.url}/dashboard/login")
    form = driver.find_element(By.TAG_NAME, "form")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()
    _wait_until_replaced(driver, form)


def _plot_drawn(driver: WebDriver, figure: str) -> None:
    """The figure's SVG has a size on screen and marks in it."""
    svg = driver.find_element(By.CSS_SELECTOR, f"#{figure} svg")
    assert svg.size["width"] > 100
    assert svg.size["height"] > 30
    marks = svg.find_elements(By.CSS_SELECTOR, "circle, polyline, line.trend, rect.bar-column")
    assert marks, f"{figure}: nothing drawn"


def test_the_token_flow_signs_in_keeps_an_http_only_cookie_and_signs_out(
    browser: WebDriver, site: Site
) -> None:
    """Without a token the dashboard asks for one; a wrong one is refused on the page; a
    fleet token lands on the tenants list with an HttpOnly, SameSite=Strict cookie that
    page scripts cannot read; signing out returns to the form."""
    browser.get(f"{site.url}/dashboard/")
    assert browser.current_url.endswith("/dashboard/login")
    _sign_in(browser, site, "tfk_0123456789abcdef.wrong")
    assert "not a live token" in browser.find_element(By.ID, "login-error").text
    _console_errors(browser)  # the 401 of the refused sign-in is logged by design
    _sign_in(browser, site, site.fleet)
    assert browser.current_url.endswith("/dashboard/")
    (cookie,) = browser.get_cookies()
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie") == ""
    sign_out = browser.find_element(By.CSS_SELECTOR, "header form button")
    sign_out.click()
    _wait_until_replaced(browser, sign_out)
    assert browser.current_url.endswith("/dashboard/login")
    assert browser.get_cookies() == []
    assert _console_errors(browser) == []


def test_the_tenants_page_shows_usage_bars_against_limits(browser: WebDriver, site: Site) -> None:
    """Both tenants listed, each limit a drawn bar; no console errors."""
    _sign_in(browser, site, site.fleet)
    rows = browser.find_elements(By.CSS_SELECTOR, "#tenants tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == ["acme_music", "tiny_free"]
    bars = browser.find_elements(By.CSS_SELECTOR, "#tenants svg.bar")
    assert len(bars) == 6  # users, workspaces, storage of each
    filled = browser.find_elements(By.CSS_SELECTOR, "#tenants svg.bar rect:not(.bar-back)")
    assert any(float(r.get_attribute("width") or 0) > 0 for r in filled)
    _screenshot(browser, "tenants")
    assert _console_errors(browser) == []


def test_the_tenant_page_draws_throughput_and_forecast_plots(
    browser: WebDriver, site: Site
) -> None:
    """Row counts, the rows/s plot of its loads, the users forecast with its limit line
    and trend, the audit tail; no console errors."""
    _sign_in(browser, site, site.fleet)
    browser.get(f"{site.url}/dashboard/tenants/acme_music")
    assert browser.find_element(By.ID, "tenant-id").text == "acme_music"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#row-counts tbody tr")) > 5
    _plot_drawn(browser, "throughput")
    _plot_drawn(browser, "forecast-users")
    users = browser.find_element(By.ID, "forecast-users")
    assert users.find_elements(By.CSS_SELECTOR, "line.limit")
    assert users.find_elements(By.CSS_SELECTOR, "line.trend")
    assert "limit reached in about" in users.text
    assert browser.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
    _screenshot(browser, "tenant")
    assert _console_errors(browser) == []


def test_the_errors_page_plots_the_fleets_refusals(browser: WebDriver, site: Site) -> None:
    """The refused load of tiny_free, grouped and drawn per day."""
    _sign_in(browser, site, site.fleet)
    browser.get(f"{site.url}/dashboard/errors")
    groups = browser.find_element(By.ID, "error-groups").text
    assert "tiny_free" in groups
    assert "LimitExceededError" in groups
    _plot_drawn(browser, "errors-per-day")
    _screenshot(browser, "errors")
    assert _console_errors(browser) == []


def test_a_tenant_token_lands_on_its_page_and_sees_no_other(browser: WebDriver, site: Site) -> None:
    """A tenant's token opens its own page; another tenant's answers as missing."""
    _sign_in(browser, site, site.tenant)
    assert browser.current_url.endswith("/dashboard/tenants/acme_music")
    browser.get(f"{site.url}/dashboard/tenants/tiny_free")
    assert "no tenant 'tiny_free'" in browser.page_source
    _console_errors(browser)  # the 404 itself is logged by design
    browser.get(f"{site.url}/dashboard/tenants/acme_music")
    assert _console_errors(browser) == []
