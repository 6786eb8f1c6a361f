"""`tenancy-fixtures serve` in a process of its own, for tests that need a real socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

__all__ = ["serve_command", "served"]


def serve_command(database_url: str, *args: str) -> list[str]:
    """`tenancy-fixtures --database-url URL serve ARGS` as a command line of this Python."""
    return [
        sys.executable,
        "-c",
        "from tenancy_fixtures.cli.app import main; main()",
        "--database-url",
        database_url,
        "serve",
        *args,
    ]


@contextmanager
def served(
    database_url: str,
    env: Mapping[str, str] | None = None,
    *,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The service on ``database_url`` at a free local port (``env`` added to the
    process's environment, ``preexec_fn`` run in it before it starts: a resource
    limit); yields the process and its base URL, and kills it at the end. Its stderr
    goes to a temporary file (``server.stderr``: read it when it died), which a chatty
    server cannot fill as it would a pipe."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = serve_command(database_url, "--port", str(port), "--log-level", "warning")
    with tempfile.TemporaryFile() as errors:
        server = subprocess.Popen(
            command,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=errors,
            preexec_fn=preexec_fn,
        )
        server.stderr = errors
        try:
            yield server, f"http://127.0.0.1:{port}"
        finally:
            server.kill()
            server.wait(timeout=30)
