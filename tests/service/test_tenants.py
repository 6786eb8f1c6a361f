"""Tenants and config over HTTP: create, list (paged, filtered), show, delete with
confirmation, read and patch config; library errors as problem documents."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from tenancy_fixtures import FixtureManager
from tests.log_capture import captured_logs

pytestmark = pytest.mark.usefixtures("tokens")


async def test_create_show_and_delete_a_tenant(
    client: httpx.AsyncClient, admin: dict[str, str], manager: FixtureManager
) -> None:
    """POST makes the tenant (201, Location), GET shows it, DELETE with ?confirm= drops it."""
    created = await client.post(
        "/tenants",
        json={"tenant_id": "acme_music", "tier": "premium", "limits": {"storage": "200GB"}},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/tenants/acme_music"
    assert created.json()["limits"]["storage"] == 200 * 1024**3
    shown = await client.get("/tenants/acme_music", headers=admin)
    assert shown.status_code == 200
    assert (shown.json()["tier"], shown.json()["total_rows"]) == ("premium", 0)
    dropped = await client.delete(
        "/tenants/acme_music", params={"confirm": "acme_music"}, headers=admin
    )
    assert dropped.status_code == 204
    assert "acme_music" not in [t.tenant_id for t in await manager.list_tenants()]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_locations_carry_the_path_the_service_is_served_under(
    app: FastAPI, admin: dict[str, str]
) -> None:
    """Served under a prefix (``uvicorn --root-path /api`` behind a proxy), the
    ``Location`` of a new tenant or load job left the prefix out, as the problems'
    ``instance`` and the dashboard's redirects do not: a client following it missed."""
    transport = httpx.ASGITransport(app=app, root_path="/api")
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        created = await client.post("/api/tenants", json={"tenant_id": "prefixed"}, headers=admin)
        started = await client.post("/api/tenants/prefixed/loads", json={}, headers=admin)
        assert created.headers["location"] == "/api/tenants/prefixed"
        job = started.headers["location"]
        assert job == f"/api/tenants/prefixed/loads/{started.json()['job_id']}"
        assert (await client.get(job, headers=admin)).status_code == 200


async def test_delete_without_the_right_confirmation_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], manager: FixtureManager
) -> None:
    """No ?confirm=, or another id there: 422 and the tenant stays."""
    for params in ({}, {"confirm": "intruder"}):
        refused = await client.delete("/tenants/victim", params=params, headers=admin)
        assert refused.status_code == 422
        assert refused.json()["type"].endswith("ConfirmationRequired")
    assert "victim" in [t.tenant_id for t in await manager.list_tenants()]


async def test_deleting_a_tenant_twice_at_once_is_one_204_and_404s(
    client: httpx.AsyncClient, admin: dict[str, str], manager: FixtureManager
) -> None:
    """Concurrent DELETEs of one tenant: one drops it, the others find no tenant (404,
    as on SQLite). On PostgreSQL each saw the schema before the first dropped it, then
    failed dropping it again: a 503 "schema does not exist"."""
    answers = await asyncio.gather(
        *(
            client.delete("/tenants/victim", params={"confirm": "victim"}, headers=admin)
            for _ in range(4)
        )
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [204, 404, 404, 404], [answer.text for answer in answers]
    assert not await manager.store.storage_exists("victim")
    assert "victim" not in [t.tenant_id for t in await manager.list_tenants()]


async def test_a_registered_tenant_whose_storage_is_missing_is_a_503_storage_failure(
    client: httpx.AsyncClient, admin: dict[str, str], manager: FixtureManager
) -> None:
    """Its file or schema removed behind the service's back: the CLI calls it a storage
    failure (exit 7); the service answered 404 "does not exist" for a tenant its own
    listing shows. It is a 503 (not transient: no Retry-After) saying what to do."""
    name = manager.store.storage_name("victim")
    if manager.store.backend == "postgresql":
        async with manager.store.control() as conn:
            await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    else:
        await asyncio.to_thread(Path(name).unlink)
    listed = (await client.get("/tenants", headers=admin)).json()
    assert "victim" in [t["tenant_id"] for t in listed["items"]]
    for method, path in (("GET", "/tenants/victim"), ("POST", "/tenants/victim/validation")):
        response = await client.request(method, path, headers=admin)
        assert response.status_code == 503, response.text
        problem = response.json()
        assert problem["type"] == "urn:tenancy-fixtures:error:TenantStorageMissingError"
        assert "cleanup victim removes the registration" in problem["detail"]
        assert "retry-after" not in response.headers
    await client.post("/dashboard/login", data={"token": admin["Authorization"].split()[1]})
    page = await client.get("/dashboard/tenants/victim")
    assert page.status_code == 503, page.text
    assert "cleanup victim removes the registration" in page.text


async def test_list_pages_and_filters(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """limit/offset page through tenants by id; prefix, tier and status narrow them; total
    counts all that match."""
    for index in range(5):
        made = await client.post(
            "/tenants",
            json={"tenant_id": f"page_{index}", "tier": "free" if index % 2 else "enterprise"},
            headers=admin,
        )
        assert made.status_code == 201, made.text
    first = (await client.get("/tenants?prefix=page_&limit=2", headers=admin)).json()
    second = (await client.get("/tenants?prefix=page_&limit=2&offset=2", headers=admin)).json()
    assert [t["tenant_id"] for t in first["items"]] == ["page_0", "page_1"]
    assert [t["tenant_id"] for t in second["items"]] == ["page_2", "page_3"]
    assert first["total"] == second["total"] == 5
    free = (await client.get("/tenants?prefix=page_&tier=free", headers=admin)).json()
    assert [t["tenant_id"] for t in free["items"]] == ["page_1", "page_3"]
    active = (await client.get("/tenants?status=active", headers=admin)).json()
    assert active["total"] == 7
    assert (await client.get("/tenants?status=gone", headers=admin)).json()["total"] == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("declared", [True, False], ids=["declared", "streamed"])
@pytest.mark.parametrize(
    ("method", "path", "token"),
    [
        ("POST", "/tenants", False),
        ("PATCH", "/tenants/victim/config", True),
        ("POST", "/tenants/victim/loads", True),
    ],
)
async def test_a_json_body_past_a_mebibyte_is_a_413_before_it_is_read_whole(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    method: str,
    path: str,
    token: bool,
    declared: bool,
) -> None:
    """A JSON body is read whole before the token is even checked: a client with no
    token could make the service hold any number of bytes (400 MB of body grew it by
    800 MB before its 401). Past 1 MiB it is a 413 problem, and reading stops there."""
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"tenant_id": "'
        for _ in range(512):  # 32 MiB
            sent += 1
            yield b"a" * (64 << 10)
        yield b'"}'

    headers = {"Content-Type": "application/json", **(admin if token else {})}
    if declared:
        headers["Content-Length"] = str(len(b'{"tenant_id": "') + (32 << 20) + 2)
    response = await client.request(method, path, content=body(), headers=headers)
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    assert sent < 32  # under 2 MiB of the 32 read
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"][path.replace("victim", "{tenant_id}")][method.lower()]
    assert "413" in operation["responses"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_json_body_nested_too_deep_to_parse_is_a_422_invalid_request(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """100,000 nested arrays (200 KB) overflow the JSON parser's recursion: FastAPI's
    400 "There was an error parsing the body" (``about:blank``), where any other
    malformed body is the 422 InvalidRequest problem the README promises."""
    body = b"[" * 100_000 + b"]" * 100_000
    response = await client.post(
        "/tenants", content=body, headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "urn:tenancy-fixtures:problem:InvalidRequest"
    assert "nested too deeply" in problem["detail"]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"tenant_id": "victim"}, 409, "TenantAlreadyExistsError"),
        ({"tenant_id": "Bad-Id"}, 400, "InvalidTenantIdError"),
        ({"tenant_id": "ok_id", "features": ["telepathy"]}, 422, "ConfigError"),
        ({"tenant_id": "ok_id", "tier": "platinum"}, 422, "ConfigError"),
        ({"tenant_id": "ok_id", "limits": {"storage": "lots"}}, 422, "ConfigError"),
    ],
)
async def test_refusals_are_problem_documents_with_the_errors_status(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    body: dict[str, object],
    status: int,
    error: str,
) -> None:
    """Each library error maps to its status, as application/problem+json naming it."""
    response = await client.post("/tenants", json=body, headers=admin)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"urn:tenancy-fixtures:error:{error}"
    assert problem["status"] == status
    assert problem["instance"] == "/tenants"
    assert problem["detail"]


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ('{"\\ud800": "\\udc00"}', "settings.\\ud800"),
        ('{"locale": "\\ud83d"}', "settings.locale"),
        ('{"locale": "a\\u0000b"}', "settings.locale"),
        ('{"a\\u0000b": "x"}', "settings.a\\u0000b"),
    ],
)
async def test_settings_no_database_stores_are_refused_before_anything_is_written(
    client: httpx.AsyncClient, admin: dict[str, str], given: str, key: str
) -> None:
    """NUL or a lone surrogate in a setting: 422 naming it, on create and on patch, and
    nothing written (once a 500 or 503 after the tenant was created or changed, and every
    read of it a 500 afterwards on SQLite)."""
    before = (await client.get("/tenants/victim/config", headers=admin)).json()
    created = await client.post(
        "/tenants",
        content=f'{{"tenant_id": "unstorable", "settings": {given}}}',
        headers={**admin, **JSON},
    )
    patched = await client.patch(
        "/tenants/victim/config", content=f'{{"settings": {given}}}', headers={**admin, **JSON}
    )
    for refused in (created, patched):
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert (refused.json()["type"], refused.json()["key"]) == (
            "urn:tenancy-fixtures:error:ConfigError",
            key,
        )
    assert (await client.get("/tenants/unstorable", headers=admin)).status_code == 404
    assert (await client.get("/tenants/victim/config", headers=admin)).json() == before


async def test_an_unknown_setting_is_a_422_naming_it_and_nothing_is_written(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """POST and PATCH with ``{"settings": {"nope": 1}}`` made and changed the tenant,
    keeping a setting nothing reads; now a ConfigError naming it and the known ones."""
    before = (await client.get("/tenants/victim/config", headers=admin)).json()
    created = await client.post(
        "/tenants", json={"tenant_id": "typo", "settings": {"nope": 1}}, headers=admin
    )
    patched = await client.patch(
        "/tenants/victim/config", json={"settings": {"nope": 1}}, headers=admin
    )

    for refused in (created, patched):
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert (problem["type"], problem["key"]) == (
            "urn:tenancy-fixtures:error:ConfigError",
            "settings.nope",
        )
        assert "the settings are default_market, locale, region" in problem["detail"]
    assert (await client.get("/tenants/typo", headers=admin)).status_code == 404
    assert (await client.get("/tenants/victim/config", headers=admin)).json() == before


async def test_a_lone_surrogate_in_a_feature_or_limit_name_is_a_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """The refusal names the flag or limit escaped: raw, its problem document could not
    be encoded (a 500)."""
    for body, key in (
        ('{"tenant_id": "x", "features": ["\\ud800"]}', "features.\\ud800"),
        ('{"tenant_id": "x", "limits": {"\\ud800": 1}}', "limits.\\ud800"),
    ):
        refused = await client.post("/tenants", content=body, headers={**admin, **JSON})
        assert refused.status_code == 422, refused.text
        assert refused.json()["key"] == key


@pytest.mark.parametrize(
    ("limits", "key"),
    [
        ({"users": 10**30}, "limits.users"),
        ({"users": 2**63}, "limits.users"),
        ({"storage": "9999999999999999999TB"}, "limits.storage"),
    ],
)
async def test_a_limit_past_the_largest_64_bit_integer_is_a_config_error(
    client: httpx.AsyncClient, admin: dict[str, str], limits: dict[str, object], key: str
) -> None:
    """Once stored as given (10**30 users); now a ConfigError naming the limit, on create
    and on patch, and no tenant made."""
    created = await client.post(
        "/tenants", json={"tenant_id": "unbounded", "limits": limits}, headers=admin
    )
    patched = await client.patch("/tenants/victim/config", json={"limits": limits}, headers=admin)
    for refused in (created, patched):
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"] == "urn:tenancy-fixtures:error:ConfigError"
        assert refused.json()["key"] == key
    assert (await client.get("/tenants/unbounded", headers=admin)).status_code == 404


async def test_a_boolean_limit_is_refused_not_read_as_1(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """``{"users": true}`` made a tenant with 1 user: the body's limits are integers or
    size strings, so it is a malformed request naming the limit."""
    refused = await client.post(
        "/tenants", json={"tenant_id": "boolean", "limits": {"users": True}}, headers=admin
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"][:3] == ["body", "limits", "users"]
    patched = await client.patch(
        "/tenants/victim/config", json={"limits": {"users": False}}, headers=admin
    )
    assert patched.status_code == 422, patched.text
    assert (await client.get("/tenants/boolean", headers=admin)).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/tenants?prefix=%00",
        "/tenants?tier=%00",
        "/tenants?status=a%00",
        "/audit?actor=%00",
        "/audit?action=%00",
        "/audit?outcome=%00",
        "/audit?tenant_id=%00",
        "/tenants/victim/audit?actor=%00",
        "/tenants/victim/runs?operation=%00",
    ],
)
async def test_a_nul_in_a_text_filter_is_a_422_on_both_backends(
    client: httpx.AsyncClient, admin: dict[str, str], url: str
) -> None:
    """PostgreSQL's text holds no NUL: such a filter was a 503 there (and matched nothing
    on SQLite); now a malformed request naming the parameter, on both."""
    refused = await client.get(url, headers=admin)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"][0]["loc"][0] == "query"


async def test_a_run_id_holding_nul_is_not_found(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """No run has such an id: 404 (it was a 503 on PostgreSQL)."""
    missing = await client.get("/tenants/victim/runs/a%00", headers=admin)
    assert missing.status_code == 404, missing.text
    assert missing.json()["type"].endswith("RunNotFound")


async def test_an_unexpected_error_is_a_500_problem_that_shows_nothing_of_it(
    app: FastAPI, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any exception the handlers do not know: a 500 problem document (it was a
    text/plain "Internal Server Error"), its message and traceback only in the log."""

    async def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(app.state.manager, "list_tenants", failing)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        response = await client.get("/tenants", headers=admin)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["instance"]) == (500, "/tenants")
    assert problem["type"] == "urn:tenancy-fixtures:problem:InternalError"
    assert "secret" not in response.text
    assert "Traceback" not in response.text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_unexpected_error_is_logged_once_with_its_traceback(
    app: FastAPI,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Served by uvicorn, a request failing unexpectedly logs its traceback once: the
    library's ``request_failed_unexpectedly`` event. The app re-raised the exception
    after answering (Starlette's ServerErrorMiddleware does after any catch-all
    handler), so uvicorn logged it again as "Exception in ASGI application"."""

    async def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(app.state.manager, "list_tenants", failing)
    caplog.set_level(logging.ERROR)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            assert not serving.done(), serving.result()
            await asyncio.sleep(0.01)
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with captured_logs() as events:
            async with httpx.AsyncClient(base_url=base) as http:
                response = await http.get("/tenants", headers=admin)
    finally:
        server.should_exit = True
        await serving
        listener.close()
    assert response.status_code == 500
    assert response.json()["type"] == "urn:tenancy-fixtures:problem:InternalError"
    tracebacks = [
        *(event["event"] for event in events if event.get("exc_info")),
        *(record.getMessage() for record in caplog.records if record.exc_info),
    ]
    assert tracebacks == ["request_failed_unexpectedly"]
    logged = next(event for event in events if event.get("exc_info"))
    assert (logged["log_level"], logged["path"]) == ("error", "/tenants")
    assert isinstance(logged["exc_info"], RuntimeError)


async def test_an_unknown_tenant_is_404_and_a_malformed_request_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """A missing tenant names itself in a 404; a body of the wrong shape is a 422
    problem listing where."""
    missing = await client.get("/tenants/ghost", headers=admin)
    assert missing.status_code == 404
    assert missing.json()["tenant_id"] == "ghost"
    malformed = await client.post("/tenants", json={"tier": 3}, headers=admin)
    assert malformed.status_code == 422
    assert malformed.headers["content-type"] == "application/problem+json"
    assert malformed.json()["errors"]


async def test_config_patch_keeps_the_tenants_own_overrides(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """A patch changes what it names; a new tier brings its defaults, and the limits the
    tenant was given stay on top."""
    made = await client.post(
        "/tenants",
        json={"tenant_id": "patchy", "tier": "free", "limits": {"users": 9}},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    free = (await client.get("/tenants/patchy/config", headers=admin)).json()
    patched = await client.patch(
        "/tenants/patchy/config",
        json={"tier": "enterprise", "features": ["ai_collaboration"]},
        headers=admin,
    )
    assert patched.status_code == 200, patched.text
    enterprise = patched.json()
    assert enterprise["tier"] == "enterprise"
    assert enterprise["limits"]["users"] == 9
    assert enterprise["limits"]["storage"] > free["limits"]["storage"]
    assert "ai_collaboration" in enterprise["features"]
    assert (await client.get("/tenants/patchy/config", headers=admin)).json() == enterprise
    refused = await client.patch(
        "/tenants/patchy/config", json={"limits": {"users": -1}}, headers=admin
    )
    assert refused.status_code == 422
    assert refused.json()["key"] == "limits.users"


async def test_the_audit_log_names_the_token_that_made_a_change(
    client: httpx.AsyncClient, admin: dict[str, str], manager: FixtureManager
) -> None:
    """Changes made over HTTP are audited under ``token:<id>``, not the server's user."""
    token_id = admin["Authorization"].removeprefix("Bearer tfk_").split(".")[0]
    made = await client.post("/tenants", json={"tenant_id": "audited"}, headers=admin)
    assert made.status_code == 201
    patched = await client.patch(
        "/tenants/audited/config", json={"limits": {"users": 3}}, headers=admin
    )
    assert patched.status_code == 200
    records = await manager.audit_log("audited", limit=10)
    assert {(r.action, r.actor) for r in records} == {
        ("tenant.create", f"token:{token_id}"),
        ("config.apply", f"token:{token_id}"),
    }
