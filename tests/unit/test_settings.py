"""Settings derived from the TENANCY_* values."""

from __future__ import annotations

import os

import pytest

from tenancy_fixtures import Settings


class TestParseWorkers:
    """How many parse worker processes a load uses."""

    @pytest.mark.parametrize(("cpus", "expected"), [(1, 0), (2, 2), (3, 3), (16, 4), (None, 0)])
    def test_unset_means_one_per_cpu_at_most_four_and_none_on_one_cpu(
        self, monkeypatch: pytest.MonkeyPatch, cpus: int | None, expected: int
    ) -> None:
        monkeypatch.setattr(os, "cpu_count", lambda: cpus)

        assert expected == Settings(database_url="sqlite:///x").workers_for_parsing

    def test_a_set_number_is_used_as_given(self) -> None:
        assert 0 == Settings(database_url="sqlite:///x", parse_workers=0).workers_for_parsing
        assert 7 == Settings(database_url="sqlite:///x", parse_workers=7).workers_for_parsing
