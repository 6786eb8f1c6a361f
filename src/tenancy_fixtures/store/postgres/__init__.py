"""PostgreSQL: one schema per tenant; its DDL, bulk ``COPY`` and isolation checks."""
