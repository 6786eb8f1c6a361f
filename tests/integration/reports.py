"""What an :class:`IntegrityReport` says about one check, as the tests compare it."""

from __future__ import annotations

from tenancy_fixtures import IntegrityReport

__all__ = ["failures", "notes"]


def failures(report: IntegrityReport, check: str) -> list[str]:
    """The failure details ``check`` reported."""
    return [c.detail for c in report.checks if c.check == check and c.status == "failed"]


def notes(report: IntegrityReport, check: str) -> list[str]:
    """The information lines ``check`` reported."""
    return [c.detail for c in report.checks if c.check == check and c.status == "info"]
