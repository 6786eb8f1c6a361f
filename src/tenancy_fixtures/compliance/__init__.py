"""Compliance use cases over the engine: retention (more to come: export, erasure).

Data keys live in :mod:`tenancy_fixtures.tenancy.data_keys`, below loading, because
loading encrypts with them and a tenant drop destroys them.
"""
