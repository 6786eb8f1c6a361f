"""Strict and lenient loading on both backends: every problem listed, or the bad records
set aside in a reject file while the rest loads."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import Result

from tenancy_fixtures import (
    FixtureFormatError,
    FixtureManager,
    RecordError,
    Settings,
    ValidationFailedError,
    ValidationTimeoutError,
)
from tenancy_fixtures.errors import RecordsRefusedError
from tenancy_fixtures.loading.fixture_sets import open_fixture_set
from tenancy_fixtures.loading.readers import iter_records
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.store.control_plane import applied_fixtures, count_rows
from tenancy_fixtures.validation import FixtureValidator
from tests.cli.cli_runner import Cli, assert_one_line_error
from tests.fixture_files import jsonl_records, write_jsonl
from tests.planes import plane_of

TENANT = "lenient_tenant"
NEW_TRACK = "zzzzzzzzzzzzzzzzzzzzz1"
NEW_TRACK_2 = "zzzzzzzzzzzzzzzzzzzzz2"
MISSING_ALBUM = "NoSuchAlbum00000000000"


def append_line(path: Path, line: str) -> int:
    """Append one line; return its line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([*lines, line]) + "\n", encoding="utf-8")
    return len(lines) + 1


def record_counts(directory: Path) -> dict[str, int]:
    """Records per table of the fixture set in ``directory``."""
    counts: dict[str, int] = {}
    for file in open_fixture_set(directory, metadata=spotify_metadata()).files:
        counts[file.table] = counts.get(file.table, 0) + sum(1 for _ in iter_records(file))
    return counts


async def table_counts(manager: FixtureManager, tenant_id: str = TENANT) -> dict[str, int]:
    async with manager.store.session(tenant_id, readonly=True) as session:
        counts = await count_rows(session.connection, session.metadata.sorted_tables)
    return {table: rows for table, rows in counts.items() if rows}


class ThreeBadRecords:
    """A copy of the demo set with three records each breaking a different rule."""

    def __init__(self, demo_set: Path, target: Path) -> None:
        self.directory = Path(shutil.copytree(demo_set, target))
        self.user_line = append_line(
            self.directory / "users.csv",
            "bad-user,Bad User,not-an-email,GB,free,2026-01-01T00:00:00+00:00",
        )
        tracks = self.directory / "tracks.jsonl"
        track = jsonl_records(tracks)[0]
        self.track_line = append_line(
            tracks, json.dumps({**track, "track_id": NEW_TRACK, "duration_ms": -5})
        )
        features_path = self.directory / "audio_features.jsonl"
        features = jsonl_records(features_path)
        self.features_line = 5
        features[self.features_line - 1]["tempo"] = "fast"
        write_jsonl(features_path, features)

    def expected(self) -> list[tuple[str, int, str, str]]:
        """(path, line, column, rule) of the three problems, in load order."""
        return [
            ("users.csv", self.user_line, "email", "format:email"),
            ("tracks.jsonl", self.track_line, "duration_ms", "check:duration_ms"),
            ("audio_features.jsonl", self.features_line, "tempo", "type"),
        ]


@pytest.fixture
def three_bad(demo_set: Path, tmp_path: Path) -> ThreeBadRecords:
    return ThreeBadRecords(demo_set, tmp_path / "three_bad")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """This test's backend; reject files under the test's own directory."""
    return Settings(database_url=database_url, actor="pytest", reject_dir=tmp_path / "rejects")


class TestStrict:
    async def test_a_strict_load_lists_every_bad_record_and_writes_nothing(
        self, manager: FixtureManager, three_bad: ThreeBadRecords
    ) -> None:
        """Three bad records in three files: one error listing all three, zero rows."""
        await manager.create_tenant(TENANT)

        with pytest.raises(RecordsRefusedError) as caught:
            await manager.load_fixtures(TENANT, source=three_bad.directory)

        error = caught.value
        assert isinstance(error, ValidationFailedError)
        assert isinstance(error, RecordError)
        assert three_bad.expected() == [
            (str(e.path), e.line, e.column, e.rule) for e in error.errors
        ]
        assert 3 == len(error.problems)
        assert ("users.csv", three_bad.user_line, "email", "format:email", TENANT) == (
            error.path,
            error.line,
            error.column,
            error.rule,
            error.tenant_id,
        )
        assert isinstance(error.__cause__, RecordError)
        assert {} == await table_counts(manager)
        async with manager.store.control() as conn:
            assert {"schema", "config"} == set(await applied_fixtures(conn, TENANT))
        audit = await manager.audit_log(TENANT, limit=1)
        assert ("fixtures.load", "refused", "RecordsRefusedError") == (
            audit[0].action,
            audit[0].outcome,
            audit[0].detail["error"],
        )

    async def test_a_strict_refusal_cut_short_by_the_validation_timeout_says_so(
        self, settings: Settings, three_bad: ThreeBadRecords
    ) -> None:
        """Listing every problem ran into TENANCY_VALIDATION_TIMEOUT_SECONDS and the first
        refusal stood alone, as if it were the only one (the README: a strict load lists
        every problem): the list says where it stopped, and still nothing is written."""
        hasty = settings.model_copy(update={"validation_timeout_seconds": 1e-9})
        async with FixtureManager(hasty) as manager:
            await manager.create_tenant(TENANT)
            try:
                with pytest.raises(RecordsRefusedError) as caught:
                    await manager.load_fixtures(TENANT, source=three_bad.directory)

                error = caught.value
                assert error.problems[0].startswith("validation stopped after 1e-09s (")
                assert "users.csv" == error.path
                assert 5 == error.exit_code
                assert {} == await table_counts(manager)
            finally:
                await manager.drop_tenant(TENANT)

    async def test_strict_is_the_default(
        self, manager: FixtureManager, three_bad: ThreeBadRecords, tmp_path: Path
    ) -> None:
        """Without validation=..., a bad record refuses the load and no reject file appears."""
        await manager.create_tenant(TENANT)

        with pytest.raises(ValidationFailedError):
            await manager.load_fixtures(TENANT, source=three_bad.directory)

        assert not (tmp_path / "rejects").exists()

    async def test_a_ten_megabyte_string_is_a_typed_refusal_naming_its_column(
        self, manager: FixtureManager, demo_set: Path, tmp_path: Path
    ) -> None:
        """A 10 MB playlist description is refused by the length rule, not by the database."""
        await manager.create_tenant(TENANT)
        broken = Path(shutil.copytree(demo_set, tmp_path / "huge"))
        playlists = json.loads((broken / "playlists.json").read_text(encoding="utf-8"))
        playlists[0]["description"] = "x" * 10_000_000
        (broken / "playlists.json").write_text(json.dumps(playlists), encoding="utf-8")

        with pytest.raises(ValidationFailedError) as caught:
            await manager.load_fixtures(TENANT, source=broken)

        problem, *consequences = caught.value.errors
        assert ("playlists.json", 1, "description", "length") == (
            problem.path,
            problem.record,
            problem.column,
            problem.rule,
        )
        assert "longer than 1048576 characters (10000000)" == problem.message
        # The playlist's tracks, comments... have no parent now: listed, and said why.
        assert consequences
        assert all(
            e.rule == "missing_reference" and e.message.endswith("its record was refused")
            for e in consequences
        )
        assert {} == await table_counts(manager)


class TestLenient:
    async def test_a_lenient_load_loads_the_good_records_and_rejects_the_bad(
        self, manager: FixtureManager, three_bad: ThreeBadRecords, demo_set: Path, tmp_path: Path
    ) -> None:
        """The rest of the set loads; exactly the three bad records go to the reject file."""
        await manager.create_tenant(TENANT)

        report = await manager.load_fixtures(
            TENANT, source=three_bad.directory, validation="lenient"
        )

        expected_counts = record_counts(demo_set)
        expected_counts["audio_features"] -= 1
        assert expected_counts == await table_counts(manager)
        assert expected_counts == report.row_counts
        assert 3 == report.rejected
        name = f"{TENANT}-{await plane_of(manager)}-{report.run_id}.jsonl"
        assert tmp_path / "rejects" / name == report.reject_file
        rejected = jsonl_records(report.reject_file)
        assert three_bad.expected() == [
            (r["path"], r["line"], r["column"], r["rule"]) for r in rejected
        ]
        assert "not-an-email" == rejected[0]["record"]["email"]
        assert (NEW_TRACK, -5) == (
            rejected[1]["record"]["track_id"],
            rejected[1]["record"]["duration_ms"],
        )
        assert "fast" == rejected[2]["record"]["tempo"]
        assert all(r["message"] for r in rejected)
        assert (await manager.validate_tenant(TENANT)).ok

    async def test_a_lenient_load_is_idempotent(
        self, manager: FixtureManager, three_bad: ThreeBadRecords
    ) -> None:
        """Loading the same set again leniently changes nothing and rejects nothing new."""
        await manager.create_tenant(TENANT)
        first = await manager.load_fixtures(
            TENANT, source=three_bad.directory, validation="lenient"
        )
        counts = await table_counts(manager)

        again = await manager.load_fixtures(
            TENANT, source=three_bad.directory, validation="lenient"
        )

        assert (False, 0, None) == (again.changed, again.rejected, again.reject_file)
        assert counts == await table_counts(manager)
        assert first.reject_file is not None
        assert first.reject_file.exists()

    async def test_a_strict_load_after_a_lenient_one_refuses_the_records_it_left_out(
        self, manager: FixtureManager, three_bad: ThreeBadRecords
    ) -> None:
        """The lenient load recorded the set as applied, so a strict load of the same
        files said "already applied, nothing changed" (exit 0) while three records were
        missing; it now applies the set again and refuses them. A lenient one stays a
        no-op."""
        await manager.create_tenant(TENANT)
        await manager.load_fixtures(TENANT, source=three_bad.directory, validation="lenient")
        counts = await table_counts(manager)

        with pytest.raises(RecordsRefusedError) as refused:
            await manager.load_fixtures(TENANT, source=three_bad.directory, validation="strict")

        assert 3 == len(refused.value.problems)
        assert counts == await table_counts(manager)
        again = await manager.load_fixtures(
            TENANT, source=three_bad.directory, validation="lenient"
        )
        assert (False, 0) == (again.changed, again.rejected)

    async def test_a_clean_set_loads_leniently_without_a_reject_file(
        self, manager: FixtureManager, demo_set: Path, tmp_path: Path
    ) -> None:
        """Nothing refused: no reject file at all."""
        await manager.create_tenant(TENANT)

        report = await manager.load_fixtures(TENANT, source=demo_set, validation="lenient")

        assert (0, None) == (report.rejected, report.reject_file)
        assert record_counts(demo_set) == await table_counts(manager)
        assert not (tmp_path / "rejects").exists() or not any((tmp_path / "rejects").iterdir())

    async def test_the_children_of_a_rejected_parent_are_rejected_too(
        self, manager: FixtureManager, demo_set: Path, tmp_path: Path
    ) -> None:
        """A bad album takes its tracks (and what references them) into the reject file,
        so the load never breaks a foreign key."""
        await manager.create_tenant(TENANT)
        broken = Path(shutil.copytree(demo_set, tmp_path / "cascade"))
        albums = json.loads((broken / "albums.json").read_text(encoding="utf-8"))
        bad_album = albums[0]["album_id"]
        albums[0]["total_tracks"] = 0
        (broken / "albums.json").write_text(json.dumps(albums), encoding="utf-8")
        tracks_of_album = {
            t["track_id"]
            for t in jsonl_records(broken / "tracks.jsonl")
            if t["album_id"] == bad_album
        }

        report = await manager.load_fixtures(TENANT, source=broken, validation="lenient")

        assert report.reject_file is not None
        rejected = jsonl_records(report.reject_file)
        assert ("albums.json", 1, "check:total_tracks") == (
            rejected[0]["path"],
            rejected[0]["index"],
            rejected[0]["rule"],
        )
        assert {"missing_reference"} == {r["rule"] for r in rejected[1:]}
        assert tracks_of_album == {
            r["record"]["track_id"] for r in rejected if r["table"] == "tracks"
        }
        assert report.rejected == len(rejected)
        counts = await table_counts(manager)
        assert record_counts(demo_set)["tracks"] - len(tracks_of_album) == counts["tracks"]
        assert (await manager.validate_tenant(TENANT)).ok

    async def test_references_to_rows_already_in_the_tenant_load(
        self, manager: FixtureManager, demo_set: Path, tmp_path: Path
    ) -> None:
        """A track of an album the tenant holds loads; one of a missing album is rejected."""
        await manager.create_tenant(TENANT)
        await manager.load_fixtures(TENANT, source=demo_set)
        extra = tmp_path / "extra"
        extra.mkdir()
        track = jsonl_records(demo_set / "tracks.jsonl")[0]
        write_jsonl(
            extra / "tracks.jsonl",
            [
                {**track, "track_id": NEW_TRACK},
                {**track, "track_id": NEW_TRACK_2, "album_id": MISSING_ALBUM},
            ],
        )

        report = await manager.load_fixtures(TENANT, source=extra, validation="lenient")

        assert ({"tracks": 1}, 1) == (report.row_counts, report.rejected)
        assert report.reject_file is not None
        (rejected,) = jsonl_records(report.reject_file)
        assert ("tracks.jsonl", 2, "album_id", "missing_reference") == (
            rejected["path"],
            rejected["line"],
            rejected["column"],
            rejected["rule"],
        )
        assert record_counts(demo_set)["tracks"] + 1 == (await table_counts(manager))["tracks"]

    async def test_a_malformed_file_refuses_a_lenient_load(
        self, manager: FixtureManager, three_bad: ThreeBadRecords, tmp_path: Path
    ) -> None:
        """A file that cannot be read to its end cannot be loaded in part: nothing is."""
        await manager.create_tenant(TENANT)
        with (three_bad.directory / "playlist_tracks.jsonl").open("a", encoding="utf-8") as f:
            f.write('{"playlist_id": \n')

        with pytest.raises(FixtureFormatError) as caught:
            await manager.load_fixtures(TENANT, source=three_bad.directory, validation="lenient")

        assert "playlist_tracks.jsonl" == caught.value.path
        assert {} == await table_counts(manager)
        assert [] == list((tmp_path / "rejects").glob("*"))

    async def test_the_mode_and_directory_can_come_from_settings(
        self, database_url: str, three_bad: ThreeBadRecords, tmp_path: Path
    ) -> None:
        """TENANCY_VALIDATION_MODE=lenient and TENANCY_REJECT_DIR apply without arguments."""
        settings = Settings(
            database_url=database_url,
            actor="pytest",
            validation_mode="lenient",
            reject_dir=tmp_path / "elsewhere",
        )
        async with FixtureManager(settings) as manager:
            try:
                await manager.create_tenant(TENANT)
                report = await manager.load_fixtures(TENANT, source=three_bad.directory)
            finally:
                await manager.drop_tenant(TENANT)

        assert 3 == report.rejected
        assert report.reject_file is not None
        assert tmp_path / "elsewhere" == report.reject_file.parent

    async def test_an_explicit_reject_dir_wins(
        self, manager: FixtureManager, three_bad: ThreeBadRecords, tmp_path: Path
    ) -> None:
        """load_fixtures(reject_dir=...) overrides the setting."""
        await manager.create_tenant(TENANT)

        report = await manager.load_fixtures(
            TENANT, source=three_bad.directory, validation="lenient", reject_dir=tmp_path / "mine"
        )

        assert report.reject_file is not None
        assert tmp_path / "mine" == report.reject_file.parent

    async def test_many_tenants_each_get_their_own_reject_file(
        self, manager: FixtureManager, three_bad: ThreeBadRecords
    ) -> None:
        """load_fixtures_many passes the mode on; each tenant's rejects are its own."""
        for tenant in ("lenient_a", "lenient_b"):
            await manager.create_tenant(tenant)

        combined = await manager.load_fixtures_many(
            ["lenient_a", "lenient_b"], three_bad.directory, validation="lenient"
        )

        assert combined.ok
        files = {t: r.reject_file for t, r in combined.reports.items()}
        assert {"lenient_a": 3, "lenient_b": 3} == {
            t: r.rejected for t, r in combined.reports.items()
        }
        assert all(f is not None and f.name.startswith(f"{t}-") for t, f in files.items())


class TestValidateForTenant:
    async def test_a_reference_to_a_row_in_the_tenant_passes_and_to_a_missing_row_fails(
        self, manager: FixtureManager, demo_set: Path, tmp_path: Path
    ) -> None:
        """With the tenant's rows, a parent outside the set resolves; a missing one does not."""
        await manager.create_tenant(TENANT)
        await manager.load_fixtures(TENANT, source=demo_set)
        track = jsonl_records(demo_set / "tracks.jsonl")[0]
        good, bad = tmp_path / "good", tmp_path / "bad"
        good.mkdir()
        bad.mkdir()
        write_jsonl(good / "tracks.jsonl", [{**track, "track_id": NEW_TRACK}])
        write_jsonl(
            bad / "tracks.jsonl", [{**track, "track_id": NEW_TRACK, "album_id": MISSING_ALBUM}]
        )
        validator = FixtureValidator(manager.store.metadata)

        async with manager.store.session(TENANT, readonly=True) as session:
            passed = await validator.validate_for_tenant(
                open_fixture_set(good, metadata=manager.store.metadata), session
            )
            failed = await validator.validate_for_tenant(
                open_fixture_set(bad, metadata=manager.store.metadata), session
            )

        assert passed.ok
        assert [
            f"tracks.jsonl:1, column album_id: (album_id)=({MISSING_ALBUM}) has no row in "
            "albums [missing_reference]"
        ] == failed.problems

    async def test_the_timeout_covers_validation_for_a_tenant(
        self, manager: FixtureManager, demo_set: Path
    ) -> None:
        """A validation that runs out of time is a ValidationTimeoutError."""
        await manager.create_tenant(TENANT)
        validator = FixtureValidator(manager.store.metadata, timeout_seconds=1e-9)

        with pytest.raises(ValidationTimeoutError):
            async with manager.store.session(TENANT, readonly=True) as session:
                await validator.validate_for_tenant(
                    open_fixture_set(demo_set, metadata=manager.store.metadata), session
                )


class TestCommandLine:
    def run(self, database_url: str, *args: str) -> Result:
        return Cli(database_url)(*args)

    def test_load_fixtures_lenient_reports_the_reject_file(
        self, database_url: str, three_bad: ThreeBadRecords, tmp_path: Path
    ) -> None:
        """``load-fixtures T SET --lenient --reject-dir D --json`` loads and names the file."""
        tenant = "cli_lenient"
        assert 0 == self.run(database_url, "init-tenant", tenant).exit_code
        try:
            result = self.run(
                database_url,
                "load-fixtures",
                tenant,
                str(three_bad.directory),
                "--lenient",
                "--reject-dir",
                str(tmp_path / "cli_rejects"),
                "--json",
            )
            assert 0 == result.exit_code, result.output
            document = json.loads(result.stdout)
            assert 3 == document["rejected"]
            assert 3 == len(jsonl_records(Path(document["reject_file"])))
            assert Path(document["reject_file"]).parent == tmp_path / "cli_rejects"
        finally:
            self.run(database_url, "cleanup", tenant, "--yes")

    def test_load_fixtures_strict_exits_5_with_one_line_naming_every_problem(
        self, database_url: str, three_bad: ThreeBadRecords
    ) -> None:
        """A strict CLI load prints one line listing the three problems and exits 5 (fixture
        data refused)."""
        tenant = "cli_strict"
        assert 0 == self.run(database_url, "init-tenant", tenant).exit_code
        try:
            result = self.run(
                database_url, "load-fixtures", tenant, str(three_bad.directory), "--json"
            )
            assert 5 == result.exit_code, result.output
            assert "" == result.stdout
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert 1 == len(lines)
            assert lines[0].startswith(f"error: tenant '{tenant}': 3 problem(s) found: ")
            for path, line, _, rule in three_bad.expected():
                assert f"{path}:{line}" in lines[0]
                assert f"[{rule}]" in lines[0]
        finally:
            self.run(database_url, "cleanup", tenant, "--yes")

    def test_a_reject_dir_that_is_a_file_is_a_one_line_error_and_nothing_loads(
        self, database_url: str, three_bad: ThreeBadRecords, tmp_path: Path
    ) -> None:
        """``--reject-dir`` naming a file: invalid input naming the reject directory
        (exit 2, as the setting; it was "unexpected error: NotADirectoryError", exit 1,
        then a storage error, exit 7); and the setting TENANCY_REJECT_DIR naming a file is
        refused at start-up (exit 2)."""
        plain = tmp_path / "plain"
        plain.write_text("not a folder")
        tenant = "cli_reject_file"
        cli = Cli(database_url)
        cli.ok("init-tenant", tenant)
        try:
            args = ("load-fixtures", tenant, str(three_bad.directory), "--lenient")
            given = cli(*args, "--reject-dir", str(plain))
            configured = Cli(database_url, env={"TENANCY_REJECT_DIR": str(plain)})(*args)
            rows = cli.json("show", tenant)["rows"]
        finally:
            cli("cleanup", tenant, "--yes")

        line = assert_one_line_error(given, 2, "error:")
        assert str(plain) in line
        assert "--reject-dir" in line
        assert "TENANCY_REJECT_DIR" in assert_one_line_error(configured, 2, "error:")
        assert 0 == rows
