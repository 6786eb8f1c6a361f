"""``load-fixtures --format/--option`` and ``generate --sources`` end to end, in-process.

SQLite only: the staged load path is the same on both backends and is covered there by
tests/integration/test_source_loading.py and test_spotify_loaders.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.cli_runner import Cli, assert_one_line_error

SAMPLES = Path(__file__).parent.parent / "data" / "spotify"
TENANT = "acme"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The CLI on a fresh SQLite data directory, with one tenant."""
    runner = Cli(f"sqlite:///{tmp_path / 'data'}")
    runner.ok("init-tenant", TENANT)
    return runner


def test_a_history_export_loads_with_its_format_and_listener_given(cli: Cli) -> None:
    path = str(SAMPLES / "Streaming_History_Audio_2024.json")

    report = cli.json(
        "load-fixtures", TENANT, path, "--format", "spotify-history", "-o", "user_id=u_ava"
    )

    assert report["changed"] is True
    assert report["rows"]["listening_events"] > 0
    assert report["rows"]["users"] == 1


def test_a_history_export_without_its_listener_is_a_one_line_error(cli: Cli) -> None:
    path = str(SAMPLES / "Streaming_History_Audio_2024.json")

    result = cli("load-fixtures", TENANT, path)

    line = assert_one_line_error(result, 5, "error: ")
    assert "user_id" in line
    assert "Streaming_History_Audio_2024.json" in line


def test_an_option_without_a_value_separator_is_a_usage_error(cli: Cli) -> None:
    """A malformed ``-o`` is a mistaken argument, exit 2 (it was 5, "data refused"),
    for ``load-fixtures`` and ``validate-data --source`` alike."""
    loading = cli("load-fixtures", TENANT, str(SAMPLES), "-o", "user_id")
    checking = cli("validate-data", "--source", str(SAMPLES), "-o", "user_id")

    assert_one_line_error(loading, 2, "error: --option expects KEY=VALUE")
    assert_one_line_error(checking, 2, "error: --option expects KEY=VALUE")


def test_an_option_the_format_does_not_take_is_a_usage_error_naming_its_options(
    cli: Cli,
) -> None:
    """``-o displayname=Ava`` (display_name misspelt) was ignored: the listener loaded
    named after its id. Now exit 2 naming the option, the format and what it takes, for
    ``load-fixtures`` and ``validate-data --source`` alike; nothing is loaded."""
    path = str(SAMPLES / "Streaming_History_Audio_2024.json")
    given = ("--format", "spotify-history", "-o", "user_id=u_ava", "-o", "displayname=Ava")

    loading = cli("load-fixtures", TENANT, path, *given)
    checking = cli("validate-data", "--source", path, *given)

    for result in (loading, checking):
        line = assert_one_line_error(result, 2, "error: ")
        assert (
            "unknown option 'displayname': format 'spotify-history' takes display_name, user_id"
        ) in line
    assert cli.json("load-fixtures", TENANT, path, "-o", "user_id=u_ava")["changed"] is True


def test_an_option_or_format_for_a_load_without_source_files_is_a_usage_error(
    cli: Cli, demo_set: Path
) -> None:
    """``-o``/``--format`` go to source files' formats: given to a load of table files
    or of the tier's fixtures they were ignored (exit 0, ``-o x=1`` unread). Now exit 2
    naming the option; nothing is loaded."""
    refused = [
        cli("load-fixtures", TENANT, str(demo_set), "-o", "x=1"),
        cli("load-fixtures", TENANT, "-o", "user_id=u_ava", "--force"),
        cli("load-fixtures", TENANT, "--format", "spotify-history"),
    ]

    lines = [assert_one_line_error(result, 2, "error: ") for result in refused]
    assert "unknown option 'x'" in lines[0]
    assert "no source files" in lines[0]
    assert "unknown option 'user_id'" in lines[1]
    assert "--format" in lines[2]
    assert 0 == cli.json("show", TENANT)["rows"]


def test_an_unknown_format_is_a_usage_error_naming_the_known_ones(cli: Cli) -> None:
    """``--format itunes`` is a mistaken argument, exit 2 (it was 5, "data refused");
    a manifest entry naming an unknown format is still the set's fault (exit 5)."""
    result = cli("load-fixtures", TENANT, str(SAMPLES / "album.json"), "--format", "itunes")
    checking = cli("validate-data", "--source", str(SAMPLES), "--format", "itunes")

    line = assert_one_line_error(result, 2, "error: ")
    assert "unknown format 'itunes'" in line
    assert "spotify-api" in line
    assert "unknown format 'itunes'" in assert_one_line_error(checking, 2, "error: ")


def test_generated_sources_of_every_domain_load_from_their_manifest_and_a_reload_changes_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    directory = tmp_path / "sources"
    cli.ok("generate", str(directory), "--sources", "--seed", "3")
    manifest = json.loads((directory / "fixtures.json").read_text(encoding="utf-8"))
    formats = {entry["format"] for entry in manifest["files"]}

    first = cli.json("load-fixtures", TENANT, str(directory))
    again = cli.json("load-fixtures", TENANT, str(directory))

    assert {
        "spotify-api",
        "spotify-history",
        "mpd",
        "ai-models",
        "events",
        "collaboration",
    } == formats
    assert first["changed"] is True
    assert {
        "tracks",
        "playlists",
        "listening_events",
        "ai_models",
        "product_events",
        "workspaces",
        "comments",
    } <= set(first["rows"])
    assert again["changed"] is False
    assert [True] == [report["ok"] for report in cli.json("validate-data", TENANT)]
