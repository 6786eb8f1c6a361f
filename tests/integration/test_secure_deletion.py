"""What an erasure or a retention purge removes is gone from the SQLite files too, not
left in their free space: SQLite keeps a deleted or rewritten row's bytes in the page
until a later write reuses it, so a copy of the tenant's file (a backup) still held the
person's e-mail, name and id after their erasure, and the expired events after a purge.

Where SQLite is built with ``SQLITE_SECURE_DELETE`` (Debian's build, and so this
machine's, turns it on by default) the bytes went anyway; SQLite's own default is off,
which the tests here set for the tenant file as each connection opens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tenancy_fixtures import FixtureManager, Settings, TenantFixture
from tenancy_fixtures.compliance.erasure import ErasureMode
from tenancy_fixtures.store.sqlite.store import SQLiteTenantStore
from tests.integration.subject_data import SUBJECT, SUBJECT_EMAIL, loaded_tenant, table

TENANT = "shredding"


@pytest.fixture
async def sqlite_manager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FixtureManager]:
    """A manager on a SQLite data directory of this test's own, whose tenant files have
    secure_delete off as they open (SQLite's default)."""
    opening = SQLiteTenantStore._setup

    def setup(store: SQLiteTenantStore, *, attach_control: bool) -> Any:
        return (("PRAGMA secure_delete = OFF", ()), *opening(store, attach_control=attach_control))

    monkeypatch.setattr(SQLiteTenantStore, "_setup", setup)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'data'}", actor="pytest")
    async with FixtureManager(settings) as manager:
        yield manager


def _files_holding(directory: Path, needles: list[bytes]) -> list[tuple[str, bytes]]:
    """(file, needle) for each file under ``directory`` and each of ``needles`` it holds."""
    return [
        (str(path.relative_to(directory)), needle)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
        for needle in needles
        if needle in path.read_bytes()
    ]


def _held(path: Path, needles: list[bytes]) -> list[bytes]:
    """Those of ``needles`` the file at ``path`` holds."""
    data = path.read_bytes()
    return [needle for needle in needles if needle in data]


@pytest.mark.parametrize("mode", ["delete", "pseudonymise"])
async def test_an_erasure_leaves_no_byte_of_the_person_in_the_sqlite_files(
    sqlite_manager: FixtureManager, tmp_path: Path, mode: ErasureMode
) -> None:
    """Their e-mail, name and id are in the tenant's file after the load, and nowhere
    under the data directory after the erasure (delete or pseudonymise)."""
    await loaded_tenant(sqlite_manager, TENANT)
    data = tmp_path / "data"
    needles = [SUBJECT_EMAIL.encode(), b"Nora Okafor", SUBJECT.encode()]
    assert {needle for _, needle in _files_holding(data, needles)} == set(needles)

    await sqlite_manager.erase_subject(TENANT, SUBJECT, mode=mode)

    assert [] == _files_holding(data, needles)
    assert (await sqlite_manager.verify_erasure(TENANT, SUBJECT)).ok


async def test_a_purge_leaves_no_byte_of_the_expired_events_in_the_sqlite_file(
    sqlite_manager: FixtureManager, demo_set: Path
) -> None:
    """The oldest plays, as the tenant's file stores their times (part of their key),
    are in the file until the purge, and not after it; the newest play stays."""
    manager = sqlite_manager
    await manager.create_tenant(TenantFixture(tenant_id=TENANT, settings={"retention_days": 30}))
    await manager.load_fixtures(TENANT, source=demo_set)
    plays = table(manager, "listening_events")
    async with manager.store.session(TENANT, readonly=True) as session:
        stored = [
            str(row[0])
            for row in await session.connection.exec_driver_sql(
                "SELECT played_at FROM main.listening_events ORDER BY played_at"
            )
        ]
        latest = (await session.connection.execute(select(func.max(plays.c.played_at)))).scalar()
    assert isinstance(latest, datetime)
    oldest, newest = [s.encode() for s in stored[:3]], stored[-1].encode()
    tenant_file = Path(manager.store.storage_name(TENANT))
    assert _held(tenant_file, [*oldest, newest]) == [*oldest, newest]

    # The newest play is a day from expiring: everything a day older than it goes.
    now = latest.replace(tzinfo=latest.tzinfo or UTC) + timedelta(days=29)
    report = (await manager.purge_expired([TENANT], now=now))[0]

    assert report.purged["listening_events"] >= 3
    assert _held(tenant_file, [*oldest, newest]) == [newest]
