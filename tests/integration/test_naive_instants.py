"""Instants without an offset are UTC on both backends, whatever the process's local
time zone (everything the control plane stores is UTC)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from tenancy_fixtures import FixtureManager


@pytest.fixture
def local_zone() -> Iterator[Callable[[str], None]]:
    """Sets the process's local time zone (``TZ``) for the test; put back afterwards."""
    before = os.environ.get("TZ")

    def use(zone: str) -> None:
        os.environ["TZ"] = zone
        time.tzset()

    yield use
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


async def test_a_since_without_an_offset_is_utc_whatever_the_local_time_zone(
    manager: FixtureManager, local_zone: Callable[[str], None]
) -> None:
    """A ``since`` without an offset (``datetime.utcnow()``; the service's ``?since=``
    written without one) is UTC, as everything stored is. PostgreSQL's driver took it
    as the process's local time: five hours west of UTC a snapshot a minute after it was
    left out, five hours east one a minute before it came in; SQLite took it as UTC."""
    await manager.create_tenant("zoned")
    taken = (await manager.usage_snapshot("zoned")).taken_at.replace(tzinfo=None)
    for zone in ("XXX+05", "XXX-05"):  # POSIX: five hours west, then east, of UTC
        local_zone(zone)
        after = await manager.usage_history("zoned", since=taken - timedelta(minutes=1))
        before = await manager.usage_history("zoned", since=taken + timedelta(minutes=1))
        assert (len(after), len(before)) == (1, 0), zone
