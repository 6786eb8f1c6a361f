"""FixtureValidator: every problem in a fixture set is found, located, named and counted."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tenancy_fixtures.errors import (
    FixtureError,
    RecordError,
    ValidationFailedError,
    ValidationTimeoutError,
)
from tenancy_fixtures.fixtures.templates import BUILTIN_TEMPLATE_DIR
from tenancy_fixtures.loading import fixture_validator
from tenancy_fixtures.loading.fixture_sets import open_fixture_set
from tenancy_fixtures.loading.fixture_validator import ExistingKeys, RejectFile
from tenancy_fixtures.loading.readers import SourceRecord, iter_records
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.store import place_in_tenant_schema
from tenancy_fixtures.validation import FixtureValidator, ValidationReport
from tests.fixture_files import jsonl_records, open_set
from tests.user_schema import DATA as USER_DATA
from tests.user_schema import user_metadata

DEMO = BUILTIN_TEMPLATE_DIR / "fixtures" / "demo"
#: Well-formed Spotify ids that no demo row has.
NEW_TRACK_1 = "zzzzzzzzzzzzzzzzzzzzz1"
NEW_TRACK_2 = "zzzzzzzzzzzzzzzzzzzzz2"
NO_SUCH_ARTIST = "NoSuchArtist0000000000"


def validate(directory: Path, *, max_problems: int = 100) -> ValidationReport:
    """Validate the fixture set in ``directory``."""
    return FixtureValidator(spotify_metadata(), max_problems=max_problems).validate(
        open_set(directory)
    )


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    """A private copy of the built-in demo set to break."""
    return Path(shutil.copytree(DEMO, tmp_path / "demo"))


def append_jsonl(path: Path, *records: dict[str, Any]) -> list[int]:
    """Append ``records`` to a JSON Lines file; return the line number of each."""
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text += "\n"
    first = len(text.splitlines()) + 1
    text += "".join(json.dumps(record) + "\n" for record in records)
    path.write_text(text, encoding="utf-8")
    return list(range(first, first + len(records)))


def append_csv(path: Path, *rows: str) -> list[int]:
    """Append CSV ``rows`` (already joined); return the line number of each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([*lines, *rows]) + "\n", encoding="utf-8")
    return list(range(len(lines) + 1, len(lines) + 1 + len(rows)))


def break_tracks(directory: Path) -> list[int]:
    """Append a duplicate track, a track by an unknown artist and a mistyped track."""
    tracks = jsonl_records(directory / "tracks.jsonl")
    duplicate = dict(tracks[0])
    orphan = {**tracks[1], "track_id": NEW_TRACK_1, "artist_id": NO_SUCH_ARTIST}
    mistyped = {**tracks[2], "track_id": NEW_TRACK_2, "duration_ms": "long"}
    return append_jsonl(directory / "tracks.jsonl", duplicate, orphan, mistyped)


class TestDemoSet:
    def test_the_builtin_demo_set_is_valid(self) -> None:
        """The demo set shipped with the package breaks no rule, CHECKs and formats included."""
        report = validate(DEMO)

        assert ([], {}, False, 0) == (
            report.problems,
            dict(report.rules),
            report.truncated,
            report.total,
        )
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
            f"tracks.jsonl:{line}, column track_id: duplicate primary key "
            f"(track_id)=({track['track_id']}) [duplicate_key]"
        ] == report.problems
        assert {"duplicate_key": 1} == dict(report.rules)

    def test_a_duplicate_unique_email_is_found_at_its_csv_line(self, demo_copy: Path) -> None:
        """Two users with one e-mail break the unique key on users.email."""
        with (demo_copy / "users.csv").open(encoding="utf-8", newline="") as users:
            email = next(csv.DictReader(users))["email"]
        (line,) = append_csv(
            demo_copy / "users.csv",
            f"new-user,New User,{email},GB,free,2026-01-01T00:00:00+00:00",
        )

        report = validate(demo_copy)

        assert [
            f"users.csv:{line}, column email: duplicate unique key (email)=({email}) [unique:email]"
        ] == report.problems
        assert {"unique:email": 1} == dict(report.rules)

    def test_users_without_email_do_not_collide(self, demo_copy: Path) -> None:
        """NULLs are distinct in a unique key, as in SQL."""
        append_csv(
            demo_copy / "users.csv",
            "u-one,One,,GB,free,2026-01-01T00:00:00+00:00",
            "u-two,Two,,GB,free,2026-01-01T00:00:00+00:00",
        )

        assert validate(demo_copy).ok

    def test_a_track_whose_artist_is_missing_is_found_at_its_line(self, demo_copy: Path) -> None:
        """A foreign key with no parent row in the set is a missing_reference problem."""
        track = jsonl_records(demo_copy / "tracks.jsonl")[0]
        orphan = {**track, "track_id": NEW_TRACK_1, "artist_id": NO_SUCH_ARTIST}
        (line,) = append_jsonl(demo_copy / "tracks.jsonl", orphan)

        report = validate(demo_copy)

        assert [
            f"tracks.jsonl:{line}, column artist_id: (artist_id)=({NO_SUCH_ARTIST}) "
            "has no row in artists [missing_reference]"
        ] == report.problems
        assert {"missing_reference": 1} == dict(report.rules)

    def test_a_reference_resolves_to_a_row_already_in_the_tenant(self, demo_copy: Path) -> None:
        """Given the tenant's keys, a parent outside the set satisfies the reference."""
        track = jsonl_records(demo_copy / "tracks.jsonl")[0]
        append_jsonl(
            demo_copy / "tracks.jsonl",
            {**track, "track_id": NEW_TRACK_1, "artist_id": NO_SUCH_ARTIST},
        )
        existing: ExistingKeys = {("artists", ("artist_id",)): {(NO_SUCH_ARTIST,)}}

        report = FixtureValidator(spotify_metadata()).validate(
            open_set(demo_copy), existing=existing
        )

        assert report.ok

    def test_a_parent_table_outside_the_set_is_not_checked_without_a_tenant(
        self, tmp_path: Path
    ) -> None:
        """A set of tracks alone cannot tell whether their albums exist: no problem."""
        (tmp_path / "tracks.jsonl").write_bytes((DEMO / "tracks.jsonl").read_bytes())

        assert validate(tmp_path).ok

    def test_a_record_of_the_wrong_type_is_found_at_its_line(self, demo_copy: Path) -> None:
        """A value the column cannot take is a problem naming file, line, column and rule."""
        track = jsonl_records(demo_copy / "tracks.jsonl")[0]
        mistyped = {**track, "track_id": NEW_TRACK_2, "duration_ms": "long"}
        (line,) = append_jsonl(demo_copy / "tracks.jsonl", mistyped)

        report = validate(demo_copy)

        assert [
            f"tracks.jsonl:{line}, column duration_ms: expected an integer, found 'long' [type]"
        ] == report.problems
        assert {"type": 1} == dict(report.rules)

    @pytest.mark.parametrize(
        ("changes", "column", "rule"),
        [
            pytest.param({"duration_ms": 0}, "duration_ms", "check:duration_ms", id="check"),
            pytest.param({"isrc": "US-RC1-76-0783"}, "isrc", "length", id="length"),
            pytest.param({"isrc": "usrc17607839"}, "isrc", "format:isrc", id="format"),
            pytest.param({"album_id": "album-1"}, "album_id", "format:spotify_id", id="fk-format"),
            pytest.param({"name": None}, "name", "not_null", id="not-null"),
            pytest.param({"tempo": 1}, "tempo", "unknown_column", id="unknown-column"),
        ],
    )
    def test_each_record_rule_is_reported_with_its_name(
        self, demo_copy: Path, changes: dict[str, Any], column: str, rule: str
    ) -> None:
        """The validator reports each rule RowBuilder enforces, by name, at its line."""
        track = jsonl_records(demo_copy / "tracks.jsonl")[0]
        (line,) = append_jsonl(
            demo_copy / "tracks.jsonl", {**track, "track_id": NEW_TRACK_1, **changes}
        )

        report = validate(demo_copy)

        (error,) = report.errors
        assert ("tracks.jsonl", line, column, rule) == (
            error.path,
            error.line,
            error.column,
            error.rule,
        )
        assert {rule: 1} == dict(report.rules)

    def test_a_wrong_value_in_a_csv_file_is_found_at_its_line(self, demo_copy: Path) -> None:
        """CSV problems are located by line too."""
        (line,) = append_csv(
            demo_copy / "users.csv",
            "new-user,New,new@example.com,GBR,free,2026-01-01T00:00:00+00:00",
        )

        report = validate(demo_copy)

        assert [f"users.csv:{line}, column country: longer than 2 characters (3) [length]"] == (
            report.problems
        )

    def test_every_problem_is_collected_not_only_the_first(self, demo_copy: Path) -> None:
        """Duplicate, dangling reference and wrong type are all reported, in file order."""
        first_id = jsonl_records(demo_copy / "tracks.jsonl")[0]["track_id"]
        duplicate, orphan, mistyped = break_tracks(demo_copy)

        report = validate(demo_copy)

        assert [
            f"tracks.jsonl:{duplicate}, column track_id: duplicate primary key "
            f"(track_id)=({first_id}) [duplicate_key]",
            f"tracks.jsonl:{orphan}, column artist_id: (artist_id)=({NO_SUCH_ARTIST}) "
            "has no row in artists [missing_reference]",
            f"tracks.jsonl:{mistyped}, column duration_ms: expected an integer, found 'long' "
            "[type]",
        ] == report.problems
        assert {"duplicate_key": 1, "missing_reference": 1, "type": 1} == dict(report.rules)
        assert (3, False, False) == (report.total, report.ok, report.truncated)

    def test_every_problem_names_file_place_column_and_rule(self, demo_copy: Path) -> None:
        """Each listed problem carries its path, line or record, column and rule."""
        break_tracks(demo_copy)
        artists = json.loads((demo_copy / "artists.json").read_text(encoding="utf-8"))
        (demo_copy / "artists.json").write_text(
            json.dumps([*artists, artists[0]]), encoding="utf-8"
        )

        report = validate(demo_copy)

        assert 4 == len(report.errors)
        for error in report.errors:
            assert error.path in ("tracks.jsonl", "artists.json")
            assert (error.line is None) != (error.record is None)
            assert error.column
            assert error.rule

    def test_the_records_refused_are_listed_per_file(self, demo_copy: Path) -> None:
        """rejected maps each file to the numbers of its refused records."""
        lines = break_tracks(demo_copy)

        report = validate(demo_copy)

        assert {(demo_copy / "tracks.jsonl").resolve(): set(lines)} == {
            path.resolve(): numbers for path, numbers in report.rejected.items()
        }
        assert 3 == report.rejected_records

    def test_a_record_breaking_a_rule_twice_counts_once_for_it(self, demo_copy: Path) -> None:
        """The per-rule summary counts records: two missing references in one record is 1."""
        entry = jsonl_records(demo_copy / "playlist_tracks.jsonl")[0]
        append_jsonl(
            demo_copy / "playlist_tracks.jsonl",
            {**entry, "position": 9999, "track_id": NEW_TRACK_1, "added_by": "nobody"},
        )

        report = validate(demo_copy)

        assert ({"missing_reference": 1}, 2) == (dict(report.rules), report.total)
        assert ["track_id", "added_by"] == [error.column for error in report.errors]

    def test_problems_in_several_files_are_all_found(self, demo_copy: Path) -> None:
        """Problems are collected across files, each naming its own file."""
        break_tracks(demo_copy)
        features = jsonl_records(demo_copy / "audio_features.jsonl")[0]
        append_jsonl(demo_copy / "audio_features.jsonl", {**features, "tempo": "NaN"})

        report = validate(demo_copy)

        assert {"duplicate_key": 1, "missing_reference": 1, "type": 2} == dict(report.rules)
        assert {"tracks.jsonl", "audio_features.jsonl"} == {e.path for e in report.errors}

    def test_a_reference_to_a_refused_parent_is_also_reported(self, demo_copy: Path) -> None:
        """A child of a parent row that was refused has no parent in the set."""
        bad_id = "BadArtist0000000000000"
        artist = {"artist_id": bad_id, "name": "Bad", "popularity": "very", "followers": 1}
        artists = json.loads((demo_copy / "artists.json").read_text(encoding="utf-8"))
        (demo_copy / "artists.json").write_text(json.dumps([*artists, artist]), encoding="utf-8")
        track = jsonl_records(demo_copy / "tracks.jsonl")[0]
        append_jsonl(
            demo_copy / "tracks.jsonl", {**track, "track_id": NEW_TRACK_1, "artist_id": bad_id}
        )

        report = validate(demo_copy)

        assert {"type": 1, "missing_reference": 1} == dict(report.rules)
        assert report.problems[1].endswith(
            f"(artist_id)=({bad_id}) has no row in artists: its record was refused "
            "[missing_reference]"
        )

    def test_an_unreadable_file_is_a_file_format_problem_and_the_rest_still_checked(
        self, demo_copy: Path
    ) -> None:
        """A malformed file is reported under 'file_format' and other files are still read."""
        with (demo_copy / "audio_features.jsonl").open("a", encoding="utf-8") as handle:
            handle.write("{not json\n")
        track = jsonl_records(demo_copy / "tracks.jsonl")[0]
        append_jsonl(demo_copy / "tracks.jsonl", track)

        report = validate(demo_copy)

        assert {"file_format": 1, "duplicate_key": 1} == dict(report.rules)
        assert ["audio_features.jsonl"] == [str(e.path) for e in report.unreadable]

    def test_raise_for_problems_raises_with_every_problem(self, demo_copy: Path) -> None:
        """A report with problems raises ValidationFailedError listing them all."""
        break_tracks(demo_copy)
        report = validate(demo_copy)

        with pytest.raises(ValidationFailedError) as caught:
            report.raise_for_problems(tenant_id="acme")

        assert (report.problems, "acme") == (caught.value.problems, caught.value.tenant_id)
        assert str(caught.value).startswith("tenant 'acme': 3 problem(s) found: ")

    def test_the_error_is_located_at_the_first_problem_and_counts_rules(
        self, demo_copy: Path
    ) -> None:
        """ValidationFailedError keeps the first problem's place and the per-rule counts."""
        duplicate, _, _ = break_tracks(demo_copy)

        error = validate(demo_copy).error(tenant_id="acme")

        assert ("tracks.jsonl", duplicate, "track_id", "duplicate_key", "tracks") == (
            error.path,
            error.line,
            error.column,
            error.rule,
            error.table,
        )
        assert {"duplicate_key": 1, "missing_reference": 1, "type": 1} == error.rules
        assert all(isinstance(e, RecordError) for e in error.errors)

    def test_a_duplicate_in_a_json_array_is_located_by_record(self, demo_copy: Path) -> None:
        """Problems in files without line numbers name the record, not a fake line."""
        artists = json.loads((demo_copy / "artists.json").read_text(encoding="utf-8"))
        (demo_copy / "artists.json").write_text(
            json.dumps([*artists, artists[0]], indent=1), encoding="utf-8"
        )
        record = len(artists) + 1

        report = validate(demo_copy)

        assert 1 == len(report.problems)
        assert report.problems[0].startswith(f"artists.json, record {record}, column artist_id:")

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

        assert 1 == report.rules["file_format"]
        assert "audio_features.jsonl:101" in report.problems[0]


class TestMaxProblems:
    def test_the_problem_list_is_capped_and_marked_truncated(self, demo_copy: Path) -> None:
        """Past max_problems, problems are counted per rule but no longer listed."""
        break_tracks(demo_copy)

        report = validate(demo_copy, max_problems=1)

        assert 1 == len(report.problems)
        assert report.problems[0].startswith("tracks.jsonl:")
        assert {"duplicate_key": 1, "missing_reference": 1, "type": 1} == dict(report.rules)
        assert (True, 3) == (report.truncated, report.total)

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

    def test_a_capped_error_says_how_many_problems_there_are(self, demo_copy: Path) -> None:
        """The error's head counts every problem, not just those listed."""
        tracks = jsonl_records(demo_copy / "tracks.jsonl")
        append_jsonl(demo_copy / "tracks.jsonl", *tracks[:50])

        error = validate(demo_copy, max_problems=5).error()

        assert (5, 50) == (len(error.problems), error.total)
        assert str(error).startswith("50 problem(s) found: ")


class TestTimeout:
    def test_running_past_the_timeout_is_its_own_error(self) -> None:
        """Validation that runs out of time raises ValidationTimeoutError saying so."""
        validator = FixtureValidator(spotify_metadata(), timeout_seconds=1e-9)

        with pytest.raises(ValidationTimeoutError) as caught:
            validator.validate(open_set(DEMO))

        assert 1e-9 == caught.value.seconds
        assert caught.value.problems[0].startswith("validation stopped after 1e-09s (")
        assert isinstance(caught.value, ValidationFailedError)

    def test_the_timeout_keeps_the_problems_found_so_far(
        self, demo_copy: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Problems found before the deadline are in the timeout error."""
        (line,) = append_csv(
            demo_copy / "users.csv",
            "new-user,New,new@example.com,GBR,free,2026-01-01T00:00:00+00:00",
        )
        fixture_set = open_set(demo_copy)
        files = [f.table for f in fixture_set.files]
        read = files[: files.index("users") + 1]
        records = sum(1 for f in fixture_set.files[: len(read)] for _ in iter_records(f))
        # A clock that stands still until users.csv has been read, then jumps.
        readings = iter([0.0] * (len(read) + 1))
        clock = SimpleNamespace(monotonic=lambda: next(readings, 1e9))
        monkeypatch.setattr(fixture_validator, "time", clock)

        with pytest.raises(ValidationTimeoutError) as caught:
            FixtureValidator(spotify_metadata(), timeout_seconds=300).validate(fixture_set)

        assert [
            f"validation stopped after 300s ({records} records checked)",
            f"users.csv:{line}, column country: longer than 2 characters (3) [length]",
        ] == caught.value.problems
        assert ({"length": 1}, records) == (caught.value.rules, caught.value.records)


class TestRejectFile:
    def record(self, **values: Any) -> SourceRecord:
        return SourceRecord(values, 4, 2)

    def test_refused_records_are_written_as_json_lines(self, tmp_path: Path) -> None:
        """One object per record: where, which rule, the message and the record as read."""
        fixture_set = open_set(DEMO)
        tracks = next(f for f in fixture_set.files if f.table == "tracks")
        rejects = RejectFile(tmp_path / "out" / "acme-run.jsonl")
        rejects.open()
        error = RecordError(
            "expected an integer", path="tracks.jsonl", line=4, column="duration_ms", rule="type"
        )

        rejects.write(error, tracks, self.record(track_id="t", duration_ms="long"))
        written = rejects.commit()

        assert tmp_path / "out" / "acme-run.jsonl" == written
        assert [
            {
                "path": "tracks.jsonl",
                "table": "tracks",
                "line": 4,
                "index": 2,
                "column": "duration_ms",
                "rule": "type",
                "message": "expected an integer",
                "record": {"track_id": "t", "duration_ms": "long"},
            }
        ] == jsonl_records(written)

    def test_nothing_refused_leaves_no_file(self, tmp_path: Path) -> None:
        """commit with no record written returns None and leaves no file behind."""
        rejects = RejectFile(tmp_path / "acme-run.jsonl")
        rejects.open()

        assert rejects.commit() is None
        assert [] == list(tmp_path.iterdir())

    def test_a_discarded_file_is_gone(self, tmp_path: Path) -> None:
        """discard (a failed load) removes what was written."""
        fixture_set = open_set(DEMO)
        rejects = RejectFile(tmp_path / "acme-run.jsonl")
        rejects.open()
        rejects.write(RecordError("x", rule="type"), fixture_set.files[0], self.record(a=1))

        rejects.discard()

        assert [] == list(tmp_path.iterdir())

    def test_values_json_cannot_hold_are_written_as_text(self, tmp_path: Path) -> None:
        """NaN (YAML can give it) and non-string keys still make a valid JSON line."""
        fixture_set = open_set(DEMO)
        rejects = RejectFile(tmp_path / "acme-run.jsonl")
        rejects.open()
        values: dict[Any, Any] = {"tempo": math.nan, 3: [math.inf]}
        rejects.write(
            RecordError("x", rule="type"), fixture_set.files[0], SourceRecord(values, None, 1)
        )

        written = rejects.commit()

        assert written is not None
        assert {"tempo": "nan", "3": ["inf"]} == jsonl_records(written)[0]["record"]


def test_a_problem_is_a_fixture_error() -> None:
    """Problems are typed errors, so callers can inspect them like any refusal."""
    assert issubclass(RecordError, FixtureError)


class TestSelfReferences:
    """A table referencing itself: a parent may come after its children in the file."""

    @staticmethod
    def validate_user_set(directory: Path) -> ValidationReport:
        metadata = place_in_tenant_schema(user_metadata())
        return FixtureValidator(metadata).validate(open_fixture_set(directory, metadata=metadata))

    def test_a_reference_to_a_later_record_of_the_same_table_resolves(self) -> None:
        """Employee 3 reports to Employee 5, five lines further down: no problem."""
        report = self.validate_user_set(USER_DATA / "jsonl")

        assert (True, 20, []) == (report.ok, report.records, report.problems)

    def test_a_broken_chain_is_refused_link_by_link(self, tmp_path: Path) -> None:
        """A record whose manager is missing is refused, then those who report to it, and
        the rows of other tables that name them; later parents still resolve."""
        (tmp_path / "Employee.jsonl").write_text(
            '{"EmployeeId": 1, "LastName": "A", "ReportsTo": 2}\n'
            '{"EmployeeId": 2, "LastName": "B", "ReportsTo": 9}\n'
            '{"EmployeeId": 3, "LastName": "C", "ReportsTo": 4}\n'
            '{"EmployeeId": 4, "LastName": "D"}\n',
            encoding="utf-8",
        )
        (tmp_path / "User.jsonl").write_text(
            '{"UserId": 1, "select": "a", "CreatedAt": "2024-01-01T00:00:00Z"}\n',
            encoding="utf-8",
        )
        (tmp_path / "Order.jsonl").write_text(
            '{"OrderId": 1, "User": 1, "SupportRep": 1, "OrderDate": "2024-01-01", "Total": 1}\n'
            '{"OrderId": 2, "User": 1, "SupportRep": 3, "OrderDate": "2024-01-01", "Total": 1}\n',
            encoding="utf-8",
        )

        report = self.validate_user_set(tmp_path)

        assert [
            "Employee.jsonl:2, column ReportsTo: (ReportsTo)=(9) has no row in Employee "
            "[missing_reference]",
            "Employee.jsonl:1, column ReportsTo: (ReportsTo)=(2) has no row in Employee: "
            "its record was refused [missing_reference]",
            "Order.jsonl:1, column SupportRep: (SupportRep)=(1) has no row in Employee: "
            "its record was refused [missing_reference]",
        ] == report.problems
        assert {tmp_path / "Employee.jsonl": {1, 2}, tmp_path / "Order.jsonl": {1}} == {
            path.resolve(): records for path, records in report.rejected.items()
        }
