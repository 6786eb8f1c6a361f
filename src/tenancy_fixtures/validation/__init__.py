"""Checks of live tenants: DataIntegrityValidator (keys, references, checksums, isolation).

FixtureValidator checks fixture files before they load and lives with the loading
code (:mod:`tenancy_fixtures.loading.fixture_validator`); it is re-exported here.
"""

from __future__ import annotations

from tenancy_fixtures.loading.fixture_validator import FixtureValidator, ValidationReport
from tenancy_fixtures.validation.integrity import DataIntegrityValidator, IntegrityReport

__all__ = ["DataIntegrityValidator", "FixtureValidator", "IntegrityReport", "ValidationReport"]
