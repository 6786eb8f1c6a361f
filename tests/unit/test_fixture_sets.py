"""Fixture sets: discovery, manifests, foreign-key order and paths that must stay inside."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tenancy_fixtures.errors import FixtureSetError
from tenancy_fixtures.loading import fixture_sets
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.loading.fixture_sets import files_sha256, split_name
from tenancy_fixtures.loading.opening import open_loaders
from tenancy_fixtures.spotify.schema import spotify_metadata
from tests.fixture_files import open_set


def make_set(directory: Path, files: dict[str, str], manifest: Any = None) -> Path:
    """Create a fixture set directory with ``files`` and, if given, a manifest document."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if manifest is not None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        (directory / "fixtures.json").write_text(text, encoding="utf-8")
    return directory


def load_order(tables: list[str]) -> list[str]:
    """``tables`` in the schema's foreign-key (parents first) order."""
    return [t.name for t in spotify_metadata().sorted_tables if t.name in tables]


def open_set_error(directory: Path) -> FixtureSetError:
    """The FixtureSetError raised opening ``directory``."""
    with pytest.raises(FixtureSetError) as caught:
        open_set(directory)
    return caught.value


class TestSplitName:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("users.csv", ("users", "csv", False)),
            ("tracks.jsonl", ("tracks", "jsonl", False)),
            ("tracks.ndjson", ("tracks", "jsonl", False)),
            ("artists.json", ("artists", "json", False)),
            ("albums.yaml", ("albums", "yaml", False)),
            ("albums.yml", ("albums", "yaml", False)),
            ("listening_events.jsonl.gz", ("listening_events", "jsonl", True)),
            ("users.CSV", ("users", "csv", False)),
            ("README.md", None),
            ("notes.txt.gz", None),
            (".json", None),
            ("json", None),
        ],
    )
    def test_a_file_name_gives_table_format_and_compression(
        self, name: str, expected: tuple[str, str, bool] | None
    ) -> None:
        """Data file names split into (table, format, compressed); other names give None."""
        assert expected == split_name(name)


class TestDiscovery:
    def test_files_are_found_by_name_and_sorted_in_foreign_key_order(self, tmp_path: Path) -> None:
        """Without a manifest, data files are discovered and ordered parents first."""
        directory = make_set(
            tmp_path / "catalog",
            {
                "tracks.jsonl": "",
                "albums.yaml": "",
                "artists.json": "[]",
                "users.csv.gz": "",
                "README.md": "not data",
                "notes.txt": "not data",
            },
        )

        fixture_set = open_set(directory)

        assert "catalog" == fixture_set.name
        assert {
            ("users", "users.csv.gz", "csv", True),
            ("artists", "artists.json", "json", False),
            ("albums", "albums.yaml", "yaml", False),
            ("tracks", "tracks.jsonl", "jsonl", False),
        } == {(f.table, f.relative, f.format, f.compressed) for f in fixture_set.files}
        assert load_order(["users", "artists", "albums", "tracks"]) == fixture_set.tables()
        assert ["artists", "albums", "tracks"] == [t for t in fixture_set.tables() if t != "users"]

    def test_a_discovered_file_of_an_unknown_table_is_refused_naming_it(
        self, tmp_path: Path
    ) -> None:
        """A data file whose name is not a table is a FixtureSetError naming that table."""
        directory = make_set(tmp_path / "s", {"artists.json": "[]", "songs.json": "[]"})

        error = open_set_error(directory)

        assert "songs" == error.table
        assert "unknown table 'songs'" in str(error)

    def test_tables_lists_each_table_once_in_load_order(self, tmp_path: Path) -> None:
        """tables() names every table the set fills once, parents before children."""
        directory = make_set(
            tmp_path / "s", {"tracks.jsonl": "", "artists.json": "[]", "users.csv": "a\n"}
        )

        assert ["artists", "users", "tracks"] == open_set(directory).tables()

    def test_an_empty_directory_is_refused(self, tmp_path: Path) -> None:
        """A set with no data files is a FixtureSetError."""
        directory = make_set(tmp_path / "empty", {"README.md": "nothing here"})

        error = open_set_error(directory)

        assert "fixture set holds no data files" == error.message

    def test_a_missing_directory_is_refused(self, tmp_path: Path) -> None:
        """A set that does not exist is a FixtureSetError naming the path."""
        error = open_set_error(tmp_path / "nowhere")

        assert tmp_path / "nowhere" == error.path
        assert "fixture set directory does not exist" == error.message

    def test_a_file_given_as_the_set_is_refused(self, tmp_path: Path) -> None:
        """A set must be a directory, not a data file."""
        (tmp_path / "artists.json").write_text("[]")

        error = open_set_error(tmp_path / "artists.json")

        assert "fixture set directory does not exist" == error.message

    def test_the_sha256_of_a_file_is_of_its_bytes(self, tmp_path: Path) -> None:
        """FixtureFile.sha256 is the digest of the file's bytes."""
        directory = make_set(tmp_path / "s", {"artists.json": "[]"})

        file = open_set(directory).files[0]

        assert "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945" == file.sha256


class TestManifest:
    def test_manifest_order_is_kept_within_a_table_but_tables_load_parents_first(
        self, tmp_path: Path
    ) -> None:
        """tracks.jsonl listed before artists.json still loads artists first."""
        directory = make_set(
            tmp_path / "s",
            {"tracks.jsonl": "", "more_tracks.jsonl": "", "artists.json": "[]"},
            {
                "name": "my-set",
                "files": [
                    "tracks.jsonl",
                    {"path": "more_tracks.jsonl", "table": "tracks"},
                    {"path": "artists.json"},
                ],
            },
        )

        fixture_set = open_set(directory)

        assert "my-set" == fixture_set.name
        assert [
            ("artists", "artists.json"),
            ("tracks", "tracks.jsonl"),
            ("tracks", "more_tracks.jsonl"),
        ] == [(f.table, f.relative) for f in fixture_set.files]

    def test_only_the_files_the_manifest_lists_are_used(self, tmp_path: Path) -> None:
        """With a manifest, unlisted data files are ignored, even of unknown tables."""
        directory = make_set(
            tmp_path / "s",
            {"artists.json": "[]", "users.csv": "a\n", "songs.json": "[]"},
            {"files": ["artists.json"]},
        )

        assert ["artists"] == open_set(directory).tables()

    def test_a_manifest_file_in_a_subdirectory_is_allowed(self, tmp_path: Path) -> None:
        """Manifest paths may name files in subdirectories of the set."""
        directory = make_set(
            tmp_path / "s", {"data/artists.json": "[]"}, {"files": ["data/artists.json"]}
        )

        file = open_set(directory).files[0]

        assert ("artists", "data/artists.json") == (file.table, file.relative)
        assert (directory / "data" / "artists.json").resolve() == file.path

    def test_a_manifest_without_a_name_uses_the_directory_name(self, tmp_path: Path) -> None:
        """The set's name defaults to its directory's name."""
        directory = make_set(
            tmp_path / "demo_set", {"artists.json": "[]"}, {"files": ["artists.json"]}
        )

        assert "demo_set" == open_set(directory).name

    def test_a_manifest_name_longer_than_the_control_plane_keeps_is_refused(
        self, tmp_path: Path
    ) -> None:
        """It is recorded as ``<loader>:<name>`` in a 200-character column: PostgreSQL
        refused a 300-character one at the write (exit 7), SQLite kept it."""
        limit = fixture_sets.MAX_SET_NAME
        files = {"artists.json": "[]"}
        longest = make_set(tmp_path / "ok", files, {"name": "n" * limit, "files": ["artists.json"]})
        too_long = make_set(
            tmp_path / "long", files, {"name": "n" * (limit + 1), "files": ["artists.json"]}
        )

        error = open_set_error(too_long)

        assert "n" * limit == open_set(longest).name
        assert too_long / "fixtures.json" == error.path
        assert f"at most {limit}" in str(error)

    def test_a_name_made_from_file_names_is_fitted_to_the_limit_and_stays_stable(
        self, tmp_path: Path
    ) -> None:
        """A long directory name, or many table files taken alone, name the set within
        the limit: their start and a digest of the whole, the same each time."""
        directory = make_set(tmp_path / ("d" * 200), {"artists.json": "[]"})
        only = [f"{'t' * 40}{i}.json" for i in range(6)]

        name = open_set(directory).name
        joined = fixture_sets.fitted_name(f"s/{'+'.join(only)}")

        assert len(name) == fixture_sets.MAX_SET_NAME
        assert name.startswith("d" * 100)
        assert name == open_set(directory).name
        assert len(joined) == fixture_sets.MAX_SET_NAME
        assert "short" == fixture_sets.fitted_name("short")

    def test_a_manifest_table_that_is_unknown_is_refused_naming_it(self, tmp_path: Path) -> None:
        """An explicit table the schema lacks is a FixtureSetError naming it."""
        directory = make_set(
            tmp_path / "s",
            {"data.json": "[]"},
            {"files": [{"path": "data.json", "table": "songs"}]},
        )

        error = open_set_error(directory)

        assert "songs" == error.table
        assert "unknown table 'songs'" in str(error)

    def test_a_manifest_file_that_does_not_exist_is_refused(self, tmp_path: Path) -> None:
        """A listed file that is missing is a FixtureSetError naming it."""
        directory = make_set(tmp_path / "s", {}, {"files": ["artists.json"]})

        error = open_set_error(directory)

        assert ("file does not exist", "artists") == (error.message, error.table)

    def test_a_manifest_entry_that_is_not_a_data_file_is_refused(self, tmp_path: Path) -> None:
        """A listed file without a data extension is refused."""
        directory = make_set(tmp_path / "s", {"artists.txt": ""}, {"files": ["artists.txt"]})

        error = open_set_error(directory)

        assert "'artists.txt' is not a data file" in error.message

    @pytest.mark.parametrize(
        ("manifest", "message"),
        [
            pytest.param("{not json", "manifest is not valid JSON", id="malformed"),
            pytest.param("", "manifest is not valid JSON", id="empty"),
            pytest.param("[]", "manifest must be an object with a 'files' list", id="array"),
            pytest.param("{}", "manifest must be an object with a 'files' list", id="no-files"),
            pytest.param(
                '{"files": "a.json"}',
                "manifest must be an object with a 'files' list",
                id="files-not-a-list",
            ),
        ],
    )
    def test_a_malformed_manifest_is_refused(
        self, tmp_path: Path, manifest: str, message: str
    ) -> None:
        """A manifest that is not a JSON object with a 'files' list is a FixtureSetError."""
        directory = make_set(tmp_path / "s", {"artists.json": "[]"}, manifest)

        error = open_set_error(directory)

        assert directory / "fixtures.json" == error.path
        assert message in error.message

    @pytest.mark.parametrize(
        ("entries", "record", "message"),
        [
            pytest.param(["artists.json", 3], 2, "needs a 'path' string", id="number"),
            pytest.param([{"table": "artists"}], 1, "needs a 'path' string", id="no-path"),
            pytest.param([{"path": 7}], 1, "needs a 'path' string", id="path-not-str"),
            pytest.param(
                [{"path": "artists.json", "table": 1}], 1, "'table' must be a string", id="table"
            ),
        ],
    )
    def test_a_bad_manifest_entry_is_refused_naming_its_position(
        self, tmp_path: Path, entries: list[Any], record: int, message: str
    ) -> None:
        """A 'files' entry without a usable path or table is refused with its index."""
        directory = make_set(tmp_path / "s", {"artists.json": "[]"}, {"files": entries})

        error = open_set_error(directory)

        assert record == error.record
        assert message in error.message


class TestPathsStayInside:
    def test_a_parent_relative_path_is_refused(self, tmp_path: Path) -> None:
        """'../x.json' leaves the set and is refused."""
        (tmp_path / "x.json").write_text("[]")
        directory = make_set(
            tmp_path / "s", {}, {"files": [{"path": "../x.json", "table": "artists"}]}
        )

        error = open_set_error(directory)

        assert "path '../x.json' resolves outside the fixture directory" == error.message

    def test_a_path_that_climbs_out_through_a_subdirectory_is_refused(self, tmp_path: Path) -> None:
        """'data/../../artists.json' leaves the set and is refused."""
        (tmp_path / "artists.json").write_text("[]")
        directory = make_set(
            tmp_path / "s", {"data/keep.txt": ""}, {"files": ["data/../../artists.json"]}
        )

        error = open_set_error(directory)

        assert "resolves outside the fixture directory" in error.message

    def test_an_absolute_path_is_refused(self, tmp_path: Path) -> None:
        """An absolute path, even to a file inside the set, is refused."""
        directory = make_set(tmp_path / "s", {"artists.json": "[]"})
        inside = str(directory / "artists.json")
        (directory / "fixtures.json").write_text(json.dumps({"files": [inside]}))

        error = open_set_error(directory)

        assert f"path {inside!r} must be relative" == error.message

    def test_a_symlink_to_a_file_outside_the_set_is_refused_when_discovered(
        self, tmp_path: Path
    ) -> None:
        """A symlink in the set pointing outside is refused, not followed."""
        (tmp_path / "secret.json").write_text("[]")
        directory = make_set(tmp_path / "s", {})
        (directory / "artists.json").symlink_to(tmp_path / "secret.json")

        error = open_set_error(directory)

        assert "path 'artists.json' resolves outside the fixture directory" == error.message

    def test_a_symlink_to_a_file_outside_the_set_is_refused_when_listed(
        self, tmp_path: Path
    ) -> None:
        """A manifest entry that is a symlink pointing outside is refused."""
        (tmp_path / "secret.json").write_text("[]")
        directory = make_set(tmp_path / "s", {}, {"files": ["artists.json"]})
        (directory / "artists.json").symlink_to(tmp_path / "secret.json")

        error = open_set_error(directory)

        assert "resolves outside the fixture directory" in error.message

    def test_a_symlinked_directory_pointing_outside_is_refused(self, tmp_path: Path) -> None:
        """A path through a symlinked directory that leads outside is refused."""
        outside = make_set(tmp_path / "outside", {"artists.json": "[]"})
        directory = make_set(tmp_path / "s", {}, {"files": ["link/artists.json"]})
        (directory / "link").symlink_to(outside, target_is_directory=True)

        error = open_set_error(directory)

        assert "resolves outside the fixture directory" in error.message

    def test_a_path_holding_a_lone_surrogate_is_refused_as_the_manifests_error(
        self, tmp_path: Path
    ) -> None:
        """JSON's "\\ud800" names no file: a FixtureSetError, not a UnicodeEncodeError."""
        directory = make_set(tmp_path / "s", {"artists.json": "[]"})
        (directory / "fixtures.json").write_text('{"files": ["\\ud800.json"]}')

        error = open_set_error(directory)

        assert "'\\ud800.json' is not text a file name can hold" in error.message

    def test_a_symlink_to_a_file_inside_the_set_is_allowed(self, tmp_path: Path) -> None:
        """A symlink that stays inside the set resolves to its target."""
        directory = make_set(tmp_path / "s", {"data/artists.json": "[]"})
        (directory / "fixtures.json").write_text(json.dumps({"files": ["artists.json"]}))
        (directory / "artists.json").symlink_to(directory / "data" / "artists.json")

        file = open_set(directory).files[0]

        assert (directory / "data" / "artists.json").resolve() == file.path


@pytest.mark.parametrize("parallel_bytes", [0, 1 << 40], ids=["on-threads", "one-by-one"])
def test_files_hashed_together_give_each_file_its_own_digest_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel_bytes: int
) -> None:
    monkeypatch.setattr(fixture_sets, "_PARALLEL_BYTES", parallel_bytes)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)  # threads on a one-core runner too
    contents = [b"", b"a", b"x" * ((1 << 20) + 7), b"\x00\xff" * 999]
    paths = []
    for number, content in enumerate(contents):
        path = tmp_path / f"f{number}.json"
        path.write_bytes(content)
        paths.append(path)
    assert [hashlib.sha256(c).hexdigest() for c in contents] == files_sha256(paths)
    assert [] == files_sha256([])


def test_a_json_table_file_with_a_byte_order_mark_is_told_a_table_file_without_a_manifest(
    tmp_path: Path,
) -> None:
    """The readers skip the mark but the sniffing did not: "cannot tell the format of
    this file" for a file that loads when a manifest names it."""
    rows = [{"artist_id": "0" * 22, "name": "Harbor", "genres": [], "popularity": 1}]
    (tmp_path / "artists.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(rows).encode())

    [loader] = open_loaders(tmp_path, metadata=spotify_metadata(), batch_size=1000)

    assert isinstance(loader, DataLoader)
    assert ["artists.json"] == [f.relative for f in loader.files]


@pytest.mark.parametrize(
    "content",
    [b"", b" \n\t\r\n", b"\n" * 100 + b'[{"artist_id": "0000000000000000000000", "name": "H"}]'],
    ids=["empty", "blank", "blank-lines-first"],
)
def test_a_json_table_file_empty_or_opening_with_blank_lines_is_told_a_table_file(
    tmp_path: Path, content: bytes
) -> None:
    """An empty ``artists.json`` (which its reader refuses as malformed JSON, naming it)
    or one whose array starts past 64 bytes of white space is the table's file, not a
    source file whose format "cannot be told"."""
    (tmp_path / "artists.json").write_bytes(content)

    [loader] = open_loaders(tmp_path, metadata=spotify_metadata(), batch_size=1000)

    assert isinstance(loader, DataLoader)
    assert ["artists.json"] == [f.relative for f in loader.files]


def test_a_loader_name_too_long_to_start_a_recorded_fixture_name_is_not_registered() -> None:
    """``<loader>:<set name>`` must fit the control plane's 200 characters."""
    from tenancy_fixtures.loading.registry import LOADERS, register_loader

    class Wordy(DataLoader):
        loader_name = "w" * (fixture_sets.MAX_LOADER_NAME + 1)

    with pytest.raises(ValueError, match="a loader name is 1 to 49 characters"):
        register_loader(Wordy)

    assert Wordy.loader_name not in LOADERS
    assert fixture_sets.MAX_SET_NAME + 1 + fixture_sets.MAX_LOADER_NAME <= 200
