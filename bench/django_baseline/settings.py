"""Settings of the bench-only Django project (plain Django, one database).

Configured from code: the database comes from the URL in ``DJANGO_BENCH_DATABASE_URL``
(set by the runner for each fresh database). Importing this module does not set Django
up; the runner's subprocesses call ``django.setup()`` themselves.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

#: Environment variable the runner passes the database URL in.
DATABASE_URL_ENV = "DJANGO_BENCH_DATABASE_URL"


def database_from_url(url: str, engine: str = "django.db.backends.postgresql") -> dict[str, Any]:
    """A Django ``DATABASES`` entry for a ``postgresql://`` URL (SQLAlchemy's
    ``postgresql+driver://`` spelling accepted too); query parameters become OPTIONS."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return {
        "ENGINE": engine,
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": dict(parse_qsl(parts.query)),
        # One connection for the whole command, as manage.py would use it.
        "CONN_MAX_AGE": 0,
    }


DATABASE_URL = os.environ.get(DATABASE_URL_ENV, "postgresql://127.0.0.1:5432/django_bench")

SECRET_KEY = "bench-only-not-a-secret"
# DEBUG off: with DEBUG on Django keeps every query in memory, which would inflate RSS.
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["bench.django_baseline.spotify"]
MIDDLEWARE: list[str] = []
DATABASES = {"default": database_from_url(DATABASE_URL)}
LOGGING_CONFIG = None
