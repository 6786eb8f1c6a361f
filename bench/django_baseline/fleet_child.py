"""django-tenants fleets for the migration benchmark, run only in a subprocess by :mod:`.fleet`.

``python -m bench.django_baseline.fleet_child grow N`` brings the database's fleet to
``N`` tenants, each made by ``Client(schema_name=...).save()``: ``CREATE SCHEMA`` and
``migrate_schemas`` into it, django-tenants' own path and its fastest here (its other
one, ``TENANT_BASE_SCHEMA`` / ``clone_tenant``, copies a template schema with the
``clone_schema`` PL/pgSQL function and measured about 1 s a tenant against about
0.25 s). ``python -m bench.django_baseline.fleet_child noop`` times
``call_command("migrate_schemas")`` in-process over every tenant when nothing is left
to apply, and checks that nothing was. Each prints one result line (``RESULT_PREFIX``
+ JSON), as :mod:`.child` does.
"""

from __future__ import annotations

import argparse
import time
from importlib import metadata
from typing import Any

from bench.django_baseline.child import RESULT_PREFIX, _emit, _peak_rss_bytes

__all__ = ["RESULT_PREFIX", "main"]


def _migration_rows() -> tuple[int, int]:
    """Tenant schemas holding a ``django_migrations`` table, and their rows in total."""
    from django.db import connection

    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT schemaname FROM pg_tables"
            " WHERE tablename = 'django_migrations' AND schemaname <> 'public'"
        )
        schemas = [row[0] for row in cursor.fetchall()]
        rows = 0
        for first in range(0, len(schemas), 500):
            union = " UNION ALL ".join(
                f'SELECT count(*) AS n FROM "{schema}".django_migrations'
                for schema in schemas[first : first + 500]
            )
            cursor.execute(f"SELECT coalesce(sum(n), 0) FROM ({union}) AS counts")
            rows += int(cursor.fetchone()[0])
    return len(schemas), rows


def _grow(n: int) -> dict[str, Any]:
    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    from bench.django_baseline.customers.models import Client

    if Client._meta.db_table not in connection.introspection.table_names():
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    have = Client.objects.count()
    seconds: list[float] = []
    for i in range(have, n):
        started = time.perf_counter()
        Client(schema_name=f"t{i}", name=f"tenant {i}").save()
        seconds.append(time.perf_counter() - started)
    tenants, rows = _migration_rows()
    if tenants != n or Client.objects.count() != n:
        raise RuntimeError(f"expected {n} migrated tenant schemas, found {tenants}")
    return {
        "tenants": n,
        "seconds": seconds,
        "migration_rows": rows,
        "django": django.get_version(),
        "django_tenants": metadata.version("django-tenants"),
    }


def _noop() -> dict[str, Any]:
    import django
    from django.core.management import call_command

    django.setup()
    tenants, before = _migration_rows()
    started = time.perf_counter()
    call_command("migrate_schemas", interactive=False, verbosity=0)
    seconds = time.perf_counter() - started
    _, after = _migration_rows()
    if after != before:
        raise RuntimeError(f"migrate_schemas applied {after - before} migrations: not a no-op")
    return {"tenants": tenants, "seconds": seconds, "peak_rss_bytes": _peak_rss_bytes()}


def main(argv: list[str] | None = None) -> None:
    """Parse the command, run it, print the result line."""
    parser = argparse.ArgumentParser(prog="python -m bench.django_baseline.fleet_child")
    commands = parser.add_subparsers(dest="command", required=True)
    grow = commands.add_parser("grow", help="bring the fleet to n migrated tenants")
    grow.add_argument("n", type=int)
    commands.add_parser("noop", help="time migrate_schemas when nothing is to apply")
    args = parser.parse_args(argv)
    _emit(_grow(args.n) if args.command == "grow" else _noop())


if __name__ == "__main__":
    main()
