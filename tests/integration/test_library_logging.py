"""What a program using the library sees of its logs, on both backends: nothing on stdout,
no local variables nor record values, and info events only once it configures logging."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

#: A value that exists only in the fixture file: the script's source never holds it, so
#: it can reach the output only as a record value (a local variable of a library frame).
SECRET = "Listener Quartz-Heron"

#: A user's program: create a tenant, a refused load, a load that fails unexpectedly
#: (its progress callback raises), drop the tenant. It prints nothing itself.
SCRIPT = """
import asyncio, logging, sys
from pathlib import Path
from tenancy_fixtures import FixtureManager, TenancyFixturesError

tenant, good, bad, configure = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
if configure == "yes":
    logging.basicConfig(level=logging.INFO)  # the application asks for logs

def broken_progress(table, rows):
    raise RuntimeError("the progress display broke")

async def main():
    async with FixtureManager() as manager:
        await manager.create_tenant(tenant)
        try:
            try:
                await manager.load_fixtures(tenant, bad)
            except TenancyFixturesError:
                pass
            try:
                await manager.load_fixtures(tenant, good, progress=broken_progress)
            except RuntimeError:
                pass
        finally:
            await manager.drop_tenant(tenant)

asyncio.run(main())
"""


def user(product: str) -> dict[str, str]:
    return {
        "user_id": "listener-1",
        "display_name": SECRET,
        "email": "listener@example.com",
        "country": "SE",
        "product": product,
        "created_at": "2026-01-01T00:00:00+00:00",
    }


def fixture_set(directory: Path, product: str) -> Path:
    directory.mkdir()
    (directory / "users.jsonl").write_text(json.dumps(user(product)) + "\n", encoding="utf-8")
    return directory


@dataclass(frozen=True)
class Script:
    """SCRIPT against one backend with only the database URL set, on a tenant of its own."""

    database_url: str
    directory: Path
    tenant: str

    def run(self, *, configure_logging: bool = False) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
        env["TENANCY_DATABASE_URL"] = self.database_url
        good, bad = self.directory / "good", self.directory / "bad"
        configure = "yes" if configure_logging else "no"
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT, self.tenant, str(good), str(bad), configure],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.directory,
            timeout=120,
        )
        assert 0 == result.returncode, result.stderr
        return result


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def script(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Script:
    """The script on each backend, for the module (a process start costs ~1 s of CPU)."""
    directory = tmp_path_factory.mktemp("logs")
    fixture_set(directory / "good", "free")
    fixture_set(directory / "bad", "gold")  # refused: no such product
    if request.param == "postgresql":
        database_url = str(request.getfixturevalue("postgres_url"))
    else:
        database_url = f"sqlite:///{directory / 'data'}"
    return Script(database_url, directory, f"logs_{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def quiet(script: Script) -> subprocess.CompletedProcess[str]:
    """The script's run without logging configured: the same run for every test that
    only reads its output."""
    return script.run()


def test_a_library_script_prints_nothing_on_stdout(
    quiet: subprocess.CompletedProcess[str],
) -> None:
    """Creating a tenant, a refused load and a failed load write nothing to stdout."""
    assert "" == quiet.stdout


def test_a_failed_load_logs_no_local_variables_nor_record_values(
    quiet: subprocess.CompletedProcess[str],
) -> None:
    """The failed load is reported on stderr with a plain traceback: no locals, no rows."""
    output = quiet.stdout + quiet.stderr
    assert "operation_failed" in quiet.stderr
    assert "RuntimeError: the progress display broke" in quiet.stderr
    assert SECRET not in output
    assert "locals" not in output


def test_info_events_wait_for_the_application_to_configure_logging(
    script: Script, quiet: subprocess.CompletedProcess[str]
) -> None:
    """``tenant_created`` is left out by default and logged once logging is configured."""
    configured = script.run(configure_logging=True)

    created = f"INFO:tenancy_fixtures.tenancy.tenants:tenant_created tenant_id='{script.tenant}'"
    assert (False, True) == (created in quiet.stderr, created in configured.stderr)
    assert "" == configured.stdout
