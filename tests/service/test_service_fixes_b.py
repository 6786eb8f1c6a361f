"""Service fixes: what the API and the dashboard answer in corners found wanting (the
audit log off, HEAD, a snapshot racing a drop, a tenant's storage gone, a tenant made
again, an upload abandoned mid-unpacking)."""

from __future__ import annotations

import asyncio
import re
import tarfile
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import text

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.service import create_app
from tenancy_fixtures.store.sqlite.recovery import DROPPING
from tests.service.archives import tar_gz_of
from tests.service.conftest import Tokens, bearer

RACES = 40


async def test_a_snapshot_racing_a_drop_is_taken_or_not_found_never_a_deadlock(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """On PostgreSQL the snapshot locked the registry row, then read the tenant's tables,
    while the drop took the tables (DROP SCHEMA), then the row: now and then a 503
    "deadlock detected". Either order is fine if both lock the row first."""
    seen = set()
    for round_ in range(RACES):
        tenant_id = f"raced_{round_}"
        created = await client.post("/tenants", json={"tenant_id": tenant_id}, headers=admin)
        assert created.status_code == 201, created.text
        snapshot, dropped = await asyncio.gather(
            client.post(f"/tenants/{tenant_id}/usage", headers=admin),
            client.delete(f"/tenants/{tenant_id}", params={"confirm": tenant_id}, headers=admin),
        )
        assert dropped.status_code == 204, dropped.text
        assert snapshot.status_code in (201, 404), snapshot.text
        seen.add(snapshot.status_code)
    assert seen


async def test_a_validation_racing_a_drop_is_done_or_not_found_never_a_failure(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """On PostgreSQL a validation reading a tenant's tables while a drop took them failed
    on the table gone: a 500 (NoSuchTableError) or a 503 ("could not open relation with
    OID"). The tenant was dropped: 404, as for a request arriving after the drop."""
    for round_ in range(15):
        tenant_id = f"checked_{round_}"
        created = await client.post("/tenants", json={"tenant_id": tenant_id}, headers=admin)
        assert created.status_code == 201, created.text
        validated, dropped = await asyncio.gather(
            client.post(f"/tenants/{tenant_id}/validation", json={}, headers=admin),
            client.delete(f"/tenants/{tenant_id}", params={"confirm": tenant_id}, headers=admin),
        )
        assert dropped.status_code == 204, dropped.text
        assert validated.status_code in (200, 404), validated.text


def _get_paths(app: FastAPI) -> list[str]:
    """Every API path answering GET, its parameters filled in (``victim`` for a tenant)."""
    return [
        re.sub(r"\{[^}]+\}", "victim", str(context.path))
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and "GET" in (context.methods or ())
    ]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_head_is_answered_wherever_get_is_with_its_status_and_headers(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """FastAPI's routes took only GET, so HEAD was a 405 on every API route (HTTP
    requires HEAD where GET is); and a 405's ``Allow`` left HEAD out."""
    paths = _get_paths(app)
    assert "/tenants/victim/usage" in paths
    for path in paths:
        got = await client.get(path, headers=admin)
        head = await client.head(path, headers=admin)
        assert head.status_code == got.status_code, path
        assert head.headers.get("content-type") == got.headers.get("content-type"), path
        assert head.content == b"", path
    refused = await client.head("/tenants", headers={})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    not_allowed = await client.put("/tenants", headers=admin)
    assert not_allowed.headers["allow"] == "GET, HEAD, POST"
    metrics = (await client.get("/metrics", headers=admin)).text
    assert 'method="HEAD",route="/tenants/{tenant_id}/usage",status="200"' in metrics


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_tenant_whose_drop_is_under_way_is_not_found_not_missing_storage(
    client: httpx.AsyncClient, admin: dict[str, str], manager: FixtureManager
) -> None:
    """On SQLite a drop moves the file aside before its registry row goes: a request in
    between found a registered tenant without a file and answered 503 "storage is
    missing" with the file's path, where the drop it raced makes it a 404."""
    created = await client.post("/tenants", json={"tenant_id": "going"}, headers=admin)
    assert created.status_code == 201, created.text
    live = Path(manager.store.storage_name("going"))
    # As the drop does, under its lock:
    await asyncio.to_thread(live.replace, live.with_name(live.name + DROPPING))
    shown = await client.get("/tenants/going", headers=admin)
    assert shown.status_code == 404, shown.text
    assert str(live) not in shown.text


async def test_errors_audit_and_pages_say_the_audit_log_is_on(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """With the audit log on (the default) the same routes say so, and the pages add no
    note."""
    headers = bearer(tokens.fleet["read"])
    assert (await client.get("/errors", headers=headers)).json()["audit_logging"] is True
    assert (await client.get("/audit", headers=headers)).json()["audit_logging"] is True
    await client.post("/dashboard/login", data={"token": tokens.fleet["read"]})
    for path in ("/dashboard/errors", "/dashboard/tenants/victim"):
        page = await client.get(path)
        assert page.status_code == 200
        assert 'id="audit-off"' not in page.text


async def _finished(client: httpx.AsyncClient, job: str, headers: dict[str, str]) -> None:
    """Wait for the job at ``job`` to end (a tier's fixtures load in a second or two)."""
    for _ in range(600):
        state = (await client.get(job, headers=headers)).json()
        if state["status"] in ("succeeded", "failed"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{job} did not end: {state}")


async def test_a_tenant_made_again_does_not_see_the_jobs_of_the_one_dropped(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """Jobs were found by tenant id alone: after a drop and a create of the same id, the
    new tenant's readers saw the old tenant's finished load (its report, its rows)."""
    await client.post("/tenants", json={"tenant_id": "again"}, headers=admin)
    started = await client.post("/tenants/again/loads", json={}, headers=admin)
    assert started.status_code == 202, started.text
    job = started.headers["location"]
    await _finished(client, job, admin)
    dropped = await client.delete("/tenants/again", params={"confirm": "again"}, headers=admin)
    assert dropped.status_code == 204
    assert (await client.get(job, headers=admin)).status_code == 404
    await client.post("/tenants", json={"tenant_id": "again"}, headers=admin)
    for path in (job, f"{job}/events"):
        gone = await client.get(path, headers=admin)
        assert gone.status_code == 404, gone.text
        assert gone.json()["type"] == "urn:tenancy-fixtures:problem:JobNotFound"


async def _remove_storage(manager: FixtureManager, tenant_id: str) -> str:
    """Remove the tenant's file or schema behind the service's back; its name."""
    name = manager.store.storage_name(tenant_id)
    if manager.store.backend == "postgresql":
        async with manager.store.control() as conn:
            await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    else:
        await asyncio.to_thread(Path(name).unlink)
    return name


async def test_missing_storage_names_no_server_path_and_keeps_the_page_layout(
    client: httpx.AsyncClient, tokens: Tokens, manager: FixtureManager
) -> None:
    """A tenant whose file was deleted: the dashboard's 503 page showed the file's path on
    the server to anyone with the tenant's read token (so did the API's problem), and
    came without the navigation of the other pages."""
    name = await _remove_storage(manager, "victim")
    reader = tokens.tenant[("victim", "read")]
    problem = await client.get("/tenants/victim", headers=bearer(reader))
    assert problem.status_code == 503
    assert f"storage {name}" not in problem.text
    assert "cleanup victim removes the registration" in problem.json()["detail"]
    await client.post("/dashboard/login", data={"token": reader})
    page = await client.get("/dashboard/tenants/victim")
    assert page.status_code == 503, page.text
    assert f"storage {name}" not in page.text
    assert "cleanup victim removes the registration" in page.text
    assert "<nav>" in page.text
    assert 'href="/dashboard/tenants/victim"' in page.text
    assert 'action="/dashboard/logout"' in page.text


async def test_error_pages_keep_the_navigation_of_the_token_signed_in(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """A page refused (another tenant's: 404; a fleet page: 403) came without the header
    every other page has, leaving only "Back"."""
    await client.post("/dashboard/login", data={"token": tokens.tenant[("victim", "read")]})
    for path, status in (("/dashboard/tenants/intruder", 404), ("/dashboard/errors", 403)):
        page = await client.get(path)
        assert page.status_code == status
        assert 'action="/dashboard/logout"' in page.text


def _slow_archive() -> bytes:
    """A small .tar.gz unpacking to 160 MiB in 160 folders: a second or more of work."""
    members: list[tuple[tarfile.TarInfo, bytes | None]] = [
        (tarfile.TarInfo(f"set/part_{index:03}/users.csv"), bytes(1 << 20)) for index in range(160)
    ]
    return tar_gz_of(members)


def _upload_folders(work_dir: Path) -> list[Path]:
    return sorted(work_dir.glob("upload-*")) if work_dir.exists() else []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_upload_cancelled_mid_unpacking_leaves_no_work_folder(
    service_settings: Settings, tokens: Tokens
) -> None:
    """A client gone while its archive was unpacked cancelled the request: the folder was
    removed while the unpacking thread (which cannot be stopped) went on writing into it,
    so the folder came back and stayed until the next start's sweep."""
    work_dir = service_settings.service_work_dir
    assert work_dir is not None
    settings = service_settings.model_copy(
        update={"service_archive_max_bytes": 1 << 30, "service_archive_max_entries": 1000}
    )
    body = _slow_archive()
    app = create_app(settings)
    headers = [
        (b"host", b"service"),
        (b"authorization", f"Bearer {tokens.fleet['write']}".encode()),
        (b"content-type", b"application/gzip"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/tenants/victim/uploads",
        "raw_path": b"/tenants/victim/uploads",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("service", 80),
    }
    sent = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, object]:
        if sent:
            return sent.pop()
        await asyncio.Event().wait()  # the client says nothing more
        raise AssertionError("unreachable")

    async def send(message: object) -> None:
        del message

    async with app.router.lifespan_context(app):
        request = asyncio.create_task(app(scope, receive, send))
        for _ in range(600):  # until the unpacking has begun writing
            folders = _upload_folders(work_dir)
            if folders and any((folders[0] / "set").iterdir()):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError(f"no unpacking seen: {request}")
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        quiet = 0
        for _ in range(600):  # gone, and staying gone for two seconds
            quiet = 0 if _upload_folders(work_dir) else quiet + 1
            if quiet >= 20:
                break
            await asyncio.sleep(0.1)
        assert _upload_folders(work_dir) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_refused_tokens_get_the_bearer_challenge_with_its_error_code(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """Every 401 answered the same bare challenge, and a scope too small none at all:
    RFC 6750 has a token that is not live answered ``error="invalid_token"`` and one
    whose scope is too small ``error="insufficient_scope"`` with the scope needed."""
    missing = await client.get("/tenants")
    assert missing.headers["www-authenticate"] == 'Bearer realm="tenancy-fixtures"'
    dead = await client.get("/tenants", headers=bearer("tfk_0123456789abcdef.nope"))
    assert dead.status_code == 401
    assert dead.headers["www-authenticate"] == (
        'Bearer realm="tenancy-fixtures", error="invalid_token"'
    )
    for path, token in (
        ("/tenants/victim/usage", tokens.tenant[("victim", "read")]),
        ("/tenants/victim/usage", tokens.fleet["read"]),
    ):
        small = await client.post(path, headers=bearer(token))
        assert small.status_code == 403
        assert small.headers["www-authenticate"] == (
            'Bearer realm="tenancy-fixtures", error="insufficient_scope", scope="write"'
        )
    deleted = await client.delete(
        "/tenants/victim", params={"confirm": "victim"}, headers=bearer(tokens.fleet["write"])
    )
    assert deleted.status_code == 403
    assert 'scope="admin"' in deleted.headers["www-authenticate"]


USERS = (
    "user_id,display_name,email,country,product,created_at\n"
    "good-user,Good User,good@example.com,GB,free,2026-01-01T00:00:00+00:00\n"
    "bad-user,Bad User,bad@@example.com,GB,free,2026-01-01T00:00:00+00:00\n"
)


async def test_runs_and_audit_name_a_reject_file_without_the_server_folder(
    client: httpx.AsyncClient,
    tokens: Tokens,
    load_root: Path,
    service_settings: Settings,
) -> None:
    """A lenient load's run and audit record keep where its set-aside records went (so a
    drop or an erasure finds them); the API showed that absolute server path to any
    holder of the tenant's read token. They see the file's name."""
    folder = load_root / "lenient"
    await asyncio.to_thread(folder.mkdir)
    await asyncio.to_thread((folder / "users.csv").write_text, USERS, encoding="utf-8")
    writer = bearer(tokens.tenant[("victim", "write")])
    started = await client.post(
        "/tenants/victim/loads", json={"path": "lenient", "validation": "lenient"}, headers=writer
    )
    assert started.status_code == 202, started.text
    await _finished(client, started.headers["location"], writer)
    reader = bearer(tokens.tenant[("victim", "read")])
    runs = (await client.get("/tenants/victim/runs?operation=load", headers=reader)).json()
    audit = (await client.get("/tenants/victim/audit", headers=reader)).json()
    details = [r["detail"] for r in runs["items"]] + [a["detail"] for a in audit["items"]]
    named = [d["reject_file"] for d in details if "reject_file" in d]
    assert len(named) == 2, details
    rejects = str(service_settings.reject_dir)
    for name in named:
        assert name.endswith(".jsonl")
        assert "/" not in name
        assert rejects not in name
    one = await client.get(f"/tenants/victim/runs/{runs['items'][0]['run_id']}", headers=reader)
    assert "/" not in one.json()["detail"]["reject_file"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_dashboard_path_with_no_page_is_a_404_page_not_a_problem_document(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """``/dashboard/nothing`` answered the API's JSON problem to a browser, without the
    pages' security headers or layout."""
    for signed_in in (False, True):
        if signed_in:
            await client.post("/dashboard/login", data={"token": tokens.fleet["read"]})
        for method, path in (("GET", "/dashboard/nothing"), ("POST", "/dashboard/tenants/a/b")):
            page = await client.request(method, path)
            assert page.status_code == 404
            assert page.headers["content-type"].startswith("text/html")
            assert page.headers["cache-control"] == "no-store"
            assert "content-security-policy" in page.headers
            assert ('action="/dashboard/logout"' in page.text) is signed_in
    still = await client.post("/dashboard/errors")
    assert (still.status_code, still.headers["allow"]) == (405, "GET, HEAD")
