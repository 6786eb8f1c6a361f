"""What a program using the library sees of its logs, on both backends: nothing on stdout,
no local variables nor record values, and info events only once it configures logging."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
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

Run = Callable[..., "subprocess.CompletedProcess[str]"]


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


@pytest.fixture
def tenant() -> str:
    return f"logs_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def run_script(database_url: str, tmp_path: Path, tenant: str) -> Run:
    """Run SCRIPT against this test's backend with only the database URL set."""
    good = fixture_set(tmp_path / "good", "free")
    bad = fixture_set(tmp_path / "bad", "gold")  # refused: no such product
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
    env["TENANCY_DATABASE_URL"] = database_url

    def run(*, configure_logging: bool = False) -> subprocess.CompletedProcess[str]:
        configure = "yes" if configure_logging else "no"
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT, tenant, str(good), str(bad), configure],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert 0 == result.returncode, result.stderr
        return result

    return run


def test_a_library_script_prints_nothing_on_stdout(run_script: Run) -> None:
    """Creating a tenant, a refused load and a failed load write nothing to stdout."""
    result = run_script()

    assert "" == result.stdout


def test_a_failed_load_logs_no_local_variables_nor_record_values(run_script: Run) -> None:
    """The failed load is reported on stderr with a plain traceback: no locals, no rows."""
    result = run_script()

    output = result.stdout + result.stderr
    assert "operation_failed" in result.stderr
    assert "RuntimeError: the progress display broke" in result.stderr
    assert SECRET not in output
    assert "locals" not in output


def test_info_events_wait_for_the_application_to_configure_logging(
    run_script: Run, tenant: str
) -> None:
    """``tenant_created`` is left out by default and logged once logging is configured."""
    quiet = run_script()
    configured = run_script(configure_logging=True)

    created = f"INFO:tenancy_fixtures.tenancy.tenants:tenant_created tenant_id='{tenant}'"
    assert (False, True) == (created in quiet.stderr, created in configured.stderr)
    assert "" == configured.stdout
