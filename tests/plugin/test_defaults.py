"""Where the plugin puts tenants when told nothing, and what loading it costs."""

from __future__ import annotations

import subprocess
import sys

import pytest

_ONE_TEST = """\
def test_uses_a_tenant(tenant, tenancy_manager):
    url = tenancy_manager.settings.database_url
    assert url.startswith("sqlite:///")
    assert "pytest-of-" in url or "basetemp" in url
"""


def test_without_settings_tenants_go_to_sqlite_in_the_temporary_directory(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never ``./.tenancy``: a SQLite data directory under pytest's temporary directory."""
    monkeypatch.delenv("TENANCY_DATABASE_URL", raising=False)
    pytester.makepyfile(test_inner=_ONE_TEST)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)
    assert not (pytester.path / ".tenancy").exists()
    assert not (pytester.path / "rejects").exists()


def test_the_command_line_option_wins_over_the_ini_option(pytester: pytest.Pytester) -> None:
    """``--tenancy-database-url`` over ``tenancy_database_url`` in the ini file."""
    chosen = pytester.path / "chosen"
    pytester.makeini(f"[pytest]\ntenancy_database_url = sqlite:///{pytester.path / 'ini'}\n")
    pytester.makepyfile(
        test_inner=f"""
def test_uses_the_option(tenancy_manager):
    assert tenancy_manager.settings.database_url == "sqlite:///{chosen}"
"""
    )

    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--tenancy-database-url", f"sqlite:///{chosen}"
    )

    result.assert_outcomes(passed=1)


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    """``--strict-markers`` accepts ``tenant_fixtures``; ``--markers`` lists it."""
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--markers")

    result.stdout.fnmatch_lines(["@pytest.mark.tenant_fixtures(path, *, tier=*"])


def test_loading_the_plugin_imports_nothing_of_the_library() -> None:
    """pytest loads the plugin in every run of a project that installs the package."""
    code = (
        "import sys, tenancy_fixtures.testing.plugin; "
        "print(sorted(m for m in sys.modules if m.startswith('tenancy_fixtures')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert done.stdout.strip() == str(
        [
            "tenancy_fixtures",
            "tenancy_fixtures.testing",
            "tenancy_fixtures.testing.marker",
            "tenancy_fixtures.testing.plugin",
        ]
    )


def test_an_ini_spares_value_that_is_no_number_errors_naming_the_option(
    pytester: pytest.Pytester,
) -> None:
    """``tenancy_spares = two`` is refused naming the option, not as a bare ValueError."""
    pytester.makeini("[pytest]\ntenancy_spares = two\n")
    pytester.makepyfile(test_inner="def test_asks(tenancy_manager):\n    pass\n")

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*tenancy_spares must be a whole number, got 'two'*"])
