"""pytest fixtures for testing an app built on tenancy-fixtures.

- ``tenancy_manager`` (one per pytest process, i.e. per xdist worker): the
  :class:`~tenancy_fixtures.FixtureManager` the plugin provisions with; its coroutine
  methods can be awaited from any event loop.
- ``tenant``: a fresh tenant for one test — created, loaded with the fixture set that
  ``@pytest.mark.tenant_fixtures(path)`` names, dropped after the test whatever its
  outcome.
- ``tenant_factory``: ``tenant_factory(tier=..., fixtures=...)`` or ``.many(n, ...)``;
  every tenant it made is dropped after the test.

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

if TYPE_CHECKING:
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
]

MARKER = "tenant_fixtures"
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
        f"{MARKER}(path, *, tier='free', format=None, options=None): load the fixture set "
        "at path (relative to the test file) into the test's `tenant`",
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
        chosen = int(str(config.getini(_SPARES_OPTION) or DEFAULT_SPARES))
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


def _marked_spec(request: pytest.FixtureRequest) -> TenantSpec:
    from tenancy_fixtures.testing.runtime import TenantSpec

    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return TenantSpec()
    if len(marker.args) != 1:
        raise pytest.UsageError(f"@pytest.mark.{MARKER} takes one path, got {marker.args!r}")
    return TenantSpec(fixtures=_resolver(request)(Path(marker.args[0])), **marker.kwargs)


@pytest.fixture
def tenant(
    request: pytest.FixtureRequest, _tenancy_runtime: TenancyRuntime
) -> Iterator[ProvisionedTenant]:
    """A fresh tenant for this test, loaded with the set the ``tenant_fixtures`` marker
    names; dropped afterwards, also when the test fails."""
    made = _tenancy_runtime.create(_marked_spec(request))
    try:
        yield made
    finally:
        _tenancy_runtime.drop(made.tenant_id)


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
