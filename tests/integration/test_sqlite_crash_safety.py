"""``kill -9`` during ``init-tenant``, ``cleanup`` or ``load-fixtures`` on SQLite leaves
nothing inconsistent.

Each kill point runs the real CLI in a child process on a copy of a prepared data
directory and kills it there; then a fresh manager (as the next command would) must find every
tenant file registered and every registered tenant stored, no temporary file, tomb or
super-journal, and a repeat of the command must agree with ``list``.

A load killed inside its commit must likewise leave its rows and their records together:
settling a super-journal rolls its tenant file back, it never just deletes the journal.

The kill points are deterministic, of two kinds:

* the store's test-only crash points (``TENANCY_TEST_CRASH_AT``, see
  ``tenancy_fixtures.store.crash_points``): every step of create and drop, before each
  SQL statement of the create transaction and before its commit;
* under ``strace``, the k-th ``fdatasync``, ``unlink`` or ``pwrite64`` system call of a
  thread (``-e inject=...:signal=SIGKILL``): points inside SQLite's commit of the two
  files, where its super-journal lives.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tenancy_fixtures import FixtureManager, Settings, TenantAlreadyExistsError, TenantNotFoundError
from tenancy_fixtures.store.crash_points import CRASH_AT, CRASH_TRACE

#: The zygotes and seeds are made once per worker that runs one of these tests: they
#: share one xdist worker.
pytestmark = pytest.mark.xdist_group("sqlite_crash")

KEEPER = "keeper"
VICTIM = "victim"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: Syscalls whose every call is a kill point; pwrite64 (many) is sampled.
EVERY_CALL = ("fdatasync", "unlink")
PWRITE_SAMPLES = 8
TIMEOUT_SECONDS = 60.0
SIGKILLED = -9

#: A process that imports the CLI once (and runs one command, to import what is imported
#: lazily), then forks a child per request, so a kill point costs a fork, not a start-up.
#: A request is a JSON line {"argv", "env", "strace"}; the child runs the CLI with
#: ``argv`` and ``env`` added to its environment. With ``strace`` (its options), the
#: child stops itself first, strace attaches to it with those options, and it goes on:
#: syscalls are counted from there. The answer is ``EXIT <code>`` (negative: the signal).
ZYGOTE_SCRIPT = """
import json, os, signal, subprocess, sys, tempfile, time
from tenancy_fixtures.cli.app import main

def cli(argv):
    sys.argv = ["tenancy-fixtures", *argv]
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    else:
        code = 0
    sys.stdout.flush()
    sys.stderr.flush()
    return code

saved = os.dup(1)
with tempfile.TemporaryDirectory() as warm, open(os.devnull, "w") as devnull:
    os.dup2(devnull.fileno(), 1)
    cli(["--database-url", f"sqlite:///{warm}/d", "init-tenant", "warm"])
    os.dup2(saved, 1)
print("READY", flush=True)
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.environ.update(request["env"])
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        if request["strace"]:
            os.kill(os.getpid(), signal.SIGSTOP)
        os._exit(cli(request["argv"]))
    tracer = None
    if request["strace"]:
        os.waitpid(pid, os.WUNTRACED)
        tracer = subprocess.Popen(["strace", "-p", str(pid), *request["strace"]])
        status = f"/proc/{pid}/status"
        while "TracerPid:\t0" in open(status).read() and tracer.poll() is None:
            time.sleep(0.005)
        if tracer.poll() is not None:  # strace could not attach: report it, do not hang
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            print("EXIT", "strace-failed", flush=True)
            continue
        os.kill(pid, signal.SIGCONT)
    _, status = os.waitpid(pid, 0)
    if tracer is not None:
        tracer.wait()
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    print("EXIT", code, flush=True)
"""


@dataclass(frozen=True)
class KillPoint:
    """Where to kill: a crash point (``step#n``) or the ``n``-th call of a syscall."""

    crash_point: str | None = None
    syscall: str | None = None
    call: int = 0

    def __str__(self) -> str:
        return self.crash_point or f"{self.syscall}#{self.call}"


class Zygote:
    """One forking CLI process (see ``ZYGOTE_SCRIPT``)."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
        self.process = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**env, "TENANCY_ACTOR": "crash-test", "PYTHONUNBUFFERED": "1"},
        )
        assert self._line() == "READY"

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def run(
        self,
        data: Path,
        operation: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        strace: Sequence[str] = (),
    ) -> int:
        """Run the CLI on ``data``; its exit code (negative: killed by that signal)."""
        assert self.process.stdin is not None
        argv = ["--database-url", f"sqlite:///{data}", *operation]
        request = {"argv": argv, "env": env or {}, "strace": list(strace)}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self._line()
        assert re.fullmatch(r"EXIT -?\d+", answer), answer
        return int(answer.split()[1])

    def close(self) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=TIMEOUT_SECONDS)
        self.process.stdout.close()


@pytest.fixture(scope="module")
def zygotes() -> Iterator[list[Zygote]]:
    """Two forking CLI processes: kill points run two at a time."""
    started = [Zygote(), Zygote()]
    yield started
    for zygote in started:
        zygote.close()


def _settings(data: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{data}", actor="pytest")


def _run(zygote: Zygote, data: Path, operation: Sequence[str], point: KillPoint) -> int:
    """Run ``operation`` on ``data``, killed at ``point``; its exit code."""
    if point.crash_point is not None:
        return zygote.run(data, operation, env={CRASH_AT: point.crash_point})
    inject = f"inject={point.syscall}:signal=SIGKILL:when={point.call}"
    options = ["-f", "-qq", "-o", "/dev/null", "-e", f"trace={point.syscall}", "-e", inject]
    return zygote.run(data, operation, strace=options)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Data directories to copy: ``create`` holds the keeper tenant (so the control
    plane and template file exist); ``drop`` also holds the victim."""
    create = tmp_path_factory.mktemp("seed_create") / "data"
    drop = tmp_path_factory.mktemp("seed_drop") / "data"

    async def prepare() -> None:
        async with FixtureManager(_settings(create)) as manager:
            await manager.create_tenant(KEEPER)
        shutil.copytree(create, drop)
        async with FixtureManager(_settings(drop)) as manager:
            await manager.create_tenant(VICTIM)

    asyncio.run(prepare())
    return {"create": create, "drop": drop}


def _copy(seed: Path, root: Path, name: str) -> Path:
    target = root / re.sub(r"[^a-z0-9_]+", "_", name) / "data"
    shutil.copytree(seed, target)
    return target


def _file_problems(data: Path, registered: set[str]) -> list[str]:
    """Tenant files that are not registered or the reverse, and files left behind."""
    problems = []
    names = sorted(p.name for p in (data / "tenants").iterdir())
    files = {n.removesuffix(".db") for n in names if re.fullmatch(r"[a-z][a-z0-9_]*\.db", n)}
    if files != registered:
        problems.append(f"tenant files {sorted(files)} but registered {sorted(registered)}")
    leftovers = [n for n in names if n.removesuffix(".db") not in files]
    leftovers += [p.name for p in data.glob("template-*.db.*")]
    if leftovers:
        problems.append(f"left behind: {leftovers}")
    for database in [data / "tenancy.db", *(data / "tenants").glob("*.db")]:
        with sqlite3.connect(database) as check:
            verdict = check.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            problems.append(f"{database.name}: {verdict}")
    return problems


async def _inconsistencies(data: Path, operation: Sequence[str]) -> list[str]:
    """What is wrong with ``data`` after a killed ``operation`` on the victim, as the next
    command sees it; then the operation is repeated and must agree with ``list``."""
    async with FixtureManager(_settings(data)) as manager:
        listed = {t.tenant_id for t in await manager.list_tenants()}
        problems = _file_problems(data, listed)
        mismatch = await manager.store.registry_mismatch()
        if mismatch.unregistered or mismatch.missing:
            problems.append(f"validate-data --all would report {mismatch}")
        if operation[0] == "init-tenant":
            try:
                await manager.create_tenant(VICTIM)
                if VICTIM in listed:
                    problems.append("init-tenant succeeded for a listed tenant")
            except TenantAlreadyExistsError:
                if VICTIM not in listed:
                    problems.append("init-tenant says it exists for an unlisted tenant")
        elif operation[0] == "load-fixtures":
            problems += await _load_problems(manager)
        else:
            try:
                await manager.drop_tenant(VICTIM)
                if VICTIM not in listed:
                    problems.append("cleanup succeeded for an unlisted tenant")
            except TenantNotFoundError:
                if VICTIM in listed:
                    problems.append("cleanup says it does not exist for a listed tenant")
    return problems


async def _load_problems(manager: FixtureManager) -> list[str]:
    """A killed load left all of its rows and records or none; loading again works."""
    problems = []
    status = await manager.tenant_status(VICTIM)
    loaded = set(status.fixtures) - {"schema", "config"}
    if not loaded and status.total_rows:
        problems.append(f"{status.total_rows} rows but no data fixture recorded")
    if not (await manager.validate_tenant(VICTIM)).ok:
        problems.append("validate-data fails after the kill")
    await manager.load_fixtures(VICTIM)
    if not (await manager.validate_tenant(VICTIM)).ok:
        problems.append("validate-data fails after loading again")
    return problems


def _crash_points(
    zygote: Zygote, seed: Path, root: Path, operation: Sequence[str]
) -> list[KillPoint]:
    """Every crash point one uninterrupted run of ``operation`` passes."""
    trace = root / "trace.txt"
    data = _copy(seed, root, "traced")
    assert 0 == zygote.run(data, operation, env={CRASH_TRACE: str(trace)})
    return [KillPoint(crash_point=line) for line in trace.read_text().split()]


def _strace_available() -> None:
    """Skip loudly (fail in CI) where strace cannot attach to a running process."""
    sleeper = subprocess.Popen(["sleep", "30"])
    tracer: subprocess.Popen[str] | None = None
    reason = "it did not attach"
    try:
        tracer = subprocess.Popen(
            ["strace", "-qq", "-o", os.devnull, "-p", str(sleeper.pid)],
            stderr=subprocess.PIPE,
            text=True,
        )
        status = Path(f"/proc/{sleeper.pid}/status")
        deadline = time.monotonic() + 10
        while tracer.poll() is None and time.monotonic() < deadline:
            if "TracerPid:\t0" not in status.read_text():
                return
            time.sleep(0.01)
    except OSError as exc:
        reason = str(exc)
    finally:
        sleeper.kill()
        sleeper.wait()
        if tracer is not None:
            tracer.kill()
            reason = (tracer.communicate()[1] or "").strip() or reason
    if IN_CI:
        pytest.fail(f"CI=true and strace cannot trace here: {reason}", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: strace cannot trace here: {reason}")


def _syscall_points(
    zygote: Zygote, seed: Path, root: Path, operation: Sequence[str]
) -> list[KillPoint]:
    """The k-th call of each syscall of ``EVERY_CALL`` for every k one run reaches in a
    thread, and ``PWRITE_SAMPLES`` of the busiest thread's page writes, evenly spread."""
    log = root / "strace.txt"
    watched = "trace=pwrite64," + ",".join(EVERY_CALL)
    data = _copy(seed, root, "strace_traced")
    assert 0 == zygote.run(data, operation, strace=["-f", "-qq", "-o", str(log), "-e", watched])
    calls: dict[str, Counter[str]] = {}
    for line in log.read_text().splitlines():
        if match := re.match(r"(\d+)\s+(\w+)\(", line):
            calls.setdefault(match[2], Counter())[match[1]] += 1
    points = []
    for syscall, per_thread in sorted(calls.items()):
        most = max(per_thread.values())
        if syscall in EVERY_CALL:
            points += [KillPoint(syscall=syscall, call=k) for k in range(1, most + 1)]
        else:
            spread = {1 + i * (most - 1) // (PWRITE_SAMPLES - 1) for i in range(PWRITE_SAMPLES)}
            points += [KillPoint(syscall=syscall, call=k) for k in sorted(spread)]
    return points


def _kill_everywhere(
    zygotes: list[Zygote], seed: Path, root: Path, operation: Sequence[str], points: list[KillPoint]
) -> dict[str, list[str]]:
    """Kill ``operation`` at each point, one copy of ``seed`` each, two at a time; the
    problems the next command finds after each kill."""

    def kill(zygote: Zygote, share: list[KillPoint]) -> dict[str, list[str]]:
        found = {}
        for point in share:
            data = _copy(seed, root, str(point))
            code = _run(zygote, data, operation, point)
            problems = [] if code == SIGKILLED else [f"not killed (exit {code})"]
            problems += asyncio.run(_inconsistencies(data, operation))
            if problems:
                found[str(point)] = problems
        return found

    with ThreadPoolExecutor(max_workers=len(zygotes)) as pool:
        shares = [points[i :: len(zygotes)] for i in range(len(zygotes))]
        return {k: v for found in pool.map(kill, zygotes, shares) for k, v in found.items()}


def test_init_tenant_killed_at_every_crash_point_leaves_a_consistent_data_directory(
    zygotes: list[Zygote], seeds: dict[str, Path], tmp_path: Path
) -> None:
    """kill -9 at each step of init-tenant: no file without its registry row or the
    reverse, no temporary file or super-journal, and init-tenant agrees with list."""
    operation = ["init-tenant", VICTIM]
    points = _crash_points(zygotes[0], seeds["create"], tmp_path, operation)
    assert len(points) >= 15, points

    assert {} == _kill_everywhere(zygotes, seeds["create"], tmp_path, operation, points)


def test_init_tenant_killed_inside_the_sqlite_commit_leaves_a_consistent_data_directory(
    zygotes: list[Zygote], seeds: dict[str, Path], tmp_path: Path
) -> None:
    """kill -9 at each fdatasync and unlink, and at sampled page writes, of init-tenant:
    SQLite's super-journal and the half-committed files are settled by the next command."""
    _strace_available()
    operation = ["init-tenant", VICTIM]
    points = _syscall_points(zygotes[0], seeds["create"], tmp_path, operation)
    assert len(points) >= 15, points

    assert {} == _kill_everywhere(zygotes, seeds["create"], tmp_path, operation, points)


def test_cleanup_killed_at_every_crash_point_leaves_a_consistent_data_directory(
    zygotes: list[Zygote], seeds: dict[str, Path], tmp_path: Path
) -> None:
    """kill -9 at each step of cleanup: the tenant is either wholly there or wholly gone
    (the drop commits the control plane alone), and no tomb is left."""
    operation = ["cleanup", "--yes", VICTIM]
    points = _crash_points(zygotes[0], seeds["drop"], tmp_path, operation)
    assert len(points) >= 5, points

    assert {} == _kill_everywhere(zygotes, seeds["drop"], tmp_path, operation, points)


def test_load_fixtures_killed_inside_the_sqlite_commit_keeps_rows_and_records_together(
    zygotes: list[Zygote], seeds: dict[str, Path], tmp_path: Path
) -> None:
    """kill -9 inside the commit of a load (tenant file and control plane in one
    transaction): settling rolls back both or neither, so no row lacks its record."""
    _strace_available()
    operation = ["load-fixtures", VICTIM]
    points = [
        p
        for p in _syscall_points(zygotes[0], seeds["drop"], tmp_path, operation)
        if p.syscall in EVERY_CALL
    ]
    assert len(points) >= 5, points

    assert {} == _kill_everywhere(zygotes, seeds["drop"], tmp_path, operation, points)
