"""A PostgreSQL cluster and a redis-server that speak TLS, started for the test session.

Each is a real server on a spare loopback port with the session's throwaway
certificates; under pytest-xdist only the worker that runs the TLS tests starts them
(they share ``xdist_group("tls")``). Missing binaries skip the
TLS tests loudly on a laptop and fail them in CI (``tests.conftest.unavailable``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from redis import Redis
from redis.exceptions import RedisError

from tests.conftest import unavailable
from tests.tls.certificates import CLIENT_USER, Certificates

__all__ = ["PostgresTls", "RedisTls", "postgres_tls", "redis_tls"]

_PG_BIN = os.environ.get("TENANCY_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")
#: Certificate authentication for the client certificate's user, trust for the rest;
#: over TCP only TLS is accepted, so a plain connection cannot pass for a TLS one.
_HBA = f"""\
local   all  all                   trust
hostssl all  {CLIENT_USER}  127.0.0.0/8  cert
hostssl all  all            127.0.0.0/8  trust
"""


def _missing(reason: str) -> NoReturn:
    unavailable(reason)
    raise AssertionError("unavailable() skips or fails the test")


def spare_port() -> int:
    """A TCP port nobody listens on at the moment (on 127.0.0.1)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class PostgresTls:
    """A running PostgreSQL cluster with ssl=on: TCP on 127.0.0.1 and 127.0.0.2."""

    port: int
    socket_dir: Path  #: its Unix socket, for the superuser's plain connections

    def url(self, database: str, *, host: str = "localhost", user: str = "postgres") -> str:
        return f"postgresql+asyncpg://{user}@{host}:{self.port}/{database}"


@dataclass(frozen=True)
class RedisTls:
    """A running redis-server that speaks only TLS."""

    port: int

    def url(self, *, host: str = "localhost") -> str:
        return f"rediss://{host}:{self.port}/0"


def _pg_binaries() -> tuple[Path, Path]:
    initdb, pg_ctl = Path(_PG_BIN) / "initdb", Path(_PG_BIN) / "pg_ctl"
    if not (initdb.is_file() and pg_ctl.is_file()):
        _missing(f"PostgreSQL server binaries not found in {_PG_BIN} (TENANCY_TEST_PG_BIN)")
    return initdb, pg_ctl


def _server_user() -> list[str]:
    """The command prefix that runs initdb and pg_ctl as a user they accept (not root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        _missing("running as root, and there is no postgres user to run initdb as")
    runuser = shutil.which("runuser")
    if runuser is None:
        _missing("running as root, and runuser is missing to run initdb as postgres")
    return [runuser, "-u", "postgres", "--"]


def _run(command: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr}{done.stdout}{tail}")


def _configure(data: Path, base: Path, port: int) -> None:
    settings = {
        "listen_addresses": "127.0.0.1,127.0.0.2",
        "port": str(port),
        "unix_socket_directories": str(base),
        "ssl": "on",
        "ssl_cert_file": str(base / "server.crt"),
        "ssl_key_file": str(base / "server.key"),
        "ssl_ca_file": str(base / "ca.crt"),
        "max_connections": "60",
        "shared_buffers": "16MB",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())
    (data / "pg_hba.conf").write_text(_HBA, encoding="utf-8")


@contextmanager
def postgres_tls(certificates: Certificates) -> Iterator[PostgresTls]:
    """A throwaway cluster (initdb, ssl=on, the session's CA and server certificate) on a
    spare port; stopped and removed afterwards."""
    initdb, pg_ctl = _pg_binaries()
    as_server = _server_user()
    base = Path(tempfile.mkdtemp(prefix="tf_tls_pg_"))
    data, log = base / "data", base / "server.log"
    # The server reads its files as its own user, from a directory that user owns.
    for source, name in (
        (certificates.ca, "ca.crt"),
        (certificates.server_cert, "server.crt"),
        (certificates.server_key, "server.key"),
    ):
        shutil.copy(source, base / name)
    (base / "server.key").chmod(0o600)
    if as_server:
        for path in (base, *base.iterdir()):
            shutil.chown(path, "postgres", "postgres")
    port = spare_port()
    started = False
    try:
        _run(
            [*as_server, str(initdb), "-D", str(data), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--locale=C", "-N"],
            "initdb",
        )  # fmt: skip
        _configure(data, base, port)
        _run(
            [*as_server, str(pg_ctl), "-D", str(data), "-l", str(log), "-w", "-t", "30", "start"],
            "pg_ctl start",
            log,
        )
        started = True
        yield PostgresTls(port=port, socket_dir=base)
    finally:
        if started:
            subprocess.run(
                [*as_server, str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def redis_tls(certificates: Certificates) -> Iterator[RedisTls]:
    """``redis-server --port 0 --tls-port <spare>`` with the session's server certificate;
    killed afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("redis-server is not installed")
    base = Path(tempfile.mkdtemp(prefix="tf_tls_redis_"))
    port = spare_port()
    server = subprocess.Popen(
        [
            binary, "--port", "0", "--bind", "127.0.0.1", "127.0.0.2",
            "--tls-port", str(port),
            "--tls-cert-file", str(certificates.server_cert),
            "--tls-key-file", str(certificates.server_key),
            "--tls-ca-cert-file", str(certificates.ca),
            "--tls-auth-clients", "no",
            "--save", "", "--appendonly", "no", "--dir", str(base),
            "--logfile", str(base / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_redis(RedisTls(port), certificates.ca, server, base / "redis.log")
        yield RedisTls(port)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)


def _wait_for_redis(redis: RedisTls, ca: Path, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        client = Redis.from_url(redis.url(), ssl_ca_certs=str(ca), socket_timeout=1)
        try:
            client.ping()
            return
        except RedisError:
            if server.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server with TLS did not start: {tail}") from None
            time.sleep(0.05)
        finally:
            client.close()
