"""Fixtures of the plugin tests: inner pytest runs (``pytester``) that use the plugin
the way an app's test suite would, on the backend of each outer test.

``pytester`` itself is enabled in ``tests/conftest.py`` (pytest reads ``pytest_plugins``
only from the top-level conftest).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tenancy_fixtures import FixtureManager, Settings

#: Two artists: what the marker's set loads into a test's tenant.
ARTISTS = [
    {"artist_id": "3sw5U4ll7TYGsQDXjCJzeR", "name": "First", "popularity": 50},
    {"artist_id": "0OdUWJ0sBjDrqHygGUXeCF", "name": "Second", "popularity": 60},
]

_INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
asyncio_default_test_loop_scope = function
"""

InnerRun = Callable[..., pytest.RunResult]


#: The plugins an inner run needs, named instead of loaded from every installed entry
#: point: autoloading also imports hypothesis and schemathesis, ~1.7 s per process (the
#: run and each xdist worker). test_defaults.py loads the plugin by its entry point.
_INNER_PLUGINS = ("tenancy_fixtures.testing.plugin", "pytest_asyncio.plugin", "xdist.plugin")


@pytest.fixture
def inner(
    pytester: pytest.Pytester, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> InnerRun:
    """Runs the inner suite in a subprocess on this test's database (xdist needs one);
    the inner project has a fixture set ``artists_set/`` next to its tests."""
    pytester.makefile(".ini", pytest=_INI)
    artists = pytester.path / "artists_set"
    artists.mkdir()
    (artists / "artists.json").write_text(json.dumps(ARTISTS))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugins = [arg for name in _INNER_PLUGINS for arg in ("-p", name)]

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess(
            *plugins, "-p", "no:cacheprovider", "--tenancy-database-url", database_url, *args
        )

    return run


async def tenants_left(database_url: str) -> list[str]:
    """The tenants the database still holds."""
    async with FixtureManager(Settings(database_url=database_url, actor="pytest")) as manager:
        return [t.tenant_id for t in await manager.list_tenants()]


def written_ids(directory: Path) -> list[str]:
    """Tenant ids the inner tests wrote, one file each."""
    return sorted(p.read_text() for p in directory.glob("*.id"))
