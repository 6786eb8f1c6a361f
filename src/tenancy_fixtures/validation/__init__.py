"""Validators: FixtureValidator before data goes in, DataIntegrityValidator after."""

from __future__ import annotations

from tenancy_fixtures.validation.fixture_validator import FixtureValidator, ValidationReport
from tenancy_fixtures.validation.integrity import DataIntegrityValidator, IntegrityReport

__all__ = ["DataIntegrityValidator", "FixtureValidator", "IntegrityReport", "ValidationReport"]
