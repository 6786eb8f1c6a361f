"""``tenancy-fixtures validate-data TENANT|--all``: the report table, ``--json``, exit codes,
and the report stored as a run, on both backends."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.validation.integrity import CHECKS, REGISTRY_CHECK
from tests.cli.cli_runner import Cli, assert_one_line_error, with_manager

REPORT_KEYS = {
    "tenant_id",
    "ok",
    "run_id",
    "checks",
    "problems",
    "row_counts",
    "orphans",
    "checksums",
    "storage",
    "stages",
}


def _change_one_track(database_url: str, tenant: str) -> None:
    """Change one loaded track's popularity behind the CLI's back."""

    async def work(manager: FixtureManager) -> None:
        async with manager.store.session(tenant) as session:
            tracks = session.metadata.tables["tenant.tracks"]
            track_id = (
                await session.connection.execute(select(tracks.c.track_id).limit(1))
            ).scalar_one()
            await session.connection.execute(
                update(tracks)
                .where(tracks.c.track_id == track_id)
                .values(popularity=tracks.c.popularity + 1)
            )

    with_manager(database_url, work)


def _last_validate_run(database_url: str, tenant: str) -> dict[str, Any] | None:
    async def work(manager: FixtureManager) -> dict[str, Any] | None:
        async with manager.store.control(readonly=True) as conn:
            return await control_plane.last_run(conn, tenant, "validate")

    result: dict[str, Any] | None = with_manager(database_url, work)
    return result


def test_validate_data_prints_a_line_per_check_and_exits_0_on_a_clean_tenant(
    cli: Cli, tenant_prefix: str
) -> None:
    """A loaded tenant: a table naming every check as ok, a summary line, exit 0."""
    tenant = f"{tenant_prefix}clean"
    cli.ok("init-tenant", tenant, "--load")

    result = cli.ok("validate-data", tenant)

    assert f"{tenant}: ok" in result.stdout
    for check in CHECKS:
        assert check in result.stdout, check
    assert "failed" not in result.stdout.replace("0 failed", "")
    assert "1 tenant(s) checked, 0 failed" in result.stdout


def test_validate_data_json_gives_the_documented_keys(cli: Cli, tenant_prefix: str) -> None:
    """--json: a list of reports with the keys the README documents, every check ok."""
    tenant = f"{tenant_prefix}keys"
    cli.ok("init-tenant", tenant, "--load")

    [report] = cli.json("validate-data", tenant)

    assert REPORT_KEYS == set(report)
    assert (tenant, True, []) == (report["tenant_id"], report["ok"], report["problems"])
    assert list(CHECKS) == list(dict.fromkeys(c["check"] for c in report["checks"]))
    assert {"check", "status", "detail", "table"} == set(report["checks"][0])
    # The tier's derived aggregates are "info": no fixture recorded their checksums.
    assert {"ok"} <= {c["status"] for c in report["checks"]} <= {"ok", "info"}
    tracks = report["checksums"]["tracks"]
    assert {"rows", "checksum", "status", "expected_rows", "expected", "method"} == set(tracks)
    assert ("match", tracks["checksum"]) == (tracks["status"], tracks["expected"])
    assert {"bytes", "limit"} == set(report["storage"])
    assert report["storage"]["bytes"] < report["storage"]["limit"]


def test_validate_data_exits_6_naming_a_table_changed_after_loading(
    cli: Cli, tenant_prefix: str, database_url: str
) -> None:
    """One changed value: the table shows the failure and stderr has one line, exit 6."""
    tenant = f"{tenant_prefix}changed"
    cli.ok("init-tenant", tenant, "--load")
    _change_one_track(database_url, tenant)

    result = cli("validate-data", tenant)

    line = assert_one_line_error(result, 6, "error:")
    assert f"tenant '{tenant}'" in line
    assert "tracks: content checksum" in line
    assert f"{tenant}: 1 check(s) failed" in result.stdout
    assert "1 tenant(s) checked, 1 failed" in result.stdout


def test_validate_data_json_still_prints_the_report_when_a_check_fails(
    cli: Cli, tenant_prefix: str, database_url: str
) -> None:
    """--json on a failing tenant prints the full report and exits 6."""
    tenant = f"{tenant_prefix}jsonfail"
    cli.ok("init-tenant", tenant, "--load")
    _change_one_track(database_url, tenant)

    result = cli("validate-data", tenant, "--json")

    assert 6 == result.exit_code, result.output
    [report] = json.loads(result.stdout)
    assert [("checksums", "tracks")] == [
        (c["check"], c["table"]) for c in report["checks"] if c["status"] == "failed"
    ]
    assert "mismatch" == report["checksums"]["tracks"]["status"]


def test_validate_data_all_checks_every_tenant_and_fails_if_one_fails(
    cli: Cli, tenant_prefix: str, database_url: str
) -> None:
    """--all reports each tenant; one changed tenant makes the command exit 6."""
    clean, changed = f"{tenant_prefix}a", f"{tenant_prefix}b"
    cli.ok("init-tenant", clean, "--load")
    cli.ok("init-tenant", changed, "--load")
    _change_one_track(database_url, changed)

    result = cli("validate-data", "--all", "--json")

    assert 6 == result.exit_code, result.output
    ours = {r["tenant_id"]: r["ok"] for r in json.loads(result.stdout)}
    assert {clean: True, changed: False} == {t: ours[t] for t in (clean, changed)}
    line = assert_one_line_error(result, 6, "error:")
    assert changed in line
    assert "tracks: content checksum" in line


def test_validate_data_stores_its_report_as_a_validate_run(
    cli: Cli, tenant_prefix: str, database_url: str
) -> None:
    """The run recorded for the tenant holds the very report --json printed."""
    tenant = f"{tenant_prefix}run"
    cli.ok("init-tenant", tenant, "--load")

    [report] = cli.json("validate-data", tenant)

    run = _last_validate_run(database_url, tenant)
    assert run is not None
    assert (report["run_id"], "ok") == (run["run_id"], run["status"])
    assert report == run["detail"]
    audited = [e for e in cli.json("audit", tenant) if e["action"] == "data.validate"]
    assert [("ok", report["run_id"])] == [(e["outcome"], e["run_id"]) for e in audited]


def test_validate_data_of_an_unknown_tenant_exits_4(cli: Cli, tenant_prefix: str) -> None:
    """A tenant that does not exist: one line, exit 4 (TenantNotFoundError)."""
    line = assert_one_line_error(cli("validate-data", f"{tenant_prefix}ghost"), 4, "error: tenant")
    assert "does not exist" in line


def _unregister_and_unstore(database_url: str, unregistered: str, unstored: str) -> None:
    """Behind the CLI's back: delete one tenant's registry row, the other's storage."""

    async def work(manager: FixtureManager) -> str | None:
        async with manager.store.control() as conn:
            await control_plane.delete_tenant(conn, unregistered)
            if manager.store.backend == "postgresql":
                await conn.execute(text(f'DROP SCHEMA "{unstored}" CASCADE'))
                return None
        return manager.store.storage_name(unstored)

    tenant_file = with_manager(database_url, work)
    if tenant_file is not None:
        Path(tenant_file).unlink()


def test_validate_data_all_reports_storage_without_registry_row_and_the_reverse(
    cli: Cli, tenant_prefix: str, database_url: str
) -> None:
    """--all: a file or schema nobody lists and a registry row without storage each fail
    the registry check (exit 6); cleanup removes both and --all passes again."""
    kept, unregistered, unstored = (f"{tenant_prefix}{n}" for n in ("kept", "unreg", "unstored"))
    for tenant in (kept, unregistered, unstored):
        cli.ok("init-tenant", tenant)
    _unregister_and_unstore(database_url, unregistered, unstored)

    result = cli("validate-data", "--all", "--json")

    assert 6 == result.exit_code, result.output
    reports = {r["tenant_id"]: r for r in json.loads(result.stdout)}
    assert {kept: True, unregistered: False, unstored: False} == {
        t: reports[t]["ok"] for t in (kept, unregistered, unstored)
    }
    for tenant in (unregistered, unstored):
        assert [REGISTRY_CHECK] == [c["check"] for c in reports[tenant]["checks"]]
    assert "is not registered" in reports[unregistered]["problems"][0]
    assert "is missing" in reports[unstored]["problems"][0]

    cli.ok("cleanup", "--prefix", tenant_prefix, "--yes")

    remaining = {r["tenant_id"] for r in cli.json("validate-data", "--all")}
    assert set() == {t for t in remaining if t.startswith(tenant_prefix)}


def test_validate_data_refuses_a_tenant_with_a_source_set_on_disk(
    cli: Cli, tenant_prefix: str, tmp_path: Path
) -> None:
    """``--source`` checks a set on disk, not a tenant: a TENANT or ``--all`` beside it
    is a usage error (it was ignored, a hostile id too, and the exit was 0)."""
    fixtures = tmp_path / "set"
    fixtures.mkdir()
    (fixtures / "users.jsonl").write_text('{"user_id": "u1"}\n', encoding="utf-8")

    for extra in ([f"{tenant_prefix}ghost"], ["../x"], ["--all"]):
        result = cli("validate-data", *extra, "--source", str(fixtures))
        assert_one_line_error(result, 2, "error: --source checks a fixture set on disk")


# --- --source with source-format files --------------------------------------------------

SAMPLES = Path(__file__).parent.parent / "data" / "spotify"
DJANGO_DUMP = [
    {"model": "music.artist", "pk": "4Z8W4fKeB5YxbusRsdQVPb", "fields": {"name": "Radiohead"}},
    {
        "model": "music.album",
        "pk": "6dVIqQ8qmQ5GBnJ9shOYGE",
        "fields": {"name": "OK Computer", "artist": ["Radiohead"]},
    },
]


def _api_tracks(directory: Path, *, popularity: int | None = None) -> Path:
    """``api/tracks.jsonl``: two Web API track objects, the second's popularity given."""
    tracks = json.loads((SAMPLES / "several_tracks.json").read_text(encoding="utf-8"))
    first, second = tracks["tracks"][:2]
    if popularity is not None:
        second["popularity"] = popularity
    path = directory / "api" / "tracks.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n", encoding="utf-8")
    return path


def _manifest(directory: Path, *entries: dict[str, Any]) -> Path:
    (directory / "fixtures.json").write_text(json.dumps({"files": list(entries)}), "utf-8")
    return directory


def test_validate_data_source_checks_a_manifests_source_entries_naming_file_line_and_field(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """A manifest's ``format`` entry is staged and checked as a load would: the record
    load-fixtures refuses is refused here too, named by the source file, line and field
    (it was skipped: "0 records checked", exit 0)."""
    source = tmp_path / "set"
    _api_tracks(source, popularity=150)
    _manifest(source, {"path": "api/tracks.jsonl", "format": "spotify-api"})

    result = sqlite_cli("validate-data", "--source", str(source))

    line = assert_one_line_error(result, 6, "error: 1 problem(s) found: api/tracks.jsonl:2, ")
    assert "column popularity: 150 breaks CHECK" in line
    sqlite_cli.ok("init-tenant", "acme")
    loaded = sqlite_cli("load-fixtures", "acme", str(source))
    assert 5 == loaded.exit_code, loaded.output
    assert line.removeprefix("error: ") in loaded.stderr


def test_validate_data_source_reports_a_record_its_format_refuses_and_checks_the_rest(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """A history entry the format refuses while staging is a problem, named by file,
    record and field, as a lenient load sets it aside; the other records are staged
    and checked (they were said to be not checked)."""
    source = tmp_path / "set"
    history = json.loads(
        (SAMPLES / "Streaming_History_Audio_2024.json").read_text(encoding="utf-8")
    )
    history[2]["ms_played"] = -5
    (source / "history").mkdir(parents=True)
    (source / "history" / "plays.json").write_text(json.dumps(history), encoding="utf-8")
    _manifest(
        source,
        {"path": "history/plays.json", "format": "spotify-history", "options": {"user_id": "u"}},
    )

    result = sqlite_cli("validate-data", "--source", str(source), "--json")

    assert 6 == result.exit_code, result.output
    document = json.loads(result.stdout)
    assert False is document["ok"]
    [problem] = document["problems"]
    assert problem.startswith("history/plays.json, record 3, column ms_played: ")
    assert not any("the other records" in entry for entry in document["not_checked"])
    assert 1 < document["records"]  # the staged rows, and the entry set aside


def test_validate_data_source_checks_source_files_found_in_a_directory_or_given_alone(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """Without a manifest, the source files load-fixtures detects are checked too (they
    were refused as "unknown table")."""
    path = _api_tracks(tmp_path, popularity=150)

    for given in (path.parent, path):
        result = sqlite_cli("validate-data", "--source", str(given))
        line = assert_one_line_error(result, 6, "error: 1 problem(s) found: tracks.jsonl:2, ")
        assert "[check:popularity]" in line


def test_validate_data_source_passes_clean_source_entries_and_names_what_needs_the_tenant(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """Clean source entries pass with their staged rows counted; a reference to a table
    the set fills no row of is listed as not checked, not silently passed."""
    source = tmp_path / "set"
    _api_tracks(source)
    _manifest(source, {"path": "api/tracks.jsonl", "format": "spotify-api"})

    document = sqlite_cli.json("validate-data", "--source", str(source))

    assert (True, [], []) == (document["ok"], document["problems"], document["not_checked"])
    assert document["records"] > 2  # the tracks, their albums and artists
    plain = {
        "album_id": "4aawyAB9vmqN3uQ7FjRGTy",
        "name": "Lost",
        "album_type": "album",
        "artist_id": "0OdUWJ0sBjDrqHygGUXeCF",
        "release_date": "2021-03-07",
        "release_date_precision": "day",
        "total_tracks": 1,
        "label": None,
    }
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "albums.jsonl").write_text(json.dumps(plain) + "\n", encoding="utf-8")
    text = sqlite_cli.ok("validate-data", "--source", str(alone)).stdout
    assert "not checked: references albums(artist_id) -> artists" in text


def test_validate_data_source_refuses_a_source_file_only_a_load_can_stage(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """A Django dump whose natural keys resolve against the tenant's rows cannot be
    staged without one: exit 6 naming the file, never a silent ok."""
    source = tmp_path / "set"
    source.mkdir()
    (source / "music.json").write_text(json.dumps(DJANGO_DUMP), encoding="utf-8")
    options = {"natural_keys": "music.Artist:name"}
    _manifest(source, {"path": "music.json", "format": "django", "options": options})

    result = sqlite_cli("validate-data", "--source", str(source))

    line = assert_one_line_error(result, 6, "error: 1 problem(s) found: not checked: music.json: ")
    assert "natural keys" in line


def test_validate_data_source_reads_a_history_export_with_the_format_and_options_a_load_takes(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """``load-fixtures T export.json -o user_id=u`` is checked as ``validate-data
    --source export.json -o user_id=u`` (no ``-o`` was taken: an export given alone could
    never pass, it always lacked its ``user_id``); ``--format`` too, only with --source."""
    export = tmp_path / "plays.json"
    export.write_text((SAMPLES / "Streaming_History_Audio_2024.json").read_text("utf-8"), "utf-8")

    given = ("--source", str(export), "--format", "spotify-history", "-o", "user_id=u")
    document = sqlite_cli.json("validate-data", *given)
    lacking = sqlite_cli("validate-data", "--source", str(export))
    without_source = sqlite_cli("validate-data", "--all", "-o", "user_id=u")

    assert (True, []) == (document["ok"], document["problems"])
    assert_one_line_error(lacking, 6, "error: 1 problem(s) found: plays.json, record 1, ")
    assert_one_line_error(without_source, 2, "error: --format and --option say how to read")


def test_validate_data_source_lists_an_empty_json_table_file_with_the_sets_other_problems(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """An empty ``users.json`` is a problem of its file ("the file is empty") listed
    with the set's others, exit 6, not a stop at "cannot tell the format of this file";
    the load is refused naming it."""
    source = tmp_path / "set"
    source.mkdir()
    (source / "users.json").write_bytes(b"")
    artist = {"artist_id": "4Z8W4fKeB5YxbusRsdQVPb", "name": "Radiohead", "popularity": 500}
    (source / "artists.jsonl").write_text(json.dumps(artist) + "\n", encoding="utf-8")

    result = sqlite_cli("validate-data", "--source", str(source))

    assert 6 == result.exit_code, result.output
    assert "users.json" in result.output
    assert "users.json: the file is empty" in result.output
    assert "artists.jsonl:1, column popularity" in result.output
    sqlite_cli.ok("init-tenant", "acme")
    loaded = sqlite_cli("load-fixtures", "acme", str(source))
    assert 5 == loaded.exit_code, loaded.output
    assert "users.json" in loaded.output
    assert "cannot tell the format" not in loaded.output


def test_validate_data_source_says_how_many_problems_it_did_not_list(tmp_path: Path) -> None:
    """Past ``TENANCY_VALIDATION_MAX_PROBLEMS`` the printed list ends saying how many
    problems were left out (the JSON says ``truncated``), not silently at the cap."""
    source = tmp_path / "set"
    source.mkdir()
    artists = [
        {"artist_id": f"4Z8W4fKeB5YxbusRsdQV{i:02d}", "name": "A", "popularity": 500}
        for i in range(7)
    ]
    (source / "artists.jsonl").write_text(
        "".join(json.dumps(a) + "\n" for a in artists), encoding="utf-8"
    )
    cli = Cli(f"sqlite:///{tmp_path / 'data'}", env={"TENANCY_VALIDATION_MAX_PROBLEMS": "3"})

    result = cli("validate-data", "--source", str(source))

    assert 6 == result.exit_code, result.output
    assert 3 == result.stdout.count("  - artists.jsonl:")
    assert "4 more problem(s) not listed" in result.stdout
