"""Loads over HTTP: an uploaded archive or a server-side set, run as a background job
followed by polling or server-sent events; hostile archives and paths refused."""

from __future__ import annotations

import asyncio
import io
import json
import resource
import shutil
import signal
import subprocess
import tarfile
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.service import create_app
from tests.integration.test_domain_loaders import OPENAI_KEY, model
from tests.service.archives import (
    corrupt_tar_bz2,
    corrupt_tar_xz,
    tar_gz,
    tar_gz_failing_its_crc,
    tar_gz_of,
    unreadable_zip,
    zip_of,
    zip_of_headers_only,
)
from tests.service.served import served

pytestmark = pytest.mark.usefixtures("tokens")

ARCHIVE = {"Content-Type": "application/gzip"}


async def finished(client: httpx.AsyncClient, headers: dict[str, str], location: str) -> Any:
    """The job at ``location`` once it has ended."""
    for _ in range(1200):
        job = (await client.get(location, headers=headers)).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {location} did not end")


async def test_an_uploaded_archive_loads_in_the_background(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    manager: FixtureManager,
    demo_set: Path,
    service_settings: Any,
) -> None:
    """202 with the job at once; the job ends succeeded with the load's report, the
    tenant holds the rows, and the upload's files are gone."""
    started = await client.post(
        "/tenants/victim/uploads", content=tar_gz(demo_set), headers={**admin, **ARCHIVE}
    )
    assert started.status_code == 202, started.text
    job = await finished(client, admin, started.headers["location"])
    assert job["status"] == "succeeded", job
    status = await manager.tenant_status("victim")
    assert status.row_counts["users"] == job["progress"]["users"] == 20
    assert job["report"]["rows"] == sum(job["report"]["row_counts"].values()) > 0
    run = await client.get(f"/tenants/victim/runs/{job['report']['run_id']}", headers=admin)
    assert run.status_code == 200
    assert run.json()["operation"] == "load"
    assert list(service_settings.service_work_dir.iterdir()) == []


async def test_server_sent_events_follow_a_load_to_its_end(
    client: httpx.AsyncClient, admin: dict[str, str], demo_set: Path, load_root: Path
) -> None:
    """The event stream shows the job, progress while it runs, and ends with one
    ``succeeded`` event carrying the report."""
    shutil.copytree(demo_set, load_root / "demo")
    started = await client.post("/tenants/victim/loads", json={"path": "demo"}, headers=admin)
    assert started.status_code == 202, started.text
    events: list[tuple[str, dict[str, Any]]] = []
    url = started.headers["location"] + "/events"
    async with client.stream("GET", url, headers=admin) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = ""
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    assert [n for n, _ in events][-1] == "succeeded"
    assert all(n == "progress" for n, _ in events[:-1])
    assert events[-1][1]["report"]["rows"] > 0


async def test_a_refused_load_ends_failed_with_its_problem(
    client: httpx.AsyncClient, admin: dict[str, str], manager: FixtureManager, tmp_path: Path
) -> None:
    """A fixture set with a bad record: the job fails with the typed error as a problem
    document naming file and rule; nothing was written."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "users.csv").write_text(
        "user_id,display_name,email,country,product,created_at\n"
        "u1,Ann,not-an-email,XX,free,2026-01-01T00:00:00+00:00\n"
    )
    started = await client.post(
        "/tenants/victim/uploads", content=tar_gz(bad), headers={**admin, **ARCHIVE}
    )
    job = await finished(client, admin, started.headers["location"])
    assert job["status"] == "failed"
    assert job["problem"]["status"] == 422
    assert job["problem"]["type"].endswith("RecordsRefusedError")
    assert job["problem"]["rules"]
    assert "users.csv:2, column email" in job["problem"]["detail"]
    assert "upload-" not in job["problem"]["detail"]  # no server folder shown
    assert (await manager.tenant_status("victim")).total_rows == 0


async def test_an_uploaded_django_dump_with_a_plain_api_key_fails_without_showing_it(
    client: httpx.AsyncClient, admin: dict[str, str], manager: FixtureManager, tmp_path: Path
) -> None:
    """``dumpdata`` records of ai_models in an archive go through the AI-model checks:
    the job fails naming the record's line and rule, never the key; nothing written."""
    dump = tmp_path / "dump"
    dump.mkdir()
    models = [model("chat-main"), model("chat-leaky", is_default=False, credentials=OPENAI_KEY)]
    (dump / "models.jsonl").write_text(
        "".join(
            json.dumps({"model": "ai.ai_model", "pk": m.pop("model_id"), "fields": m}) + "\n"
            for m in models
        ),
        encoding="utf-8",
    )
    started = await client.post(
        "/tenants/victim/uploads", content=tar_gz(dump), headers={**admin, **ARCHIVE}
    )
    job = await finished(client, admin, started.headers["location"])
    assert job["status"] == "failed"
    assert "models.jsonl:2" in job["problem"]["detail"]
    assert "credentials:plain_text" in json.dumps(job["problem"])
    assert OPENAI_KEY not in json.dumps(job)
    assert (await manager.tenant_status("victim")).total_rows == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_load_failing_unexpectedly_ends_with_the_internal_error_problem(
    client: httpx.AsyncClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anything unexpected is the service's InternalError problem, with nothing of the
    error in it (README): a job's was ``about:blank`` naming the exception's class."""

    async def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(FixtureManager, "load", failing)
    started = await client.post("/tenants/victim/loads", json={}, headers=admin)
    job = await finished(client, admin, started.headers["location"])
    assert job["status"] == "failed"
    assert job["problem"]["type"] == "urn:tenancy-fixtures:problem:InternalError"
    assert job["problem"]["status"] == 500
    assert "RuntimeError" not in json.dumps(job)
    assert "secret" not in json.dumps(job)


async def test_loading_the_tiers_fixtures_needs_no_source(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """An empty body loads the tenant's tier fixtures from the tenant template."""
    started = await client.post("/tenants/victim/loads", json={}, headers=admin)
    job = await finished(client, admin, started.headers["location"])
    assert job["status"] == "succeeded", job
    assert job["report"]["changed"] is True


async def test_a_job_is_found_only_under_its_own_tenant(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """Another tenant's path, or an unknown id: 404."""
    started = await client.post("/tenants/victim/loads", json={}, headers=admin)
    job_id = started.json()["job_id"]
    await finished(client, admin, started.headers["location"])
    assert (await client.get(f"/tenants/intruder/loads/{job_id}", headers=admin)).status_code == 404
    assert (await client.get("/tenants/victim/loads/nope", headers=admin)).status_code == 404


# --- hostile input: archive handling does not depend on the backend ----------------

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


USERS = b"user_id,display_name,email,country,product,created_at\n"


@sqlite_only
@pytest.mark.parametrize("top_folder", [False, True], ids=["files-at-the-top", "in-a-folder"])
async def test_a_failed_uploads_problem_shows_no_server_folder(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    service_settings: Any,
    tmp_path: Path,
    top_folder: bool,
) -> None:
    """A set refused as a whole (its manifest names a file outside it) is named by the
    error itself, not one of its files: with its files at the archive's top, the job's
    problem named the upload's folder on the server (``/tmp/.../upload-victim-.../set``)."""
    manifest = {"name": "x", "version": 1, "files": [{"table": "users", "path": "/etc/passwd"}]}
    member = _member("set/fixtures.json" if top_folder else "fixtures.json")
    archive = tar_gz_of([(member, json.dumps(manifest).encode())])
    started = await client.post(
        "/tenants/victim/uploads", content=archive, headers={**admin, **ARCHIVE}
    )
    job = await finished(client, admin, started.headers["location"])
    assert job["status"] == "failed"
    detail = job["problem"]["detail"]
    shown = "set" if top_folder else "the fixture set"  # its folder in the archive, if any
    assert f"tenant 'victim', {shown}: path '/etc/passwd' must be relative" in detail
    assert str(tmp_path) not in detail
    assert "upload-" not in detail


@sqlite_only
async def test_a_server_set_refused_as_a_whole_does_not_show_the_load_root(
    client: httpx.AsyncClient, admin: dict[str, str], load_root: Path
) -> None:
    """The load root itself named as the set (``"."``), refused as a whole: the job's
    problem does not show where the root is on the server."""
    manifest = {"name": "x", "version": 1, "files": [{"table": "users", "path": "../x"}]}
    (load_root / "fixtures.json").write_text(json.dumps(manifest))
    started = await client.post("/tenants/victim/loads", json={"path": "."}, headers=admin)
    job = await finished(client, admin, started.headers["location"])
    assert job["status"] == "failed"
    assert "resolves outside the fixture directory" in job["problem"]["detail"]
    assert str(load_root) not in job["problem"]["detail"]


@sqlite_only
@pytest.mark.parametrize(
    ("archive", "reason"),
    [
        (tar_gz_of([(_member("../escape.csv"), USERS)]), "outside"),
        (tar_gz_of([(_member("/abs/users.csv"), USERS)]), "outside"),
        (tar_gz_of([(_member("users.csv", tarfile.SYMTYPE, "/etc/passwd"), None)]), "regular"),
        (tar_gz_of([(_member("users.csv", tarfile.LNKTYPE, "../x"), None)]), "regular"),
        (tar_gz_of([(_member("fifo", tarfile.FIFOTYPE), None)]), "regular"),
        (zip_of({"../../users.csv": USERS}), "outside"),
        (zip_of({"a.csv": USERS}, symlinks={"users.csv": "/etc/passwd"}), "regular"),
        (zip_of({f"f{i}/users.csv": USERS for i in range(201)}), "entries"),
        (zip_of({"users.csv": b"0" * (9 << 20)}), "unpacks"),
        (tar_gz_of([(_member("users.csv"), USERS)], trailing=9 << 20), "unpacks"),
        (tar_gz_of([(_member("users.csv"), USERS), (_member("users.csv"), USERS)]), "twice"),
        (tar_gz_of([]), "no files"),
    ],
    ids=[
        "tar-dotdot",
        "tar-absolute",
        "tar-symlink",
        "tar-hardlink",
        "tar-fifo",
        "zip-dotdot",
        "zip-symlink",
        "zip-too-many-entries",
        "zip-bomb",
        "tar-gz-bomb-after-the-end",
        "tar-duplicate",
        "tar-empty",
    ],
)
async def test_hostile_archives_are_refused_and_leave_nothing(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    service_settings: Any,
    tmp_path: Path,
    archive: bytes,
    reason: str,
) -> None:
    """Escaping names, links, devices, too many entries, too many bytes unpacked: 422
    before any load starts, and the upload's folder is removed."""
    response = await client.post(
        "/tenants/victim/uploads", content=archive, headers={**admin, **ARCHIVE}
    )
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]
    assert list(service_settings.service_work_dir.iterdir()) == []
    assert not (tmp_path / "escape.csv").exists()


@sqlite_only
@pytest.mark.parametrize(
    ("archive", "reason"),
    [
        (unreadable_zip(flags=0x1), "encrypted"),
        (unreadable_zip(method=99), "compression method 99"),
        (unreadable_zip(garbled=True), "cannot be read (error"),
        (corrupt_tar_xz(), "cannot be read (LZMAError"),
    ],
    ids=["zip-encrypted", "zip-method-99", "zip-bad-deflate", "tar-xz-corrupt"],
)
async def test_an_archive_the_libraries_cannot_read_is_a_422_not_a_500(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    service_settings: Any,
    archive: bytes,
    reason: str,
) -> None:
    """zipfile's RuntimeError (encrypted) and NotImplementedError (method 99), zlib.error
    and lzma.LZMAError escaped the archive reader as 500s: each is a refusal naming it."""
    response = await client.post(
        "/tenants/victim/uploads", content=archive, headers={**admin, **ARCHIVE}
    )
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "urn:tenancy-fixtures:error:FixtureSetError"
    assert reason in response.json()["detail"]
    assert list(service_settings.service_work_dir.iterdir()) == []


@sqlite_only
@pytest.mark.parametrize(
    "archive",
    [
        zip_of({"x" * 300: USERS}),
        tar_gz_of([(_member("/".join(["d" * 200] * 25) + "/users.csv"), USERS)]),
    ],
    ids=["zip-name-too-long", "tar-path-too-long"],
)
async def test_an_archive_the_system_cannot_unpack_names_the_entry_not_the_server_folder(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    service_settings: Any,
    archive: bytes,
) -> None:
    """An entry the file system refuses (a name past 255 bytes, a path past 4096): 422
    naming the entry. The detail quoted the OSError, with the upload's folder on the
    server in front of the entry's name."""
    response = await client.post(
        "/tenants/victim/uploads", content=archive, headers={**admin, **ARCHIVE}
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "too long: '" in detail
    assert str(service_settings.service_work_dir) not in detail
    assert "upload-" not in detail
    assert list(service_settings.service_work_dir.iterdir()) == []


@sqlite_only
async def test_a_zips_entries_are_counted_before_they_are_listed(
    client: httpx.AsyncClient, admin: dict[str, str], service_settings: Any
) -> None:
    """zipfile reads a zip's whole central directory into objects before anyone can
    count them: a 94 MB upload of two million entries held the service 36 s and
    630 MB before TENANCY_SERVICE_ARCHIVE_MAX_ENTRIES (10,000) refused it. The headers
    are counted first: past the limit (200 here), refused before the damaged header
    (the 250th) that listing them would reach."""
    archive = zip_of_headers_only(300, garbled_from=250)
    response = await client.post(
        "/tenants/victim/uploads", content=archive, headers={**admin, **ARCHIVE}
    )
    assert response.status_code == 422, response.text
    assert "more than 200 entries" in response.json()["detail"]
    assert list(service_settings.service_work_dir.iterdir()) == []


def _tar_gz_with_a_pax_header_of(size: int) -> bytes:
    """A .tar.gz whose first member is a pax header of ``size`` bytes: a few hundred
    bytes of gzip per megabyte."""
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = size
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip
    parts = [packer.compress(header.tobuf(format=tarfile.USTAR_FORMAT))]
    parts.append(packer.compress(b"0" * size))
    return b"".join([*parts, packer.flush()])


@sqlite_only
async def test_a_tar_header_of_megabytes_is_refused_before_tarfile_reads_it(
    client: httpx.AsyncClient, admin: dict[str, str], service_settings: Any
) -> None:
    """tarfile reads a pax header (or a GNU long name) whole, then scans it, before the
    unpacked-bytes budget sees a byte: a 400 KB .tar.gz of a 400 MB pax header held a
    core and hundreds of MB for minutes. A header past 64 KiB (a name and a few
    attributes need bytes, not megabytes) is refused first: past 64 KiB."""
    response = await client.post(
        "/tenants/victim/uploads",
        content=_tar_gz_with_a_pax_header_of(128 << 10),
        headers={**admin, **ARCHIVE},
    )
    assert response.status_code == 422, response.text
    assert "a header of 131072 bytes" in response.json()["detail"]
    assert list(service_settings.service_work_dir.iterdir()) == []


@sqlite_only
async def test_a_corrupt_tar_bz2_is_a_422_like_the_other_corrupt_archives(
    client: httpx.AsyncClient, admin: dict[str, str], service_settings: Any
) -> None:
    """A .tar.bz2 damaged in its middle was a 415 (bz2 fails on its first block, so
    tarfile's sniffing called it no tar): recognised by its magic, it is the 422 refusal
    a corrupt .tar.gz, .tar.xz or .zip gets."""
    response = await client.post(
        "/tenants/victim/uploads", content=corrupt_tar_bz2(), headers={**admin, **ARCHIVE}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:tenancy-fixtures:error:FixtureSetError"
    assert problem["detail"].startswith("the archive is refused: it cannot be read (")
    assert problem["instance"] == "/tenants/victim/uploads"
    assert list(service_settings.service_work_dir.iterdir()) == []


@sqlite_only
async def test_a_tar_gz_failing_its_crc_check_is_refused_before_anything_loads(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    manager: FixtureManager,
    demo_set: Path,
    service_settings: Any,
) -> None:
    """Bytes changed inside a .tar.gz's deflate data, which stays well-formed: only the
    gzip trailer's CRC tells, and tarfile stops reading at the tar's end marker, before
    it. The damaged set was accepted and loaded (a user named 'Nora Okafxr'); the
    stream is now read to its end while unpacking, so the upload is a 422."""
    archive = tar_gz_failing_its_crc(demo_set, old=b"Nora Okafor", new=b"Nora Okafxr")
    response = await client.post(
        "/tenants/victim/uploads", content=archive, headers={**admin, **ARCHIVE}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "urn:tenancy-fixtures:error:FixtureSetError"
    assert "CRC check failed" in problem["detail"]
    assert (await manager.tenant_status("victim")).row_counts.get("users", 0) == 0
    assert list(service_settings.service_work_dir.iterdir()) == []


@sqlite_only
async def test_an_upload_past_the_size_limit_is_refused_while_streaming(
    client: httpx.AsyncClient, admin: dict[str, str], service_settings: Any
) -> None:
    """413 whether the size is declared up front or only found while reading."""

    async def body() -> Any:
        for _ in range(40):
            yield b"\x1f\x8b" + b"0" * (64 << 10)

    declared = await client.post(
        "/tenants/victim/uploads",
        content=b"0" * (3 << 20),
        headers={**admin, **ARCHIVE},
    )
    assert declared.status_code == 413
    streamed = await client.post(
        "/tenants/victim/uploads", content=body(), headers={**admin, **ARCHIVE}
    )
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == "application/problem+json"
    assert list(service_settings.service_work_dir.iterdir()) == []


@contextmanager
def _served(settings: Settings) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The service in a process of its own on ``settings``' database and work folder."""
    env = {"TENANCY_SERVICE_WORK_DIR": str(settings.service_work_dir)}
    with served(str(settings.database_url), env) as running:
        yield running


def _receiving(work_dir: Path) -> set[Path]:
    """The upload folders in ``work_dir`` whose archive is being received."""
    return {folder for folder in work_dir.glob("upload-*") if (folder / "archive").exists()}


async def _stalled_upload(
    base: str, headers: dict[str, str], work_dir: Path
) -> tuple[Path, asyncio.Task[None]]:
    """Start an upload to ``base`` whose body stops after its first chunk; returns the
    upload's folder once the server is receiving it, and the task sending it (pending
    until cancelled)."""
    before = _receiving(work_dir)

    async def body() -> AsyncIterator[bytes]:
        yield b"\x1f\x8b" + b"0" * 1024
        await asyncio.Event().wait()

    async def upload() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            await http.post("/tenants/victim/uploads", content=body(), headers=headers)

    # One client for the whole wait: making one costs ~35 ms of CPU (its TLS context).
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(600):
            try:
                await http.get("/healthz")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    task = asyncio.create_task(upload())
    for _ in range(600):
        made = _receiving(work_dir) - before
        if made:
            return made.pop(), task
        if task.done():
            task.result()
            raise AssertionError("the upload ended before the server received it")
        await asyncio.sleep(0.05)
    task.cancel()
    raise AssertionError("the upload's folder did not appear")


@sqlite_only
async def test_upload_folders_a_killed_service_left_are_removed_when_one_starts(
    admin: dict[str, str], service_settings: Settings
) -> None:
    """A service killed mid-upload left its ``upload-*`` folder for good. A service
    starting removes such folders, and only those: each live upload holds a lock on
    its folder (released by the system when its process dies), so the upload still
    running in another service sharing the work folder keeps its own, as does a
    folder that is not an upload's."""
    work_dir = service_settings.service_work_dir
    assert work_dir is not None
    work_dir.mkdir(parents=True, exist_ok=True)
    foreign = work_dir / "upload-not-ours"
    foreign.mkdir()
    stalled: list[asyncio.Task[None]] = []
    with _served(service_settings) as (killed, killed_url), _served(service_settings) as live:
        try:
            left, task = await _stalled_upload(killed_url, {**admin, **ARCHIVE}, work_dir)
            stalled.append(task)
            running, task = await _stalled_upload(live[1], {**admin, **ARCHIVE}, work_dir)
            stalled.append(task)
            killed.send_signal(signal.SIGKILL)
            killed.wait(timeout=30)
            assert left.exists()
            application = create_app(service_settings)
            async with application.router.lifespan_context(application):
                assert not left.exists()
                assert (running / "archive").exists()
                assert foreign.exists()
        finally:
            for task in stalled:
                task.cancel()
            await asyncio.gather(*stalled, return_exceptions=True)


def _file_size_limit(limit: int) -> Callable[[], None]:
    """Run in the server's process: files past ``limit`` bytes are refused (EFBIG), as
    a full disk refuses them (ENOSPC), without root."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@sqlite_only
async def test_an_upload_its_work_folder_has_no_room_to_unpack_is_a_503_not_a_bad_archive(
    admin: dict[str, str], service_settings: Settings
) -> None:
    """The server's disk refusing the unpacked files (a file size limit here, a full
    disk alike) refused the archive as unreadable (422, "cannot be read (OSError: File
    too large)"): the archive is fine, the service's storage is not. A 503 saying so."""
    env = {"TENANCY_SERVICE_WORK_DIR": str(service_settings.service_work_dir)}
    archive = zip_of({"users.csv": USERS + b"x" * (3 << 20)})  # small, 3 MiB unpacked
    limit = _file_size_limit(2 << 20)
    with served(str(service_settings.database_url), env, preexec_fn=limit) as (server, base):
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            for _ in range(600):
                try:
                    await http.get("/healthz")
                    break
                except httpx.TransportError:
                    assert server.poll() is None
                    await asyncio.sleep(0.1)
            response = await http.post(
                "/tenants/victim/uploads", content=archive, headers={**admin, **ARCHIVE}
            )
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:tenancy-fixtures:problem:WorkFolderUnavailable"
    assert "File too large" in response.json()["detail"]


@sqlite_only
async def test_something_that_is_not_an_archive_is_415(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """Bytes that are neither gzip/tar nor zip: 415."""
    response = await client.post(
        "/tenants/victim/uploads", content=b"just text", headers={**admin, **ARCHIVE}
    )
    assert response.status_code == 415


@sqlite_only
async def test_an_upload_its_work_folder_cannot_take_is_a_503_not_a_500(
    service_settings: Settings, admin: dict[str, str], tmp_path: Path
) -> None:
    """TENANCY_SERVICE_WORK_DIR cannot be made or written (a file in the way here; no
    permission or no space left alike): the service's storage fails, a 503 saying so
    without the server's path. It was the 500 of an unexpected error."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    app = create_app(service_settings.model_copy(update={"service_work_dir": blocker / "up"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            response = await client.post(
                "/tenants/victim/uploads", content=zip_of({"users.csv": USERS}), headers=admin
            )
    assert response.status_code == 503, response.text
    problem = response.json()
    assert problem["type"] == "urn:tenancy-fixtures:problem:WorkFolderUnavailable"
    assert "TENANCY_SERVICE_WORK_DIR" in problem["detail"]
    assert str(tmp_path) not in problem["detail"]


@sqlite_only
async def test_server_paths_stay_inside_the_load_root(
    client: httpx.AsyncClient, admin: dict[str, str], load_root: Path, tmp_path: Path
) -> None:
    """``..`` and a link pointing out of the root are refused (422); a missing set is
    the loader's 422 once the job runs."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (load_root / "sneaky").symlink_to(outside)
    for path in ("../outside", "sneaky", "/etc"):
        refused = await client.post("/tenants/victim/loads", json={"path": path}, headers=admin)
        assert refused.status_code == 422, (path, refused.text)
        assert refused.json()["type"].endswith("PathOutsideLoadRoot")
    started = await client.post("/tenants/victim/loads", json={"path": "nothing"}, headers=admin)
    job = await finished(client, admin, started.headers["location"])
    assert job["status"] == "failed"
    assert job["problem"]["status"] == 422


async def test_a_server_path_holding_nul_is_a_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """Resolving it raised ValueError (embedded null byte): a 500."""
    for path in ("\x00", "set\x00/../x"):
        refused = await client.post("/tenants/victim/loads", json={"path": path}, headers=admin)
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"].endswith("InvalidPath")


@sqlite_only
async def test_server_paths_are_refused_without_a_load_root(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """No TENANCY_SERVICE_LOAD_ROOT: 403 for any path."""
    app.state.settings = app.state.settings.model_copy(update={"service_load_root": None})
    refused = await client.post("/tenants/victim/loads", json={"path": "x"}, headers=admin)
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("ServerPathsDisabled")


def test_tar_gz_helper_roundtrips() -> None:
    """The test helper makes archives tarfile reads back (guards the hostile cases)."""
    data = tar_gz_of([(_member("users.csv"), USERS)])
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert tar.getnames() == ["users.csv"]


async def test_a_load_request_naming_a_file_in_its_options_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """The ``django`` format's ``mapping`` names a file it reads: from a request, anywhere
    on the server (its text echoed in a parse error). A request cannot give it; a set's
    fixtures.json can, inside the set."""
    body = {"format": "django", "options": {"mapping": "/etc/passwd"}}

    refused = await client.post("/tenants/victim/loads", json=body, headers=admin)

    assert refused.status_code == 422, refused.text
    assert "names a file on the server" in refused.json()["detail"]
    assert "root:" not in refused.text


async def test_a_client_leaving_mid_upload_is_no_server_error(
    admin: dict[str, str], service_settings: Settings
) -> None:
    """A client that disconnects while its archive is being received is not the
    service's failure: its upload folder goes, and the log has no
    ``request_failed_unexpectedly`` error with a traceback (it had, for every dropped
    upload), only an info line that the client left."""
    work_dir = service_settings.service_work_dir
    assert work_dir is not None
    work_dir.mkdir(parents=True, exist_ok=True)
    with _served(service_settings) as (server, base):
        folder, task = await _stalled_upload(base, {**admin, **ARCHIVE}, work_dir)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for _ in range(600):
            if not folder.exists():
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/healthz")).status_code == 200
        assert server.stderr is not None
        server.stderr.seek(0)
        log = server.stderr.read().decode("utf-8", "replace")

    assert not folder.exists()
    assert "request_failed_unexpectedly" not in log
    assert "Traceback" not in log
