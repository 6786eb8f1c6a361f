"""Pickled messages over a socket: how the loading process and a parse worker talk.

Each message is its pickle preceded by its length (8 bytes, big-endian), the same on
both ends. A worker needs only ``socket`` and ``pickle`` for this, where
``multiprocessing.connection`` would cost every worker about 2 MiB of imports.
"""

from __future__ import annotations

import pickle
import socket
import struct
from typing import Any

__all__ = ["Channel"]

_LENGTH = struct.Struct("!Q")


class Channel:
    """One end of a socket pair carrying pickled messages.

    ``send`` pickles first, so an object that cannot be pickled raises before anything
    is sent; ``recv`` reads a whole message before unpickling it, so one that cannot be
    unpickled leaves the next readable. The other end gone is :class:`EOFError` (or an
    :class:`OSError`). One thread may send while another receives.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock

    @classmethod
    def from_fd(cls, fd: int) -> Channel:
        """The channel on a socket inherited as file descriptor ``fd``."""
        return cls(socket.socket(fileno=fd))

    def send(self, message: Any) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._socket.sendall(_LENGTH.pack(len(data)))
        self._socket.sendall(data)

    def recv(self) -> Any:
        (size,) = _LENGTH.unpack(self._read(_LENGTH.size))
        # Only the loading process and its own worker hold the socket pair.
        return pickle.loads(self._read(size))  # noqa: S301

    def close(self) -> None:
        self._socket.close()

    @property
    def closed(self) -> bool:
        return self._socket.fileno() == -1

    def _read(self, size: int) -> bytearray:
        buffer = bytearray(size)
        view = memoryview(buffer)
        done = 0
        while done < size:
            got = self._socket.recv_into(view[done:])
            if not got:
                raise EOFError("the other end closed the channel")
            done += got
        return buffer
