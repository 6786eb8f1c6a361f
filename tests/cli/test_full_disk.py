"""``init-tenant`` on a full disk: a one-line typed error, exit 7, no file left behind.

The disk is a small tmpfs this test mounts (as root) and fills; a file size limit
(``RLIMIT_FSIZE``) gives the same refusal without root. The refused and the repeated
``init-tenant`` run the CLI in a subprocess, so what it prints on stderr is what a user
would see; the tenant made beforehand and the registry read afterwards go through the
library in-process (a CLI start-up each saved).
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.errors import StorageError

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CLI = [sys.executable, "-c", "from tenancy_fixtures.cli.app import main; main()"]
FILESYSTEM_BYTES = 2 << 20
#: Free space that takes the tenant file's copy but not the transaction's journal.
ROOM_FOR_THE_COPY_ONLY = 8192


def _cli(
    data: Path, *args: str, preexec_fn: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
    return subprocess.run(
        [*CLI, "--database-url", f"sqlite:///{data}", *args],
        env={**env, "TENANCY_ACTOR": "pytest", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=preexec_fn,
    )


def _settings(data: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{data}", actor="pytest")


def _create_keeper(data: Path) -> None:
    """The tenant there before the refused one (the control plane and template exist)."""

    async def create() -> None:
        async with FixtureManager(_settings(data)) as manager:
            await manager.create_tenant("keeper")

    asyncio.run(create())


def _listed(data: Path) -> list[str]:
    """The tenants the registry holds, as the next command would read them."""

    async def listed() -> list[str]:
        async with FixtureManager(_settings(data)) as manager:
            return [t.tenant_id for t in await manager.list_tenants()]

    return asyncio.run(listed())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for this test (root only)."""
    mountpoint = tmp_path / f"disk_{uuid.uuid4().hex[:8]}"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FILESYSTEM_BYTES}", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs (uid {os.geteuid()}): {mounted.stderr.strip()}"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(f"SKIPPED LOUDLY: {reason}; the RLIMIT_FSIZE test covers the refusal")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def _fill(disk: Path, *, leave: int) -> None:
    """Fill ``disk`` until the filesystem refuses, then free ``leave`` bytes."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(descriptor, bytes(65536))
    except OSError:
        pass
    finally:
        os.close(descriptor)
    if leave:
        os.truncate(filler, filler.stat().st_size - leave)


def _assert_refused_cleanly(result: subprocess.CompletedProcess[str], data: Path) -> str:
    """Exit 7, one ``error:`` line and no traceback; only the keeper's file is there."""
    assert StorageError.exit_code == result.returncode, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert 1 == len(errors), lines
    assert "Traceback" not in result.stderr
    # At most one log line besides: the refusal's own audit record may not fit either.
    assert len(lines) <= 2, lines
    assert ["keeper.db"] == sorted(p.name for p in (data / "tenants").iterdir())
    assert [] == [p.name for p in data.iterdir() if ".db." in p.name]
    return errors[0]


@pytest.mark.parametrize(
    "leave", [0, ROOM_FOR_THE_COPY_ONLY], ids=["no_room_for_the_copy", "no_room_to_commit"]
)
def test_init_tenant_on_a_full_disk_exits_7_in_one_line_and_leaves_no_file(
    small_disk: Path, leave: int
) -> None:
    """A full tmpfs: the copy or the transaction fails with a StorageError on one line."""
    data = small_disk / "data"
    _create_keeper(data)
    template = next(data.glob("template-*.db"))
    _fill(small_disk, leave=leave and template.stat().st_size + leave)

    result = _cli(data, "init-tenant", "victim")

    line = _assert_refused_cleanly(result, data)
    assert line.startswith("error: tenant 'victim': ")
    assert ["keeper"] == _listed(data)
    (small_disk / "filler").unlink()
    assert 0 == _cli(data, "init-tenant", "victim").returncode


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_init_tenant_beyond_the_file_size_limit_exits_7_in_one_line_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    """RLIMIT_FSIZE below the tenant file's size: the copy is refused cleanly."""
    data = tmp_path / "data"
    _create_keeper(data)
    template = next(data.glob("template-*.db"))

    result = _cli(
        data, "init-tenant", "victim", preexec_fn=_file_size_limit(template.stat().st_size // 2)
    )

    line = _assert_refused_cleanly(result, data)
    assert line.startswith("error: tenant 'victim': no room for a new tenant file in ")
