"""Benchmarks of tenancy-fixtures against the physical limit and its peers (not tests)."""
