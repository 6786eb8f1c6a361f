"""Tenants themselves: ids, lifecycle, configuration and its cache, credentials, audit."""
