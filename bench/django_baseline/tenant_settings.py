"""Settings of the django-tenants variant: one schema per tenant, the Spotify app in each.

The shared (public) schema holds django-tenants' tenant and domain tables; every new
tenant's schema gets the Spotify tables (``TENANT_APPS``). Same database URL variable
as :mod:`bench.django_baseline.settings`.
"""

from __future__ import annotations

from bench.django_baseline.settings import (
    ALLOWED_HOSTS,
    DATABASE_URL,
    DEBUG,
    DEFAULT_AUTO_FIELD,
    LOGGING_CONFIG,
    SECRET_KEY,
    TIME_ZONE,
    USE_TZ,
    database_from_url,
)

__all__ = [
    "ALLOWED_HOSTS",
    "DATABASES",
    "DATABASE_ROUTERS",
    "DEBUG",
    "DEFAULT_AUTO_FIELD",
    "INSTALLED_APPS",
    "LOGGING_CONFIG",
    "MIDDLEWARE",
    "SECRET_KEY",
    "SHARED_APPS",
    "TENANT_APPS",
    "TENANT_DOMAIN_MODEL",
    "TENANT_MODEL",
    "TIME_ZONE",
    "USE_TZ",
]

SHARED_APPS = [
    "django_tenants",
    "django.contrib.contenttypes",
    "bench.django_baseline.customers",
]
TENANT_APPS = ["bench.django_baseline.spotify"]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "customers.Client"
TENANT_DOMAIN_MODEL = "customers.Domain"
DATABASES = {"default": database_from_url(DATABASE_URL, "django_tenants.postgresql_backend")}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
MIDDLEWARE = ["django_tenants.middleware.main.TenantMainMiddleware"]
