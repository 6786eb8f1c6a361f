"""The Django side of the benchmarks, run only in a subprocess by :mod:`.runner`.

``python -m bench.django_baseline.child loaddata FIXTURE --expect N``,
``... child tenants N`` and ``... child tenant-testcase CLASSES TESTS`` set Django up
(settings chosen by ``DJANGO_SETTINGS_MODULE``, database by
``DJANGO_BENCH_DATABASE_URL``), do the timed work and print one line
``RESULT_PREFIX + JSON`` as the last line with that prefix on stdout (Django's own
output may precede it).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import resource
import sys
import time
from importlib import metadata
from typing import Any

#: Prefix of the result line the parent parses.
RESULT_PREFIX = "DJANGO_BENCH_RESULT "

_INSTALLED = re.compile(r"Installed (\d+) object\(s\)")


def _peak_rss_bytes() -> int:
    """Peak resident set size of this process so far.

    On Linux this is ``VmHWM`` of ``/proc/self/status``: ``ru_maxrss`` survives
    ``execve``, so a child forked from a large harness process would report the
    parent's peak instead of its own.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _emit(result: dict[str, Any]) -> None:
    sys.stdout.write("\n" + RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def _check_models() -> None:
    """The converter's table -> model map must match the models' tables."""
    from django.apps import apps

    from bench.django_baseline.tables import TABLE_MODELS

    for table, label in TABLE_MODELS.items():
        db_table = apps.get_model(label)._meta.db_table
        if db_table != table:
            raise RuntimeError(f"model {label} has table {db_table!r}, expected {table!r}")


def _loaddata(fixture: str, expect: int) -> dict[str, Any]:
    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    _check_models()
    connection.ensure_connection()
    before = _peak_rss_bytes()
    out = io.StringIO()
    start = time.perf_counter()
    call_command("loaddata", fixture, verbosity=1, stdout=out)
    seconds = time.perf_counter() - start
    peak = _peak_rss_bytes()
    match = _INSTALLED.search(out.getvalue())
    installed = int(match.group(1)) if match else -1
    from django.apps import apps

    from bench.django_baseline.tables import TABLE_MODELS

    in_db = sum(apps.get_model(label).objects.count() for label in TABLE_MODELS.values())
    if installed != expect or in_db != expect:
        raise RuntimeError(
            f"loaddata installed {installed} objects, tables hold {in_db}, expected {expect}"
        )
    return {
        "seconds": seconds,
        "rows": in_db,
        "peak_rss_bytes": peak,
        "rss_before_bytes": before,
        "django": django.get_version(),
    }


def _tenants(n: int) -> dict[str, Any]:
    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    # The public schema (tenant and domain tables), outside the timing.
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    from bench.django_baseline.customers.models import Client

    seconds: list[float] = []
    for i in range(n):
        tenant = Client(schema_name=f"t{i}", name=f"tenant {i}")
        start = time.perf_counter()
        tenant.save()  # creates schema t{i} and runs migrate_schemas for it
        seconds.append(time.perf_counter() - start)
    # Check every tenant schema got the Spotify tables, outside the timing.
    from bench.django_baseline.tables import TABLE_MODELS

    expected = set(TABLE_MODELS)
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema, count(*) FROM information_schema.tables"
            " WHERE table_schema LIKE 't%%' AND table_name = ANY(%s) GROUP BY table_schema",
            [sorted(expected)],
        )
        counts = dict(cursor.fetchall())
    missing = [f"t{i}" for i in range(n) if counts.get(f"t{i}") != len(expected)]
    if missing:
        raise RuntimeError(f"tenant schemas without all Spotify tables: {missing}")
    return {
        "seconds": seconds,
        "tenants": n,
        "peak_rss_bytes": _peak_rss_bytes(),
        "django": django.get_version(),
        "django_tenants": metadata.version("django-tenants"),
    }


def _tenant_testcase(classes: int, tests_per_class: int) -> dict[str, Any]:
    """Run ``classes`` django-tenants ``TenantTestCase`` classes of ``tests_per_class``
    trivial tests each, timing each class's whole run (``setUpClass`` creates the test
    tenant's schema and migrates it, each test runs in a rolled-back transaction,
    ``tearDownClass`` drops the schema); and the same trivial test in a plain
    ``unittest.TestCase``, the floor."""
    import unittest

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    from django_tenants.test.cases import TenantTestCase

    def trivial(self: unittest.TestCase) -> None:
        del self  # the body is nothing: what is timed is the test case around it

    def timed(case: type[unittest.TestCase]) -> float:
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(case)
        result = unittest.TestResult()
        start = time.perf_counter()
        suite.run(result)
        seconds = time.perf_counter() - start
        if not result.wasSuccessful():
            raise RuntimeError(f"{case.__name__}: {(result.errors + result.failures)[0][1]}")
        return seconds

    tests = {f"test_{i}": trivial for i in range(tests_per_class)}
    seconds = [timed(type(f"Bench{n}", (TenantTestCase,), tests)) for n in range(classes)]
    floor = timed(type("Floor", (unittest.TestCase,), tests))
    return {
        "class_seconds": seconds,
        "tests_per_class": tests_per_class,
        "floor_seconds_per_test": floor / tests_per_class,
        "django": django.get_version(),
        "django_tenants": metadata.version("django-tenants"),
    }


def main(argv: list[str] | None = None) -> None:
    """Parse the command, run it, print the result line."""
    parser = argparse.ArgumentParser(prog="python -m bench.django_baseline.child")
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("loaddata", help="time loaddata of one fixture file")
    load.add_argument("fixture")
    load.add_argument("--expect", type=int, required=True, help="objects the fixture holds")
    tenants = commands.add_parser("tenants", help="time n django-tenants creations")
    tenants.add_argument("n", type=int)
    cases = commands.add_parser("tenant-testcase", help="time TenantTestCase classes")
    cases.add_argument("classes", type=int)
    cases.add_argument("tests_per_class", type=int)
    args = parser.parse_args(argv)
    if args.command == "loaddata":
        _emit(_loaddata(args.fixture, args.expect))
    elif args.command == "tenants":
        _emit(_tenants(args.n))
    else:
        _emit(_tenant_testcase(args.classes, args.tests_per_class))


if __name__ == "__main__":
    main()
