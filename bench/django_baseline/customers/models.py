"""The tenant model (``TENANT_MODEL``) and its domain model (``TENANT_DOMAIN_MODEL``)."""

from __future__ import annotations

from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Client(TenantMixin):
    """One tenant: saving a new one creates its schema and migrates the tenant apps into it."""

    name = models.CharField(max_length=100, blank=True, default="")
    # django-tenants' default, spelled out: the schema is created (and migrated) on save().
    auto_create_schema = True


class Domain(DomainMixin):
    """A host name routed to a tenant (unused by the benchmark, required by django-tenants)."""
