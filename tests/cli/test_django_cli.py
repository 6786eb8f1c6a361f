"""``load-fixtures`` with Django ``dumpdata`` fixtures, in-process on SQLite (the load
path is covered on both backends by tests/integration/test_django_fixtures.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.cli_runner import Cli, assert_one_line_error

TENANT = "acme"
DUMP = [
    {"model": "music.artist", "pk": "4Z8W4fKeB5YxbusRsdQVPb", "fields": {"name": "Radiohead"}},
    {
        "model": "music.album",
        "pk": "6dVIqQ8qmQ5GBnJ9shOYGE",
        "fields": {"name": "OK Computer", "artist": ["Radiohead"]},
    },
]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The CLI on a fresh SQLite data directory, with one tenant."""
    runner = Cli(f"sqlite:///{tmp_path / 'data'}")
    runner.ok("init-tenant", TENANT)
    return runner


def test_a_dump_loads_with_its_natural_keys_given_as_an_option(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "music.json"
    path.write_text(json.dumps(DUMP), encoding="utf-8")

    report = cli.json(
        "load-fixtures",
        TENANT,
        str(path),
        "--format",
        "django",
        "-o",
        "natural_keys=music.Artist:name",
    )

    assert {"artists": 1, "albums": 1} == report["rows"]


def test_a_bad_mapping_file_is_a_one_line_error_naming_it_and_the_field(
    cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "music.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in DUMP), encoding="utf-8")
    mapping = tmp_path / "django.yaml"
    mapping.write_text("natural_keys:\n  music.Artist: [title]\n", encoding="utf-8")

    result = cli("load-fixtures", TENANT, str(path), "-o", f"mapping={mapping}")

    line = assert_one_line_error(result, 5, "error: ")
    assert "field 'title' has no column in artists" in line
    assert "django.yaml" in line


def test_a_refused_record_is_a_one_line_error_naming_file_record_and_field(
    cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "music.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in DUMP), encoding="utf-8")

    result = cli("load-fixtures", TENANT, str(path))

    line = assert_one_line_error(result, 5, "error: ")
    assert "music.jsonl:2, column fields.artist" in line
    assert "no natural_keys entry" in line
