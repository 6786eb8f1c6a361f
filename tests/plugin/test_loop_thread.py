"""The plugin's event loop thread: what a call interrupted while it waits does."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from tenancy_fixtures.testing import portal
from tenancy_fixtures.testing.portal import LoopThread


class Interrupted(Exception):
    """What the test's signal handler raises in the waiting thread (as a timeout would)."""


@pytest.fixture
def interrupt_soon() -> Iterator[None]:
    """SIGUSR1 to the main thread in 0.1 s, raising :class:`Interrupted` where it waits."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, interrupt)
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(0.1, signal.pthread_kill, (main, signal.SIGUSR1))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)


def test_an_interrupted_call_waits_for_its_work_to_end(interrupt_soon: None) -> None:
    """The work goes on to its end before the interruption is raised: what it made is
    known to the caller, which can remove it."""
    loop = LoopThread()
    ended = threading.Event()

    async def work() -> None:
        await asyncio.sleep(0.5)
        ended.set()

    try:
        with pytest.raises(Interrupted):
            loop.call(work)
        assert ended.is_set()
    finally:
        loop.close()


def test_an_interrupted_call_whose_work_hangs_cancels_it_and_returns(
    interrupt_soon: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Work still running after SETTLE_SECONDS is cancelled: a hung statement does not
    hang the run that a timeout interrupted."""
    monkeypatch.setattr(portal, "SETTLE_SECONDS", 0.3)
    loop = LoopThread()
    cancelled = threading.Event()

    async def hang() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    started = time.monotonic()
    try:
        with pytest.raises(Interrupted):
            loop.call(hang)
        assert time.monotonic() - started < 5
        assert cancelled.wait(5)
    finally:
        loop.close()
