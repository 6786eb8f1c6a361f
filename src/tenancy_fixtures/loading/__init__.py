"""Bringing data into a tenant: fixture sets, readers, rows and rules, checksums,
source formats, parse workers, the loader registry and the load use case."""
