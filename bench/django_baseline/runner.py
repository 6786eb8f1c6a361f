"""Django ``loaddata`` and django-tenants provisioning, measured from the harness process.

Nothing here imports Django: every Django step runs in a subprocess
(``sys.executable -m bench.django_baseline.child ...`` or ``.manage ...``) against a
fresh database created on ``pg_url``'s server and dropped afterwards, even on failure.
The parent only converts the fixture set (outside the timing), creates and drops the
databases with psycopg, and parses the child's JSON result line.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.common import Measurement
from bench.django_baseline.child import RESULT_PREFIX
from bench.django_baseline.convert import convert_fixture_set
from bench.django_baseline.settings import DATABASE_URL_ENV
from bench.django_baseline.tables import BIG_TABLE

__all__ = ["fresh_database", "run_loaddata", "run_tenant_provisioning", "run_tenant_testcase"]

_REPO_ROOT = Path(__file__).resolve().parents[2]
_PLAIN_SETTINGS = "bench.django_baseline.settings"
_TENANT_SETTINGS = "bench.django_baseline.tenant_settings"
_DB_PREFIX = "django_bench_"


def _libpq_url(url: str) -> str:
    """``postgresql+asyncpg://...`` (SQLAlchemy spelling) -> ``postgresql://...``."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return urlunsplit(parts._replace(scheme="postgresql"))


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@contextmanager
def fresh_database(pg_url: str) -> Iterator[str]:
    """Create ``django_bench_<random>`` on ``pg_url``'s server; yield its URL; drop it."""
    import psycopg
    from psycopg import sql

    admin_url = _libpq_url(pg_url)
    name = _DB_PREFIX + secrets.token_hex(6)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            # FORCE (PostgreSQL 13+) also ends connections a killed child left behind.
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _env(settings: str, database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = settings
    env[DATABASE_URL_ENV] = database_url
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(_REPO_ROOT) + (os.pathsep + path if path else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(
    module: str, args: Sequence[str], env: dict[str, str], timeout: float | None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", module, *args]
    done = subprocess.run(
        command, cwd=_REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-30:])
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}:\n{tail}")
    return done


def _child(args: Sequence[str], env: dict[str, str], timeout: float | None) -> dict[str, Any]:
    done = _run("bench.django_baseline.child", args, env, timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if not lines:
        raise RuntimeError(f"child printed no result line:\n{done.stdout[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    return result


def run_loaddata(
    set_dir: Path,
    pg_url: str,
    *,
    max_rows: int | None = None,
    repeats: int = 3,
    timeout: float | None = None,
) -> Measurement:
    """Time ``manage.py loaddata`` of the set, as one Django JSON fixture, ``repeats`` times.

    The set is converted once, outside the timing (with ``max_rows``, the big table
    :data:`~bench.django_baseline.tables.BIG_TABLE` is cut to a prefix so the total is
    about ``max_rows``). Each repeat gets a fresh database: ``manage.py migrate`` in one
    subprocess, then a child that sets Django up and times ``call_command("loaddata",
    fixture)`` — exactly what ``manage.py loaddata`` runs — and reports its own peak RSS
    (``VmHWM``: Django, the whole fixture parsed in memory, the ORM objects; not
    ``ru_maxrss``, which a child inherits from the harness across ``execve`` on Linux).
    ``peak_rss_bytes`` is the largest over the repeats. ``timeout`` bounds each subprocess.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    work = Path(tempfile.mkdtemp(prefix="django_bench_"))
    try:
        converted = convert_fixture_set(set_dir, work / "spotify_fixture.json", max_rows=max_rows)
        total = converted.total_rows
        seconds: list[float] = []
        peaks: list[int] = []
        before: list[int] = []
        process_seconds: list[float] = []
        version = "?"
        for _ in range(repeats):
            with fresh_database(pg_url) as database_url:
                env = _env(_PLAIN_SETTINGS, database_url)
                _run(
                    "bench.django_baseline.manage",
                    ["migrate", "--verbosity", "0", "--no-input"],
                    env,
                    timeout,
                )
                start = time.perf_counter()
                result = _child(
                    ["loaddata", str(converted.path), "--expect", str(total)], env, timeout
                )
                process_seconds.append(time.perf_counter() - start)
                seconds.append(float(result["seconds"]))
                peaks.append(int(result["peak_rss_bytes"]))
                before.append(int(result["rss_before_bytes"]))
                version = str(result["django"])
        size_mb = converted.path.stat().st_size / 1e6
        note = (
            f"Django {version}; {total} objects ({BIG_TABLE} {converted.rows.get(BIG_TABLE, 0)})"
            f" from one {size_mb:.1f} MB JSON fixture; timed call_command('loaddata') only,"
            f" whole child process median {sorted(process_seconds)[len(process_seconds) // 2]:.2f}"
            f" s; RSS = child's peak (VmHWM) ({max(before) / 2**20:.0f} MiB of it before loaddata)"
        )
        return Measurement(
            name="django loaddata",
            rows=total,
            seconds=seconds,
            peak_rss_bytes=max(peaks),
            note=note,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_tenant_provisioning(pg_url: str, n: int, *, timeout: float | None = None) -> Measurement:
    """Time ``Client(schema_name=f"t{i}").save()`` for ``n`` django-tenants tenants.

    One fresh database; one child process sets Django up with the django-tenants settings,
    migrates the shared (public) schema outside the timing, then times each tenant's
    ``save()`` — ``CREATE SCHEMA`` plus ``migrate_schemas`` of the Spotify app into it.
    ``seconds`` holds the per-tenant times (the median is the p50); the first includes
    the migration loader's one-off warm-up.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    with fresh_database(pg_url) as database_url:
        result = _child(["tenants", str(n)], _env(_TENANT_SETTINGS, database_url), timeout)
    seconds = [float(s) for s in result["seconds"]]
    note = (
        f"Django {result['django']}, django-tenants {result['django_tenants']};"
        f" 12 Spotify tables per schema via migrate_schemas; first creation {seconds[0] * 1e3:.0f}"
        " ms"
    )
    return Measurement(
        name="django-tenants creation",
        rows=n,
        seconds=seconds,
        peak_rss_bytes=int(result["peak_rss_bytes"]),
        note=note,
    )


def run_tenant_testcase(
    pg_url: str, classes: int, tests_per_class: int, *, timeout: float | None = None
) -> dict[str, Any]:
    """Run ``classes`` ``TenantTestCase`` classes of ``tests_per_class`` trivial tests in
    one child on a fresh database; returns the child's figures (``class_seconds``: each
    class's whole run, ``floor_seconds_per_test``: the same test in a plain
    ``unittest.TestCase``)."""
    if classes < 1 or tests_per_class < 1:
        raise ValueError(
            f"classes and tests_per_class must be >= 1, got {classes}, {tests_per_class}"
        )
    with fresh_database(pg_url) as database_url:
        return _child(
            ["tenant-testcase", str(classes), str(tests_per_class)],
            _env(_TENANT_SETTINGS, database_url),
            timeout,
        )
