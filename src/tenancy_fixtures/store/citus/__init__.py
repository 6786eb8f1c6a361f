"""Citus: tenant schemas as distributed schemas (schema-based sharding).

The PostgreSQL store talks to the coordinator as to any PostgreSQL server; this package
holds what differs on Citus: finding the extension, making new tenant schemas
distributed, reading and changing where they live, checking them, and reading Citus's
errors back in the tenant's own names.
"""
