"""``manage.py`` of the bench-only Django project: ``python -m bench.django_baseline.manage``.

Run from the repository root with ``DJANGO_BENCH_DATABASE_URL`` set; the default
settings are the plain ones, ``DJANGO_SETTINGS_MODULE=bench.django_baseline.tenant_settings``
selects the django-tenants variant.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    """Run a Django management command, exactly as ``manage.py`` does."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.django_baseline.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv if argv is None else argv)


if __name__ == "__main__":
    main()
