"""Two databases sharing one reject directory, each with a tenant of the same id: what a
drop or an erasure does to one database's reject files never touches the other's.

The default ``reject_dir`` (``./rejects``) is the same for every database run from one
directory, SQLite data directories and PostgreSQL databases alike. Each pair below is
two databases of their own (a PostgreSQL one is made for the test and dropped after).
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from sqlalchemy import update

from tenancy_fixtures import FixtureManager, TenantFixture
from tenancy_fixtures.store.control_plane import control_metadata
from tests.integration.chain_db import own_database

TENANT = "acme"
SUBJECT = "pii-user"
USERS = (
    "user_id,display_name,email,country,product,created_at\n"
    "good-user,Good User,good@example.com,GB,free,2026-01-01T00:00:00+00:00\n"
    f"{SUBJECT},Pii Person,pii@@example.com,GB,free,2026-01-01T00:00:00+00:00\n"
)
SQLITE_PAIR = pytest.param(("sqlite", "sqlite"), id="sqlite+sqlite")
MIXED_PAIR = pytest.param(
    ("sqlite", "postgresql"), id="sqlite+postgresql", marks=pytest.mark.postgres
)
PG_PAIR = pytest.param(
    ("postgresql", "postgresql"), id="postgresql+postgresql", marks=pytest.mark.postgres
)

#: A lenient load that dies (SIGKILL: no clean-up, no audit record) once it has written
#: its reject file's ``.partial``, before its transaction commits.
CRASHING_LOAD = """
import asyncio, os, signal, sys
from pathlib import Path
from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.loading import load

async def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

load.apply_fixtures = die

async def main():
    url, rejects, tenant, source = sys.argv[1:]
    settings = Settings(database_url=url, reject_dir=Path(rejects), actor="pytest")
    async with FixtureManager(settings) as manager:
        await manager.load_fixtures(tenant, source, validation="lenient")

asyncio.run(main())
"""


@pytest.fixture
def bad_set(tmp_path: Path) -> Path:
    """A set of one users file: one good user, one the e-mail format rule refuses."""
    directory = tmp_path / "set"
    directory.mkdir()
    (directory / "users.csv").write_text(USERS, encoding="utf-8")
    return directory


class Databases:
    """Two databases of the test's own that share ``rejects``; ``urls`` by name."""

    def __init__(self, rejects: Path) -> None:
        self.rejects = rejects
        self.urls: dict[str, str] = {}
        self.managers: dict[str, FixtureManager] = {}


@pytest.fixture
def pair() -> tuple[str, str]:
    """The backends of the two databases (tests parametrize it)."""
    return ("sqlite", "sqlite")


@pytest.fixture
def admin_url(pair: tuple[str, str], request: pytest.FixtureRequest) -> str:
    """The run's PostgreSQL database to make databases from, when the pair has one."""
    return str(request.getfixturevalue("postgres_url")) if "postgresql" in pair else ""


@pytest.fixture
async def dbs(pair: tuple[str, str], tmp_path: Path, admin_url: str) -> AsyncIterator[Databases]:
    """Databases ``a`` and ``b`` of the backends ``pair``, their managers open, one
    reject directory for both, a tenant ``acme`` in each."""
    databases = Databases(tmp_path / "rejects")
    async with AsyncExitStack() as stack:
        for name, backend in zip("ab", pair, strict=True):
            (tmp_path / name).mkdir()
            own = await stack.enter_async_context(own_database(backend, tmp_path / name, admin_url))
            manager = own.manager(reject_dir=databases.rejects)
            databases.managers[name] = await stack.enter_async_context(manager)
            databases.urls[name] = own.url
            await manager.create_tenant(TenantFixture(TENANT, tier="enterprise"))
        yield databases


def crash_a_lenient_load(url: str, rejects: Path, source: Path) -> None:
    """Run a lenient load of ``source`` into ``acme`` that is killed before it commits."""
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_LOAD, url, str(rejects), TENANT, str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert -9 == done.returncode, done.stderr


async def both_set_aside(dbs: Databases, bad_set: Path) -> tuple[Path, Path]:
    """Lenient loads of ``bad_set`` into both databases' ``acme``: their reject files."""
    files = []
    for name in "ab":
        report = await dbs.managers[name].load_fixtures(TENANT, bad_set, validation="lenient")
        assert report.reject_file is not None
        files.append(report.reject_file)
    return files[0], files[1]


def names(directory: Path) -> set[str]:
    """The names of the files in ``directory``."""
    return {p.name for p in directory.iterdir()}


@pytest.mark.parametrize("pair", [SQLITE_PAIR, MIXED_PAIR, PG_PAIR])
async def test_dropping_a_tenant_leaves_another_databases_reject_files_of_the_same_tenant_id(
    dbs: Databases, bad_set: Path
) -> None:
    """Both databases' ``acme`` set a record aside into the shared directory; dropping
    ``acme`` in one deletes its reject file only."""
    a = dbs.managers["a"]
    _, theirs = await both_set_aside(dbs, bad_set)
    before = theirs.read_bytes()

    await a.drop_tenant(TENANT)

    assert {theirs.name} == names(dbs.rejects)
    assert before == theirs.read_bytes()


@pytest.mark.parametrize("pair", [SQLITE_PAIR, MIXED_PAIR])
async def test_dropping_a_tenant_removes_the_partial_reject_file_of_its_crashed_load_only(
    dbs: Databases, bad_set: Path
) -> None:
    """A load killed before its commit recorded nothing, and leaves its ``.partial``
    behind; the drop removes that file of its own database, and not the other's."""
    crash_a_lenient_load(dbs.urls["a"], dbs.rejects, bad_set)
    mine = names(dbs.rejects)
    crash_a_lenient_load(dbs.urls["b"], dbs.rejects, bad_set)
    theirs = names(dbs.rejects) - mine
    assert 1 == len(mine) == len(theirs)
    assert all(n.endswith(".jsonl.partial") for n in mine | theirs)

    await dbs.managers["a"].drop_tenant(TENANT)

    assert theirs == names(dbs.rejects)


@pytest.mark.parametrize("pair", [SQLITE_PAIR, MIXED_PAIR])
async def test_erasing_a_subject_leaves_another_databases_reject_files_of_the_same_tenant_id(
    dbs: Databases, bad_set: Path
) -> None:
    """The refused record of the subject is in both databases' reject files of ``acme``;
    erasing the subject in one scrubs its file only."""
    a = dbs.managers["a"]
    mine, theirs = await both_set_aside(dbs, bad_set)
    before = theirs.read_bytes()

    erased = await a.erase_subject(TENANT, SUBJECT)

    assert 1 == erased.reject_lines
    assert not mine.exists()
    assert before == theirs.read_bytes()


@pytest.mark.parametrize("pair", [SQLITE_PAIR, MIXED_PAIR])
async def test_an_erasure_check_does_not_report_another_databases_reject_files(
    dbs: Databases, bad_set: Path
) -> None:
    """After the subject's erasure in one database, the other's ``acme`` sets the same
    record aside; the first database's check finds nothing of the subject left."""
    a, b = dbs.managers["a"], dbs.managers["b"]
    await a.load_fixtures(TENANT, bad_set, validation="lenient")
    await a.erase_subject(TENANT, SUBJECT)
    theirs = await b.load_fixtures(TENANT, bad_set, validation="lenient")
    assert theirs.reject_file is not None

    check = await a.verify_erasure(TENANT, SUBJECT)

    assert [] == check.remnants
    assert (await b.verify_erasure(TENANT, SUBJECT)).remnants


async def test_a_drop_removes_a_recorded_reject_file_named_before_the_plane_id_only(
    dbs: Databases, bad_set: Path
) -> None:
    """A reject file named ``<tenant>-<run_id>.jsonl`` (as loads named it before) that
    a run of the database recorded goes with the tenant; one no run of it recorded may be
    another database's and stays."""
    a = dbs.managers["a"]
    report = await a.load_fixtures(TENANT, bad_set, validation="lenient")
    assert report.reject_file is not None
    old_name = report.reject_file.with_name(f"{TENANT}-{report.run_id}.jsonl")
    report.reject_file.rename(old_name)
    runs = control_metadata.tables["tenancy.runs"]
    async with a.store.control() as conn:
        await conn.execute(
            update(runs)
            .where(runs.c.run_id == report.run_id)
            .values(detail={"reject_file": str(old_name.resolve())})
        )
    unrecorded = dbs.rejects / f"{TENANT}-{uuid.uuid4().hex}.jsonl"
    unrecorded.write_text("{}\n", encoding="utf-8")

    await a.drop_tenant(TENANT)

    assert {unrecorded.name} == names(dbs.rejects)


def _renamed(path: Path, name: str) -> Path:
    return path.rename(path.with_name(name))


async def _as_written_by_0_1_0(manager: FixtureManager, reject_file: Path, run_id: str) -> Path:
    """``reject_file`` renamed as 0.1.0 named it (``<tenant>-<run_id>.jsonl``), its path
    not recorded in the run (0.1.0 recorded none)."""
    old_name = _renamed(reject_file, f"{TENANT}-{run_id}.jsonl")
    runs = control_metadata.tables["tenancy.runs"]
    async with manager.store.control() as conn:
        await conn.execute(update(runs).where(runs.c.run_id == run_id).values(detail={}))
    return old_name


async def test_a_reject_file_of_0_1_0_is_scrubbed_and_dropped_by_its_runs_id(
    dbs: Databases, bad_set: Path
) -> None:
    """0.1.0 named reject files ``<tenant>-<run_id>.jsonl`` and recorded no path: found
    by a run id of the tenant's loads, they are scrubbed by an erasure and deleted by a
    drop (a name-pattern sweep found them before the plane id; its removal lost them)."""
    a = dbs.managers["a"]
    report = await a.load_fixtures(TENANT, bad_set, validation="lenient")
    assert report.reject_file is not None
    legacy = await _as_written_by_0_1_0(a, report.reject_file, report.run_id)

    erased = await a.erase_subject(TENANT, SUBJECT)
    assert 1 == erased.reject_lines
    assert [] == (await a.verify_erasure(TENANT, SUBJECT)).remnants
    await a.drop_tenant(TENANT)

    assert not legacy.exists()
