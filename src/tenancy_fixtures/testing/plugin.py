"""pytest fixtures for testing an app built on tenancy-fixtures.

- ``tenancy_manager`` (one per pytest process, i.e. per xdist worker): the
  :class:`~tenancy_fixtures.FixtureManager` the plugin provisions with; its coroutine
  methods can be awaited from any event loop.
- ``tenant``: the test's tenant, loaded with the fixture set that
  ``@pytest.mark.tenant_fixtures(path)`` names. Fresh for the test and dropped after
  it whatever its outcome; or, when the test asks for ``tenant_session`` (or the marker
  says ``shared=True``), the worker's shared tenant for that set and tier, made once
  and dropped when the session ends.
- ``tenant_session``: an ORM ``AsyncSession`` in a transaction on ``tenant`` that is
  rolled back after the test; ``commit()`` only releases a SAVEPOINT, so the next test
  sees none of the rows.
- ``tenant_factory``: ``tenant_factory(tier=..., fixtures=...)`` or ``.many(n, ...)``;
  every tenant it made is dropped after the test.

A fresh tenant stays the default of ``tenant``: code under test that commits through
connections of its own (an app's ``TenantRouter``, the manager) would leave rows in a
shared tenant for the next test, and only the plugin's own session can be rolled back.

The database: ``--tenancy-database-url``, else the ini option ``tenancy_database_url``,
else ``TENANCY_DATABASE_URL``, else a SQLite data directory in the worker's temporary
directory (never ``./.tenancy``). Other settings come from ``TENANCY_*`` as usual.

Importing this module imports nothing of the library: the fixtures do, when first used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tenancy_fixtures.testing.marker import MARKER, SIGNATURE

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from tenancy_fixtures.manager import FixtureManager
    from tenancy_fixtures.testing.runtime import (
        ProvisionedTenant,
        TenancyRuntime,
        TenantFactory,
        TenantSpec,
    )

__all__ = [
    "pytest_addoption",
    "pytest_configure",
    "tenancy_manager",
    "tenant",
    "tenant_factory",
    "tenant_session",
]

SESSION_FIXTURE = "tenant_session"
_URL_OPTION = "tenancy_database_url"
_SPARES_OPTION = "tenancy_spares"
#: Spare schemas kept ready on PostgreSQL (see the README's measurements).
DEFAULT_SPARES = 0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tenancy-fixtures", "tenancy-fixtures test tenants")
    group.addoption(
        "--tenancy-database-url",
        dest=_URL_OPTION,
        default=None,
        metavar="URL",
        help="database of the test tenants (sqlite:///DIR or postgresql://...); default: "
        "ini tenancy_database_url, TENANCY_DATABASE_URL, or SQLite in a temporary directory",
    )
    group.addoption(
        "--tenancy-spares",
        dest=_SPARES_OPTION,
        default=None,
        type=int,
        metavar="N",
        help="PostgreSQL: spare tenant schemas each worker prepares at start "
        f"(default: ini tenancy_spares or {DEFAULT_SPARES})",
    )
    parser.addini(_URL_OPTION, "database URL of the test tenants", default="")
    parser.addini(_SPARES_OPTION, "spare tenant schemas per worker (PostgreSQL)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SIGNATURE.removeprefix('@pytest.mark.')}: load the fixture set at path "
        "(relative to the test file) into the test's `tenant`; shared: "
        f"the worker's tenant for the set (default: when the test asks for {SESSION_FIXTURE})",
    )


def database_url(config: pytest.Config, default_dir: Path) -> str:
    """The option, the ini value, ``TENANCY_DATABASE_URL``, or SQLite in ``default_dir``."""
    chosen = (
        config.getoption(_URL_OPTION)
        or str(config.getini(_URL_OPTION) or "")
        or os.environ.get("TENANCY_DATABASE_URL")
    )
    return chosen or f"sqlite:///{default_dir / 'data'}"


def _spares(config: pytest.Config) -> int:
    chosen = config.getoption(_SPARES_OPTION)
    if chosen is None:
        written = str(config.getini(_SPARES_OPTION) or DEFAULT_SPARES).strip()
        try:
            chosen = int(written)
        except ValueError:
            raise pytest.UsageError(
                f"the ini option {_SPARES_OPTION} must be a whole number, got {written!r}"
            ) from None
    if chosen < 0:
        raise pytest.UsageError(f"--tenancy-spares must be 0 or more, got {chosen}")
    return int(chosen)


@pytest.fixture(scope="session")
def _tenancy_runtime(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TenancyRuntime]:
    from tenancy_fixtures.settings import load_settings
    from tenancy_fixtures.testing.runtime import TenancyRuntime

    config = request.config
    directory = tmp_path_factory.mktemp("tenancy")  # per worker under xdist
    overrides: dict[str, object] = {"database_url": database_url(config, directory)}
    if "TENANCY_REJECT_DIR" not in os.environ:
        overrides["reject_dir"] = directory / "rejects"
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    runtime = TenancyRuntime(load_settings(**overrides), worker=worker, spares=_spares(config))
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def tenancy_manager(_tenancy_runtime: TenancyRuntime) -> FixtureManager:
    """The manager of this pytest process's test tenants (await it from any loop)."""
    # A stand-in whose coroutine methods run on the plugin's loop: as a FixtureManager
    # to the caller, which is how it behaves.
    manager: Any = _tenancy_runtime.public_manager
    return manager  # type: ignore[no-any-return]


def _resolver(request: pytest.FixtureRequest) -> Callable[[Path], Path]:
    base = request.path.parent

    def resolve(path: Path) -> Path:
        return path if path.is_absolute() else base / path

    return resolve


def _marked_spec(request: pytest.FixtureRequest) -> tuple[TenantSpec, bool]:
    """What the marker asks the test's tenant to be, and whether it is the shared one."""
    from tenancy_fixtures.testing.marker import read_marker
    from tenancy_fixtures.testing.runtime import TenantSpec

    shared = SESSION_FIXTURE in request.fixturenames
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return TenantSpec(), shared
    marked = read_marker(marker.args, marker.kwargs, _resolver(request))
    spec = TenantSpec(
        tier=marked.tier,
        features=marked.features,
        limits=dict(marked.limits or {}),
        fixtures=marked.fixtures,
        format=marked.format,
        options=marked.options,
    )
    return spec, shared if marked.shared is None else marked.shared


@pytest.fixture
def tenant(
    request: pytest.FixtureRequest, _tenancy_runtime: TenancyRuntime
) -> Iterator[ProvisionedTenant]:
    """The test's tenant, loaded with the set the ``tenant_fixtures`` marker names: made
    for this test and dropped afterwards, also when the test fails; or the worker's
    shared tenant for that set when the test asks for ``tenant_session``."""
    spec, shared = _marked_spec(request)
    if shared:
        yield _tenancy_runtime.shared(spec)
        return
    made = _tenancy_runtime.create(spec)
    try:
        yield made
    finally:
        _tenancy_runtime.drop(made.tenant_id)


@pytest.fixture
def tenant_session(
    tenant: ProvisionedTenant, _tenancy_runtime: TenancyRuntime
) -> Iterator[AsyncSession]:
    """An ORM ``AsyncSession`` on ``tenant``'s tables (await it from any event loop), in
    a transaction rolled back after the test: ``commit()`` releases a SAVEPOINT."""
    opened = _tenancy_runtime.open_session(tenant)
    try:
        # A stand-in whose coroutine methods run on the plugin's loop, as the manager's.
        session: Any = opened.session
        yield session
    finally:
        try:
            kept = _tenancy_runtime.close_session(opened)
        except BaseException:
            # Its transaction ended some other way (a COMMIT sent as SQL): what the test
            # wrote may be in the shared tenant, which goes.
            if tenant.shared:
                _tenancy_runtime.discard(tenant)
            raise
    if not kept and tenant.shared:
        _tenancy_runtime.discard(tenant)
        pytest.fail(
            f"the test committed the transaction of {SESSION_FIXTURE} itself (the "
            "connection's commit(), not the session's), so its rows stayed in the shared "
            f"tenant {tenant.tenant_id}; it was dropped. Commit through the session, or "
            f"mark the test @pytest.mark.{MARKER}(..., shared=False) for a fresh tenant",
            pytrace=False,
        )


@pytest.fixture
def tenant_factory(
    request: pytest.FixtureRequest, _tenancy_runtime: TenancyRuntime
) -> Iterator[TenantFactory]:
    """Makes tenants on demand (``tenant_factory(tier=...)``, ``.many(n, ...)``); all are
    dropped afterwards."""
    from tenancy_fixtures.testing.runtime import TenantFactory

    factory = TenantFactory(_tenancy_runtime, _resolver(request))
    try:
        yield factory
    finally:
        factory.drop_all()
