"""The socket channel between the loading process and a parse worker: whole pickled
messages in order, failures that leave the channel usable, and the other end's close."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tenancy_fixtures.loading.worker_channel import Channel


class _Unreadable:
    """Pickles fine, fails when unpickled (as a function from a module the other end
    cannot import)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (int, ("not a number",))


@pytest.fixture
def pair() -> Iterator[tuple[Channel, Channel]]:
    left, right = socket.socketpair()
    a, b = Channel(left), Channel(right)
    yield a, b
    a.close()
    b.close()


def test_messages_arrive_whole_and_in_order_however_big(pair: tuple[Channel, Channel]) -> None:
    a, b = pair
    big = b"x" * (8 << 20)  # far more than a socket buffer holds: a reader must drain it

    def send_all() -> None:
        for message in (1, big, {"k": [None]}):
            a.send(message)

    sender = threading.Thread(target=send_all)
    sender.start()

    received = [b.recv(), b.recv(), b.recv()]
    sender.join()

    assert [1, big, {"k": [None]}] == received


def test_a_message_that_cannot_be_pickled_sends_nothing(pair: tuple[Channel, Channel]) -> None:
    a, b = pair
    with pytest.raises(TypeError):
        a.send(threading.Lock())
    a.send("next")

    assert "next" == b.recv()


def test_a_message_that_cannot_be_unpickled_leaves_the_next_readable(
    pair: tuple[Channel, Channel],
) -> None:
    a, b = pair
    a.send(_Unreadable())
    a.send("next")

    with pytest.raises(ValueError, match="not a number"):
        b.recv()
    assert "next" == b.recv()


def test_the_other_end_closing_is_end_of_file(pair: tuple[Channel, Channel]) -> None:
    a, b = pair
    a.send("last")
    a.close()

    assert "last" == b.recv()
    with pytest.raises(EOFError):
        b.recv()
