"""Timing, metrics and health of tenants and their fixtures."""
