"""Fixture files and sets of the built-in domain, opened and read as the tests check them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tenancy_fixtures.loading.fixture_sets import FixtureSet, open_fixture_set
from tenancy_fixtures.spotify.schema import spotify_metadata

__all__ = ["jsonl_records", "open_set", "write_jsonl"]


def open_set(directory: Path) -> FixtureSet:
    """Open ``directory`` as a fixture set of the built-in schema."""
    return open_fixture_set(directory, metadata=spotify_metadata())


def jsonl_records(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON Lines file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    """Write ``records`` as a JSON Lines file; returns its path."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
