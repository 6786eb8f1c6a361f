"""App config of the bench-only django-tenants customers app."""

from __future__ import annotations

from django.apps import AppConfig


class CustomersConfig(AppConfig):
    """The tenant and domain tables, in the public schema."""

    name = "bench.django_baseline.customers"
    label = "customers"
    default_auto_field = "django.db.models.BigAutoField"
