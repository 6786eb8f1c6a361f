"""FixtureValidator: every problem in a fixture set is found, located and counted."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tenancy_fixtures.errors import ValidationFailedError
from tenancy_fixtures.loaders.fixture_sets import FixtureSet, open_fixture_set
from tenancy_fixtures.spotify_schema import spotify_metadata
from tenancy_fixtures.templates import BUILTIN_TEMPLATE_DIR
from tenancy_fixtures.validation import FixtureValidator, ValidationReport

DEMO = BUILTIN_TEMPLATE_DIR / "fixtures" / "demo"


def open_set(directory: Path) -> FixtureSet:
    """Open a fixture set against the built-in schema."""
    return open_fixture_set(directory, metadata=spotify_metadata())


def validate(directory: Path, *, max_problems: int = 100) -> ValidationReport:
    """Validate the fixture set in ``directory``."""
    return FixtureValidator(max_problems=max_problems).validate(open_set(directory))


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    """A private copy of the built-in demo set to break."""
    return Path(shutil.copytree(DEMO, tmp_path / "demo"))


def jsonl_records(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON Lines file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def append_jsonl(path: Path, *records: dict[str, Any]) -> list[int]:
    """Append ``records`` to a JSON Lines file; return the line number of each."""
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text += "\n"
    first = len(text.splitlines()) + 1
    text += "".join(json.dumps(record) + "\n" for record in records)
    path.write_text(text, encoding="utf-8")
    return list(range(first, first + len(records)))


def break_tracks(directory: Path) -> list[int]:
    """Append a duplicate track, a track by an unknown artist and a mistyped track."""
    tracks = jsonl_records(directory / "tracks.jsonl")
    duplicate = dict(tracks[0])
    orphan = {**tracks[1], "track_id": "zzzzzzzzzzzzzzzzzzzzz1", "artist_id": "NoSuchArtist"}
    mistyped = {**tracks[2], "track_id": "zzzzzzzzzzzzzzzzzzzzz2", "duration_ms": "long"}
    return append_jsonl(directory / "tracks.jsonl", duplicate, orphan, mistyped)


class TestDemoSet:
    def test_the_builtin_demo_set_is_valid(self) -> None:
        """The demo set shipped with the package has no problems."""
        report = validate(DEMO)

        assert ([], {}, False) == (report.problems, dict(report.rules), report.truncated)
        assert report.ok
        assert report.records > 0

    def test_every_demo_record_is_read(self) -> None:
        """records counts every record of every file in the set."""
        report = validate(DEMO)

        tracks = len(jsonl_records(DEMO / "tracks.jsonl"))
        assert report.records > tracks

    def test_a_valid_report_raises_nothing(self) -> None:
        """raise_for_problems is silent when nothing was found."""
        validate(DEMO).raise_for_problems(tenant_id="acme")


class TestProblems:
    def test_a_duplicate_primary_key_is_found_at_its_line(self, demo_copy: Path) -> None:
        """A second record with the same primary key is a duplicate_key problem."""
        track = jsonl_records(demo_copy / "tracks.jsonl")[0]
        (line,) = append_jsonl(demo_copy / "tracks.jsonl", track)

        report = validate(demo_copy)

        assert [
            f"tracks.jsonl:{line}: duplicate primary key ('{track['track_id']}',)"
        ] == report.problems
        assert {"duplicate_key": 1} == dict(report.rules)

    def test_a_track_whose_artist_is_missing_is_found_at_its_line(self, demo_copy: Path) -> None:
        """A foreign key with no parent row in the set is a missing_reference problem."""
        track = jsonl_records(demo_copy / "tracks.jsonl")[0]
        orphan = {**track, "track_id": "zzzzzzzzzzzzzzzzzzzzz1", "artist_id": "NoSuchArtist"}
        (line,) = append_jsonl(demo_copy / "tracks.jsonl", orphan)

        report = validate(demo_copy)

        assert [f"tracks.jsonl:{line}: ('NoSuchArtist',) has no row in artists"] == (
            report.problems
        )
        assert {"missing_reference": 1} == dict(report.rules)

    def test_a_record_of_the_wrong_type_is_found_at_its_line(self, demo_copy: Path) -> None:
        """A value the column cannot take is a record problem naming file, line and column."""
        track = jsonl_records(demo_copy / "tracks.jsonl")[0]
        mistyped = {**track, "track_id": "zzzzzzzzzzzzzzzzzzzzz2", "duration_ms": "long"}
        (line,) = append_jsonl(demo_copy / "tracks.jsonl", mistyped)

        report = validate(demo_copy)

        assert [
            f"tracks.jsonl:{line}, column duration_ms: expected an integer, found 'long'"
        ] == report.problems
        assert {"record": 1} == dict(report.rules)

    def test_a_wrong_type_in_a_csv_file_is_found_at_its_line(self, demo_copy: Path) -> None:
        """CSV problems are located by line too."""
        path = demo_copy / "users.csv"
        lines = path.read_text(encoding="utf-8").splitlines()
        fields = lines[1].split(",")
        fields[0], fields[2], fields[3] = "new-user", "new@example.com", "GBR"
        path.write_text("\n".join([*lines, ",".join(fields)]) + "\n", encoding="utf-8")

        report = validate(demo_copy)

        assert [
            f"users.csv:{len(lines) + 1}, column country: longer than 2 characters (3)"
        ] == report.problems

    def test_every_problem_is_collected_not_only_the_first(self, demo_copy: Path) -> None:
        """Duplicate, dangling reference and wrong type are all reported, in file order."""
        first_id = jsonl_records(demo_copy / "tracks.jsonl")[0]["track_id"]
        duplicate, orphan, mistyped = break_tracks(demo_copy)

        report = validate(demo_copy)

        assert [
            f"tracks.jsonl:{duplicate}: duplicate primary key ('{first_id}',)",
            f"tracks.jsonl:{orphan}: ('NoSuchArtist',) has no row in artists",
            f"tracks.jsonl:{mistyped}, column duration_ms: expected an integer, found 'long'",
        ] == report.problems
        assert {"duplicate_key": 1, "missing_reference": 1, "record": 1} == dict(report.rules)
        assert not report.ok
        assert not report.truncated

    def test_problems_in_several_files_are_all_found(self, demo_copy: Path) -> None:
        """Problems are collected across files, each naming its own file."""
        break_tracks(demo_copy)
        features = jsonl_records(demo_copy / "audio_features.jsonl")[0]
        append_jsonl(demo_copy / "audio_features.jsonl", {**features, "tempo": "NaN"})

        report = validate(demo_copy)

        assert {"duplicate_key": 1, "missing_reference": 1, "record": 2} == dict(report.rules)
        assert {"tracks.jsonl", "audio_features.jsonl"} == {
            problem.split(":", 1)[0].split(",", 1)[0] for problem in report.problems
        }

    def test_a_reference_to_a_refused_parent_is_also_reported(self, demo_copy: Path) -> None:
        """A child of a parent row that was refused has no parent in the set."""
        artist = {
            "artist_id": "BadArtist",
            "name": "Bad",
            "genres": None,
            "popularity": "very",
            "followers": 1,
        }
        artists = json.loads((demo_copy / "artists.json").read_text(encoding="utf-8"))
        (demo_copy / "artists.json").write_text(json.dumps([*artists, artist]), encoding="utf-8")
        track = jsonl_records(demo_copy / "tracks.jsonl")[0]
        append_jsonl(
            demo_copy / "tracks.jsonl",
            {**track, "track_id": "zzzzzzzzzzzzzzzzzzzzz3", "artist_id": "BadArtist"},
        )

        report = validate(demo_copy)

        assert {"record": 1, "missing_reference": 1} == dict(report.rules)

    def test_an_unreadable_file_is_a_format_problem_and_the_rest_still_checked(
        self, demo_copy: Path
    ) -> None:
        """A malformed file is reported under 'format' and other files are still read."""
        with (demo_copy / "audio_features.jsonl").open("a", encoding="utf-8") as handle:
            handle.write("{not json\n")
        track = jsonl_records(demo_copy / "tracks.jsonl")[0]
        append_jsonl(demo_copy / "tracks.jsonl", track)

        report = validate(demo_copy)

        assert {"format": 1, "duplicate_key": 1} == dict(report.rules)
        assert any(p.startswith("audio_features.jsonl:") for p in report.problems)

    def test_raise_for_problems_raises_with_every_problem(self, demo_copy: Path) -> None:
        """A report with problems raises ValidationFailedError listing them all."""
        break_tracks(demo_copy)
        report = validate(demo_copy)

        with pytest.raises(ValidationFailedError) as caught:
            report.raise_for_problems(tenant_id="acme")

        assert (report.problems, "acme") == (caught.value.problems, caught.value.tenant_id)
        assert str(caught.value).startswith("tenant 'acme': 3 problem(s) found: ")

    def test_a_duplicate_in_a_json_array_is_located_by_record(self, demo_copy: Path) -> None:
        """Problems in files without line numbers name the record, not a fake line."""
        artists = json.loads((demo_copy / "artists.json").read_text(encoding="utf-8"))
        (demo_copy / "artists.json").write_text(
            json.dumps([*artists, artists[0]], indent=1), encoding="utf-8"
        )
        record = len(artists) + 1

        report = validate(demo_copy)

        assert 1 == len(report.problems)
        assert f"artists.json, record {record}:" in report.problems[0]

    def test_a_huge_number_in_a_float_column_is_a_problem_not_a_crash(
        self, demo_copy: Path
    ) -> None:
        """An out-of-range number is reported as a problem of its file and line."""
        features = jsonl_records(demo_copy / "audio_features.jsonl")[0]
        path = demo_copy / "audio_features.jsonl"
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({**features, "track_id": "x"})[:-1] + ', "tempo": 1')
            handle.write("0" * 400 + "}\n")

        report = validate(demo_copy)

        assert 1 == report.rules["format"]
        assert "audio_features.jsonl:101" in report.problems[0]


class TestMaxProblems:
    def test_the_problem_list_is_capped_and_marked_truncated(self, demo_copy: Path) -> None:
        """Past max_problems, problems are counted per rule but no longer listed."""
        break_tracks(demo_copy)

        report = validate(demo_copy, max_problems=1)

        assert 1 == len(report.problems)
        assert report.problems[0].startswith("tracks.jsonl:")
        assert {"duplicate_key": 1, "missing_reference": 1, "record": 1} == dict(report.rules)
        assert report.truncated

    def test_exactly_max_problems_is_not_truncated(self, demo_copy: Path) -> None:
        """A report with exactly max_problems problems lists them all, untruncated."""
        break_tracks(demo_copy)

        report = validate(demo_copy, max_problems=3)

        assert (3, False) == (len(report.problems), report.truncated)

    def test_many_problems_are_all_counted(self, demo_copy: Path) -> None:
        """Counting continues past the cap: 50 duplicates count 50."""
        tracks = jsonl_records(demo_copy / "tracks.jsonl")
        append_jsonl(demo_copy / "tracks.jsonl", *tracks[:50])

        report = validate(demo_copy, max_problems=5)

        assert (5, 50, True) == (
            len(report.problems),
            report.rules["duplicate_key"],
            report.truncated,
        )
