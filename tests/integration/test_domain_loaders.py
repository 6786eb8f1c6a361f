"""The AI model, analytics and collaboration loaders on both backends: what they load,
what they refuse (typed errors, nothing written) and the aggregates they compute."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from tenancy_fixtures import (
    AIModelLoader,
    AnalyticsLoader,
    CollaborationLoader,
    DataLoader,
    FixtureManager,
    IntegrityViolationError,
    LoadContext,
    LoadReport,
    RecordError,
    Settings,
    TenantFixture,
    load_settings,
)
from tenancy_fixtures.loading.set_check import check_set
from tenancy_fixtures.loading.sources import SourceLoader, source_file
from tenancy_fixtures.spotify.analytics import refresh_daily_stats
from tenancy_fixtures.spotify.daily_stats import STREAM_MS
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tenancy_fixtures.tenancy.credentials import (
    encrypt_credential,
    generate_secret_key,
    resolve_credential,
)

TENANT = "domain_tenant"
OPENAI_KEY = "sk-proj-" + "Q7xV2mLp9RtZ4kWb8NcJ3hYd6FsA1eGu"
USERS = ("u1", "u2", "u3", "u4")


def sid(name: str) -> str:
    """A Spotify-shaped id (22 base62 characters) made from ``name``."""
    return (name + "0" * 22)[:22]


TRACKS = (sid("trackA"), sid("trackB"), sid("trackC"))
PLAYLISTS = (sid("playlistA"), sid("playlistB"))


def write(directory: Path, name: str, rows: Sequence[dict[str, Any]] | dict[str, Any]) -> Path:
    """Write a JSON (``.json``) or JSON Lines (``.jsonl``) file; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    if name.endswith(".jsonl"):
        assert isinstance(rows, Sequence)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return directory


def catalog(directory: Path) -> Path:
    """Users, one artist and album, three tracks, two playlists."""
    ts = "2026-01-01T00:00:00+00:00"
    write(directory, "users.json", [{"user_id": u, "display_name": u.upper()} for u in USERS])
    write(directory, "artists.json", [{"artist_id": sid("artist"), "name": "Artist"}])
    album = {"album_id": sid("album"), "name": "Album", "artist_id": sid("artist")}
    write(directory, "albums.json", [album])
    write(
        directory,
        "tracks.json",
        [
            {"track_id": t, "name": t, "album_id": sid("album"), "artist_id": sid("artist")}
            for t in TRACKS
        ],
    )
    write(
        directory,
        "playlists.json",
        [{"playlist_id": p, "owner_id": "u1", "name": p, "created_at": ts} for p in PLAYLISTS],
    )
    return directory


@pytest.fixture
async def tenant(manager: FixtureManager) -> str:
    await manager.create_tenant(TenantFixture(tenant_id=TENANT, tier="enterprise"))
    return TENANT


@pytest.fixture
def catalog_set(tmp_path: Path) -> Path:
    return catalog(tmp_path / "catalog")


def catalog_loader(manager: FixtureManager, catalog_set: Path) -> DataLoader:
    return DataLoader(catalog_set, metadata=manager.store.metadata)


async def load(manager: FixtureManager, *loaders: DataLoader, force: bool = False) -> LoadReport:
    return await manager.load_fixtures(TENANT, fixtures=list(loaders), force=force)


async def rows(manager: FixtureManager, table: str, *columns: str) -> list[tuple[Any, ...]]:
    """The rows of a tenant table (the given columns, or all), sorted."""
    async with manager.store.session(TENANT, readonly=True) as session:
        t = session.metadata.tables[f"{TENANT_SCHEMA}.{table}"]
        selected = [t.c[c] for c in columns] if columns else list(t.columns)
        result = await session.connection.execute(select(*selected))
        return sorted(tuple(r) for r in result)


async def count(manager: FixtureManager, table: str) -> int:
    async with manager.store.session(TENANT, readonly=True) as session:
        t = session.metadata.tables[f"{TENANT_SCHEMA}.{table}"]
        return int(
            (await session.connection.execute(select(func.count()).select_from(t))).scalar_one()
        )


# --- AI models ------------------------------------------------------------------------


def model(model_id: str, task: str = "chat", **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model_id": model_id,
        "provider": "openai",
        "model_name": "gpt-4o-mini",
        "version": "2024-07-18",
        "task": task,
        "parameters": {"temperature": 0.4, "max_tokens": 256} if task == "chat" else {},
        "credentials": {"env": "OPENAI_API_KEY"},
        "tiers": ["premium", "enterprise"],
        "features": None,
        "enabled": True,
        "is_default": True,
    }
    row.update(overrides)
    return row


def models_loader(
    manager: FixtureManager, directory: Path, models: list[dict[str, Any]], **kwargs: Any
) -> AIModelLoader:
    write(directory, "ai_models.json", models)
    return AIModelLoader(directory, metadata=manager.store.metadata, **kwargs)


#: Plain keys a model config may hide: as its credentials, in them, in its parameters.
LEAKS: list[dict[str, Any]] = [
    {"credentials": OPENAI_KEY},
    {"credentials": {"api_key": OPENAI_KEY}},
    {"parameters": {"temperature": 0.4, "api_key": OPENAI_KEY}},
]
LEAK_IDS = ["string", "api_key", "parameter"]
MANIFESTS = ["no_manifest", "manifest_naming_no_loader", "manifest_naming_tables"]


def table_set(
    directory: Path, models: list[dict[str, Any]], manifest: dict[str, Any] | None = None
) -> Path:
    """A fixture set of one table file, ``ai_models.jsonl``, its manifest entry (if
    any) holding ``manifest`` besides table and path."""
    write(directory / "set", "ai_models.jsonl", models)
    if manifest is not None:
        entry = {"table": "ai_models", "path": "ai_models.jsonl", **manifest}
        write(directory / "set", "fixtures.json", {"name": "leaky", "files": [entry]})
    return directory / "set"


class TestAIModelLoader:
    async def test_models_load_with_references_and_encrypted_credentials(
        self, manager: FixtureManager, tenant: str, tmp_path: Path
    ) -> None:
        """Every credential form loads, and the encrypted one resolves to the key."""
        key = generate_secret_key()
        settings = load_settings(secret_key=key)
        token = encrypt_credential(OPENAI_KEY, key)
        models = [
            model("chat-main"),
            model("chat-spare", is_default=False, credentials={"secret": "prod/openai"}),
            model(
                "recommender",
                "recommendation",
                parameters={"top_k": 20, "embedding_size": 256},
                credentials={"encrypted": token},
                features=["ai_recommendations"],
            ),
        ]

        await load(manager, models_loader(manager, tmp_path, models, settings=settings))

        stored = await rows(manager, "ai_models", "model_id", "credentials", "is_default")
        assert [
            ("chat-main", {"env": "OPENAI_API_KEY"}, True),
            ("chat-spare", {"secret": "prod/openai"}, False),
            ("recommender", {"encrypted": token}, True),
        ] == stored
        assert OPENAI_KEY == resolve_credential({"credentials": stored[2][1]}, settings)

    @pytest.mark.parametrize(
        "bad",
        [
            {"credentials": OPENAI_KEY},
            {"credentials": {"api_key": OPENAI_KEY}},
            {"credentials": {"env": OPENAI_KEY}},
            {"parameters": {"temperature": 0.2, "token": OPENAI_KEY}},
        ],
        ids=["string", "api_key", "key_as_env_name", "parameter"],
    )
    async def test_a_plain_api_key_is_refused_naming_the_record_not_the_key(
        self,
        manager: FixtureManager,
        tenant: str,
        tmp_path: Path,
        catalog_set: Path,
        bad: dict[str, Any],
    ) -> None:
        """credentials:plain_text, located at its record; no row of the load is written."""
        models = [model("chat-main", is_default=False), model("chat-leaky", **bad)]
        loader = models_loader(manager, tmp_path / "models", models)

        with pytest.raises(RecordError) as caught:
            await load(manager, catalog_loader(manager, catalog_set), loader)

        error = caught.value
        assert ("credentials:plain_text", "ai_models.json", 2) == (
            error.rule,
            error.path,
            error.record,
        )
        assert OPENAI_KEY not in str(error)
        assert 0 == await count(manager, "ai_models")
        assert 0 == await count(manager, "users")

    async def test_credentials_given_as_a_plain_string_are_refused_by_the_loader(
        self, manager: FixtureManager, tenant: str, tmp_path: Path
    ) -> None:
        """A bare key string is credentials:plain_text, and the transaction keeps nothing."""
        loader = models_loader(manager, tmp_path, [model("chat-a", credentials=OPENAI_KEY)])

        with pytest.raises(RecordError) as caught:
            async with manager.store.session(TENANT) as session:
                await loader.apply(session, LoadContext())

        assert ("credentials:plain_text", "credentials", 1) == (
            caught.value.rule,
            caught.value.column,
            caught.value.record,
        )
        assert OPENAI_KEY not in str(caught.value)
        assert 0 == await count(manager, "ai_models")

    async def test_a_chat_model_with_temperature_above_two_is_refused(
        self, manager: FixtureManager, tenant: str, tmp_path: Path
    ) -> None:
        """Parameters are validated for the task; the error names the parameter."""
        models = [model("chat-hot", parameters={"temperature": 2.7})]

        with pytest.raises(RecordError) as caught:
            await load(manager, models_loader(manager, tmp_path, models))

        assert ("ai_models:parameters", "parameters") == (caught.value.rule, caught.value.column)
        assert "parameters.temperature" in str(caught.value)
        assert 0 == await count(manager, "ai_models")

    async def test_two_defaults_for_one_task_are_refused_naming_both(
        self, manager: FixtureManager, tenant: str, tmp_path: Path
    ) -> None:
        """The second default is the error, and both models are named."""
        models = [model("chat-a"), model("chat-b")]

        with pytest.raises(RecordError) as caught:
            await load(manager, models_loader(manager, tmp_path, models))

        assert "ai_models:default_per_task" == caught.value.rule
        assert 2 == caught.value.record
        assert "'chat-a'" in str(caught.value)
        assert "'chat-b'" in str(caught.value)
        assert 0 == await count(manager, "ai_models")

    async def test_a_new_default_that_clashes_with_a_stored_one_is_refused(
        self, manager: FixtureManager, tenant: str, tmp_path: Path
    ) -> None:
        """A later load may not add a second default; the stored models stay as they were."""
        await load(manager, models_loader(manager, tmp_path / "first", [model("chat-a")]))

        second = models_loader(manager, tmp_path / "second", [model("chat-b")])
        with pytest.raises(RecordError) as caught:
            await load(manager, second)

        assert "ai_models:default_per_task" == caught.value.rule
        assert "'chat-a' (already loaded)" in str(caught.value)
        assert [("chat-a",)] == await rows(manager, "ai_models", "model_id")

    async def test_moving_the_default_to_another_model_in_one_load_is_accepted(
        self, manager: FixtureManager, tenant: str, tmp_path: Path
    ) -> None:
        """A load that demotes the old default and promotes a new one keeps one default."""
        await load(manager, models_loader(manager, tmp_path / "first", [model("chat-a")]))

        moved = [model("chat-a", is_default=False), model("chat-b")]
        await load(manager, models_loader(manager, tmp_path / "second", moved))

        assert [("chat-a", False), ("chat-b", True)] == await rows(
            manager, "ai_models", "model_id", "is_default"
        )

    async def test_a_task_without_a_default_is_refused(
        self, manager: FixtureManager, tenant: str, tmp_path: Path
    ) -> None:
        """Enabled models of a task need exactly one default."""
        models = [model("chat-a", is_default=False)]

        with pytest.raises(RecordError) as caught:
            await load(manager, models_loader(manager, tmp_path, models))

        assert "ai_models:default_missing" == caught.value.rule
        assert 0 == await count(manager, "ai_models")

    async def test_an_encrypted_credential_of_another_key_is_refused(
        self, manager: FixtureManager, tenant: str, tmp_path: Path
    ) -> None:
        """The token must decrypt with the settings' key."""
        token = encrypt_credential(OPENAI_KEY, generate_secret_key())
        settings = load_settings(secret_key=generate_secret_key())
        models = [model("chat-a", credentials={"encrypted": token})]

        with pytest.raises(RecordError) as caught:
            await load(manager, models_loader(manager, tmp_path, models, settings=settings))

        assert ("credentials:undecryptable", "credentials") == (
            caught.value.rule,
            caught.value.column,
        )
        assert 0 == await count(manager, "ai_models")

    async def test_the_ai_models_source_format_loads_a_models_document(
        self, manager: FixtureManager, tenant: str, tmp_path: Path
    ) -> None:
        """{"models": [...]} is detected as ai-models and loaded through the same checks."""
        write(
            tmp_path,
            "models.json",
            {"models": [model("chat-a"), model("chat-b", is_default=False)]},
        )
        loader = SourceLoader(
            [source_file(tmp_path, "models.json")], metadata=manager.store.metadata
        )

        await load(manager, loader)

        assert [("chat-a",), ("chat-b",)] == await rows(manager, "ai_models", "model_id")

    async def test_the_ai_models_source_format_refuses_a_plain_key(
        self, manager: FixtureManager, tenant: str, tmp_path: Path
    ) -> None:
        """A key in a source document is refused at its document, not echoed."""
        leaky = model("chat-b", is_default=False, parameters={"system_prompt": f"key {OPENAI_KEY}"})
        write(tmp_path, "models.json", [model("chat-a"), leaky])
        file = source_file(tmp_path, "models.json", format="ai-models")

        with pytest.raises(RecordError) as caught:
            await load(manager, SourceLoader([file], metadata=manager.store.metadata))

        assert ("credentials:plain_text", "models.json", 2) == (
            caught.value.rule,
            caught.value.path,
            caught.value.record,
        )
        assert OPENAI_KEY not in str(caught.value)
        assert 0 == await count(manager, "ai_models")

    @pytest.mark.parametrize("manifest", [None, {}, {"loader": "tables"}], ids=MANIFESTS)
    @pytest.mark.parametrize("bad", LEAKS, ids=LEAK_IDS)
    async def test_a_plain_api_key_in_an_ai_models_table_file_is_refused_as_in_the_ai_models_format(
        self,
        manager: FixtureManager,
        tenant: str,
        tmp_path: Path,
        bad: dict[str, Any],
        manifest: dict[str, Any] | None,
    ) -> None:
        """A set naming no loader (an export's manifest names none) or the generic one
        still loads ai_models through the model checks: refused, nothing stored."""
        path = table_set(
            tmp_path, [model("chat-main"), model("chat-leaky", is_default=False, **bad)], manifest
        )

        with pytest.raises(RecordError) as caught:
            await manager.load_fixtures(TENANT, path)

        assert ("credentials:plain_text", "ai_models.jsonl", 2) == (
            caught.value.rule,
            caught.value.path,
            caught.value.line,
        )
        assert OPENAI_KEY not in str(caught.value)
        assert 0 == await count(manager, "ai_models")

    @pytest.mark.parametrize("bad", LEAKS, ids=LEAK_IDS)
    async def test_validate_data_source_refuses_a_plain_api_key_in_an_ai_models_table_file(
        self, manager: FixtureManager, tmp_path: Path, bad: dict[str, Any]
    ) -> None:
        """``validate-data --source`` runs the model checks on table files too."""
        path = table_set(
            tmp_path, [model("chat-main"), model("chat-leaky", is_default=False, **bad)]
        )

        check = check_set(path, metadata=manager.store.metadata, settings=manager.settings)

        assert not check.ok
        assert {"credentials:plain_text": 1} == dict(check.report.rules)
        assert OPENAI_KEY not in " ".join(check.problems)

    async def test_a_refused_plain_key_never_reaches_a_reject_file_in_clear(
        self, manager: FixtureManager, tenant: str, tmp_path: Path
    ) -> None:
        """A lenient load sets each leaky config aside as credentials:plain_text, every
        column holding a key redacted in its reject line; the clean config loads."""
        leaky = [
            model(f"chat-{name}", is_default=False, **bad)
            for name, bad in zip(LEAK_IDS, LEAKS, strict=True)
        ]
        both: dict[str, Any] = {
            "credentials": {"api_key": OPENAI_KEY},
            "parameters": {"token": OPENAI_KEY},
        }
        path = table_set(
            tmp_path, [model("chat-main"), *leaky, model("chat-both", is_default=False, **both)]
        )

        report = await manager.load_fixtures(
            TENANT, path, validation="lenient", reject_dir=tmp_path / "rejects"
        )

        assert report.reject_file is not None
        text = report.reject_file.read_text(encoding="utf-8")
        assert OPENAI_KEY not in text
        lines = [json.loads(line) for line in text.splitlines()]
        assert [("credentials:plain_text", n) for n in range(2, 6)] == [
            (line["rule"], line["line"]) for line in lines
        ]
        assert {"credentials", "parameters"} == {
            column
            for line in lines
            for column, value in line["record"].items()
            if value == "[redacted: credentials:plain_text]"
        }
        assert [("chat-main",)] == await rows(manager, "ai_models", "model_id")

    async def test_an_export_with_encrypted_credentials_loads_again_through_the_model_checks(
        self, manager: FixtureManager, settings: Settings, tenant: str, tmp_path: Path
    ) -> None:
        """The export's tokens decrypt with the key, so it loads into another tenant; with
        another key the same export is refused as credentials:undecryptable."""
        key = load_settings(secret_key=generate_secret_key()).secret_key
        token = encrypt_credential(OPENAI_KEY, key)
        models = [model("chat-main", credentials={"encrypted": token})]
        async with FixtureManager(settings.model_copy(update={"secret_key": key})) as keyed:
            await keyed.load_fixtures(TENANT, fixtures=[models_loader(keyed, tmp_path, models)])
            await keyed.export_tenant(TENANT, tmp_path / "export")
            await keyed.create_tenant(TenantFixture(tenant_id="domain_copy", tier="enterprise"))
            await keyed.load_fixtures("domain_copy", tmp_path / "export")
        other = load_settings(secret_key=generate_secret_key()).secret_key
        async with FixtureManager(settings.model_copy(update={"secret_key": other})) as wrong:
            await wrong.create_tenant(TenantFixture(tenant_id="domain_other", tier="enterprise"))
            with pytest.raises(RecordError) as caught:
                await wrong.load_fixtures("domain_other", tmp_path / "export")

        assert "credentials:undecryptable" == caught.value.rule
        async with manager.store.session("domain_copy", readonly=True) as session:
            table = session.metadata.tables[f"{TENANT_SCHEMA}.ai_models"]
            stored = list(await session.connection.execute(select(table.c.credentials)))
        assert [["encrypted"]] == [list(credentials) for (credentials,) in stored]


# --- Analytics ------------------------------------------------------------------------


def event(user: str, played_at: str, track: int, ms: int, skipped: bool | None) -> dict[str, Any]:
    return {
        "user_id": user,
        "played_at": played_at,
        "track_id": TRACKS[track],
        "ms_played": ms,
        "skipped": skipped,
    }


FIRST_EVENTS = [
    event("u1", "2026-03-01T08:00:00+00:00", 0, 200_000, False),
    event("u1", "2026-03-01T09:00:00+00:00", 0, 10_000, True),
    event("u2", "2026-03-01T10:00:00+00:00", 0, 180_000, None),
    event("u2", "2026-03-01T11:00:00+00:00", 1, 5_000, True),
    # 01:30 at +02:00 is 23:30 UTC the day before: it counts for 1 March.
    event("u3", "2026-03-02T01:30:00+02:00", 1, 90_000, False),
    event("u3", "2026-03-02T12:00:00+00:00", 2, 240_000, False),
    event("u1", "2026-03-03T23:59:59+00:00", 2, 1_000, True),
    # A day of two listeners, each the only one of the track they played.
    event("u2", "2026-03-03T07:00:00+00:00", 0, 45_000, False),
]
MORE_EVENTS = [
    event("u4", "2026-03-02T15:00:00+00:00", 2, 60_000, True),
    event("u4", "2026-03-05T07:00:00-05:00", 0, 30_000, False),
]


def expected_stats(
    events: Iterable[dict[str, Any]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """track_daily_stats and daily_stats rows, computed in Python."""
    per_track: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
    per_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        day = datetime.fromisoformat(e["played_at"]).astimezone(UTC).date()
        per_track[(e["track_id"], day)].append(e)
        per_day[day].append(e)

    def measures(group: list[dict[str, Any]]) -> tuple[int, int, int, int, int]:
        return (
            len(group),
            len({e["user_id"] for e in group}),
            sum(e["ms_played"] for e in group),
            sum(1 for e in group if e["skipped"] is True),
            sum(1 for e in group if e["ms_played"] >= STREAM_MS),
        )

    return (
        sorted((*key, *measures(group)) for key, group in per_track.items()),
        sorted((day, *measures(group)) for day, group in per_day.items()),
    )


async def stats(manager: FixtureManager) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return (
        await rows(
            manager,
            "track_daily_stats",
            "track_id",
            "day",
            "plays",
            "listeners",
            "ms_played",
            "skips",
            "streams",
        ),
        await rows(
            manager, "daily_stats", "day", "plays", "listeners", "ms_played", "skips", "streams"
        ),
    )


def events_loader(
    manager: FixtureManager, directory: Path, events: list[dict[str, Any]]
) -> AnalyticsLoader:
    write(directory, "listening_events.jsonl", events)
    return AnalyticsLoader(directory, metadata=manager.store.metadata)


class TestAnalyticsLoader:
    async def test_daily_aggregates_equal_a_python_recomputation(
        self, manager: FixtureManager, tenant: str, tmp_path: Path, catalog_set: Path
    ) -> None:
        """Plays, distinct listeners, ms played, skips and streams per track and day (UTC
        days)."""
        loader = events_loader(manager, tmp_path / "events", FIRST_EVENTS)

        await load(manager, catalog_loader(manager, catalog_set), loader)

        assert expected_stats(FIRST_EVENTS) == await stats(manager)
        assert {"track_daily_stats": 5, "daily_stats": 3} == loader.refreshed

    async def test_loading_the_same_events_again_changes_no_aggregate(
        self, manager: FixtureManager, tenant: str, tmp_path: Path, catalog_set: Path
    ) -> None:
        """A forced second load of the same events leaves the aggregates as they were."""
        await load(manager, catalog_loader(manager, catalog_set))
        await load(manager, events_loader(manager, tmp_path / "events", FIRST_EVENTS))
        before = await stats(manager)

        again = await load(
            manager, events_loader(manager, tmp_path / "events", FIRST_EVENTS), force=True
        )
        skipped = await load(manager, events_loader(manager, tmp_path / "events", FIRST_EVENTS))

        assert before == await stats(manager)
        assert again.changed
        assert not skipped.changed

    async def test_more_events_recompute_only_the_days_they_fall_on(
        self, manager: FixtureManager, tenant: str, tmp_path: Path, catalog_set: Path
    ) -> None:
        """Days the new events touch are recomputed; other days are not rewritten."""
        await load(
            manager,
            catalog_loader(manager, catalog_set),
            events_loader(manager, tmp_path / "first", FIRST_EVENTS),
        )
        async with manager.store.session(TENANT) as session:
            daily = session.metadata.tables[f"{TENANT_SCHEMA}.daily_stats"]
            marker = update(daily).where(daily.c.day == date(2026, 3, 3)).values(plays=999)
            await session.connection.execute(marker)

        loader = events_loader(manager, tmp_path / "more", MORE_EVENTS)
        await load(manager, loader)

        per_track, per_day = expected_stats(FIRST_EVENTS + MORE_EVENTS)
        untouched = date(2026, 3, 3)
        marked = [(d, 999, *m[1:]) if d == untouched else (d, *m) for d, *m in per_day]
        assert (per_track, marked) == await stats(manager)
        assert {"track_daily_stats": 2, "daily_stats": 2} == loader.refreshed

    async def test_refresh_of_no_days_changes_nothing_and_of_all_days_repairs_everything(
        self, manager: FixtureManager, tenant: str, tmp_path: Path, catalog_set: Path
    ) -> None:
        """refresh_daily_stats(days=[]) is a no-op; days=None recomputes every day."""
        await load(
            manager,
            catalog_loader(manager, catalog_set),
            events_loader(manager, tmp_path / "events", FIRST_EVENTS),
        )
        async with manager.store.session(TENANT) as session:
            daily = session.metadata.tables[f"{TENANT_SCHEMA}.track_daily_stats"]
            await session.connection.execute(update(daily).values(plays=0))
            assert {"track_daily_stats": 0, "daily_stats": 0} == await refresh_daily_stats(
                session, []
            )
            assert {"track_daily_stats": 5, "daily_stats": 3} == await refresh_daily_stats(session)

        assert expected_stats(FIRST_EVENTS) == await stats(manager)

    async def test_events_of_an_unknown_track_leave_no_event_and_no_aggregate(
        self, manager: FixtureManager, tenant: str, tmp_path: Path, catalog_set: Path
    ) -> None:
        """A refused event rolls back the whole load, aggregates included."""
        bad = [*FIRST_EVENTS, {**FIRST_EVENTS[0], "user_id": "u4", "track_id": sid("nope")}]

        with pytest.raises(IntegrityViolationError):
            await load(
                manager,
                catalog_loader(manager, catalog_set),
                events_loader(manager, tmp_path / "events", bad),
            )

        for table in ("listening_events", "track_daily_stats", "daily_stats", "users"):
            assert 0 == await count(manager, table), table

    async def test_product_events_load_from_table_files_and_segment_exports(
        self, manager: FixtureManager, tenant: str, tmp_path: Path, catalog_set: Path
    ) -> None:
        """product_events rows from a table file; Segment track/page calls from the
        ``events`` source format (identify calls passed over)."""
        write(
            tmp_path / "table",
            "product_events.jsonl",
            [
                {
                    "event_id": "e1",
                    "user_id": "u1",
                    "occurred_at": "2026-03-01T08:00:00+00:00",
                    "event_type": "app_opened",
                    "properties": {"platform": "ios"},
                }
            ],
        )
        segment: list[dict[str, Any]] = [
            {
                "type": "track",
                "messageId": "m1",
                "userId": "u2",
                "event": "Playlist Created",
                "timestamp": "2026-03-01T09:00:00.000Z",
                "properties": {"tracks": 12},
            },
            {
                "type": "identify",
                "messageId": "m2",
                "userId": "u2",
                "timestamp": "2026-03-01T09:00:01Z",
                "traits": {"plan": "pro"},
            },
            {
                "type": "page",
                "messageId": "m3",
                "userId": "u3",
                "name": "Library",
                "timestamp": "2026-03-01T09:00:02Z",
            },
        ]
        write(tmp_path / "segment", "events.jsonl", segment)

        await load(
            manager,
            catalog_loader(manager, catalog_set),
            AnalyticsLoader(tmp_path / "table", metadata=manager.store.metadata),
        )
        segment_file = source_file(tmp_path / "segment", "events.jsonl")
        await load(manager, SourceLoader([segment_file], metadata=manager.store.metadata))

        assert [
            ("e1", "u1", "app_opened", {"platform": "ios"}),
            ("m1", "u2", "Playlist Created", {"tracks": 12}),
            ("m3", "u3", "page_viewed", {"name": "Library"}),
        ] == await rows(
            manager, "product_events", "event_id", "user_id", "event_type", "properties"
        )

    async def test_an_anonymous_segment_event_is_refused_at_its_line(
        self, manager: FixtureManager, tenant: str, tmp_path: Path
    ) -> None:
        """Events need a user of the tenant; the error names the line."""
        anonymous = {
            "type": "track",
            "messageId": "m1",
            "anonymousId": "a1",
            "event": "Opened",
            "timestamp": "2026-03-01T09:00:00Z",
        }
        write(tmp_path, "events.jsonl", [anonymous])

        with pytest.raises(RecordError) as caught:
            await load(
                manager,
                SourceLoader(
                    [source_file(tmp_path, "events.jsonl")], metadata=manager.store.metadata
                ),
            )

        assert ("format:event", "user_id", "events.jsonl", 1) == (
            caught.value.rule,
            caught.value.column,
            caught.value.path,
            caught.value.line,
        )
        assert 0 == await count(manager, "product_events")


# --- Collaboration --------------------------------------------------------------------


def collaboration(
    directory: Path,
    *,
    members: list[tuple[str, str, str]] | None = None,
    shared: list[tuple[str, str, str]] | None = None,
    comments: Sequence[tuple[str, str, str | None, str]] | None = None,
) -> Path:
    """Workspace w1 owned by u1 (u2 editor, u3 viewer) sharing playlist A, with comments."""
    ts = "2026-02-01T00:00:00+00:00"
    write(
        directory,
        "workspaces.json",
        [{"workspace_id": "w1", "name": "Studio", "owner_id": "u1", "created_at": ts}],
    )
    members = (
        members
        if members is not None
        else [("w1", "u1", "owner"), ("w1", "u2", "editor"), ("w1", "u3", "viewer")]
    )
    write(
        directory,
        "workspace_members.json",
        [{"workspace_id": w, "user_id": u, "role": r, "joined_at": ts} for w, u, r in members],
    )
    shared = shared if shared is not None else [("w1", PLAYLISTS[0], "u2")]
    write(
        directory,
        "workspace_playlists.json",
        [
            {"workspace_id": w, "playlist_id": p, "added_by": u, "added_at": ts}
            for w, p, u in shared
        ],
    )
    comments = (
        comments
        if comments is not None
        else [("c1", "u3", PLAYLISTS[0], "Nice"), ("c2", "u1", None, "Welcome")]
    )
    write(
        directory,
        "comments.jsonl",
        [
            {
                "comment_id": c,
                "workspace_id": "w1",
                "playlist_id": p,
                "author_id": u,
                "body": b,
                "created_at": ts,
            }
            for c, u, p, b in comments
        ],
    )
    return directory


def collaboration_loader(manager: FixtureManager, directory: Path) -> CollaborationLoader:
    return CollaborationLoader(directory, metadata=manager.store.metadata)


class TestCollaborationLoader:
    async def test_a_workspace_loads_with_members_playlists_and_comments(
        self, manager: FixtureManager, tenant: str, tmp_path: Path, catalog_set: Path
    ) -> None:
        """Members with roles, who shared what, comments by members."""
        directory = collaboration(tmp_path / "collab")

        await load(
            manager, catalog_loader(manager, catalog_set), collaboration_loader(manager, directory)
        )

        assert [
            ("w1", "u1", "owner"),
            ("w1", "u2", "editor"),
            ("w1", "u3", "viewer"),
        ] == await rows(manager, "workspace_members", "workspace_id", "user_id", "role")
        assert [("w1", PLAYLISTS[0], "u2")] == await rows(
            manager, "workspace_playlists", "workspace_id", "playlist_id", "added_by"
        )
        assert [("c1", "u3"), ("c2", "u1")] == await rows(
            manager, "comments", "comment_id", "author_id"
        )

    @pytest.mark.parametrize(
        ("files", "rule", "where", "says", "empty"),
        [
            pytest.param(
                {
                    "members": [
                        ("w1", "u1", "editor"),
                        ("w1", "u2", "editor"),
                        ("w1", "u3", "viewer"),
                    ]
                },
                "collaboration:owner_required",
                ("workspaces.json", None, 1, "workspace_id"),
                "'w1'",
                ("workspaces", "workspace_members", "comments", "users"),
                id="a-workspace-without-an-owner",
            ),
            pytest.param(
                {"comments": [("c1", "u3", PLAYLISTS[0], "Nice"), ("c2", "u4", None, "Hello?")]},
                "collaboration:author_not_member",
                ("comments.jsonl", 2, None, "author_id"),
                "'c2'",
                ("comments",),
                id="a-comment-by-a-non-member",
            ),
            pytest.param(
                {"shared": [("w1", PLAYLISTS[0], "u2"), ("w1", PLAYLISTS[1], "u3")]},
                "collaboration:adder_not_editor",
                ("workspace_playlists.json", None, 2, "added_by"),
                "is a viewer",
                ("workspace_playlists",),
                id="a-playlist-shared-by-a-viewer",
            ),
            pytest.param(
                {"comments": [("c1", "u3", PLAYLISTS[1], "Which playlist?")]},
                "collaboration:playlist_not_shared",
                ("comments.jsonl", 1, None, "playlist_id"),
                "is not shared in workspace 'w1'",
                ("comments",),
                id="a-comment-about-a-playlist-not-shared-in-the-workspace",
            ),
        ],
    )
    async def test_a_workspace_rule_broken_is_refused_naming_the_record(
        self,
        manager: FixtureManager,
        tenant: str,
        tmp_path: Path,
        catalog_set: Path,
        files: dict[str, Any],
        rule: str,
        where: tuple[str, int | None, int | None, str],
        says: str,
        empty: tuple[str, ...],
    ) -> None:
        """A workspace keeps an owner, only members comment, only owners and editors share
        playlists, comments are about the workspace's playlists: a break is refused naming
        its file, line or record and column, and nothing of the load is written."""
        directory = collaboration(tmp_path / "collab", **files)

        with pytest.raises(RecordError) as caught:
            await load(
                manager,
                catalog_loader(manager, catalog_set),
                collaboration_loader(manager, directory),
            )

        error = caught.value
        assert (rule, *where) == (error.rule, error.path, error.line, error.record, error.column)
        assert says in str(error)
        for table in empty:
            assert 0 == await count(manager, table), table

    @pytest.mark.parametrize(
        "catalog_first", [False, True], ids=["same_load", "catalog_loaded_before"]
    )
    async def test_a_member_who_is_not_a_user_of_the_tenant_is_refused(
        self,
        manager: FixtureManager,
        tenant: str,
        tmp_path: Path,
        catalog_set: Path,
        catalog_first: bool,
    ) -> None:
        """The foreign key to users, explained: members must be users of the same tenant."""
        members = [
            ("w1", "u1", "owner"),
            ("w1", "u2", "editor"),
            ("w1", "u3", "viewer"),
            ("w1", "stranger", "viewer"),
        ]
        directory = collaboration(tmp_path / "collab", members=members)
        loaders: list[DataLoader] = [collaboration_loader(manager, directory)]
        if catalog_first:
            await load(manager, catalog_loader(manager, catalog_set))
        else:
            loaders.insert(0, catalog_loader(manager, catalog_set))

        with pytest.raises(IntegrityViolationError) as caught:
            await load(manager, *loaders)

        assert f"is not a user of tenant '{TENANT}'" in str(caught.value)
        assert "stranger" in str(caught.value)
        assert "workspace_members" == caught.value.table
        assert 0 == await count(manager, "workspace_members")
        assert (4 if catalog_first else 0) == await count(manager, "users")


def workspace_document(**overrides: Any) -> dict[str, Any]:
    """A workspace in the ``collaboration`` source format."""
    ts = "2026-02-01T00:00:00+00:00"
    document: dict[str, Any] = {
        "workspace_id": "w1",
        "name": "Studio",
        "created_at": ts,
        "members": [
            {"user_id": "u1", "role": "owner"},
            {"user_id": "u2", "role": "editor", "joined_at": "2026-02-02T00:00:00+00:00"},
            {"user_id": "u3", "role": "viewer"},
        ],
        "playlists": [{"playlist_id": f"spotify:playlist:{PLAYLISTS[0]}", "added_by": "u2"}],
        "comments": [
            {
                "comment_id": "c1",
                "author_id": "u3",
                "playlist_id": PLAYLISTS[0],
                "body": "Nice",
                "created_at": ts,
            }
        ],
    }
    document.update(overrides)
    return document


class TestCollaborationFormat:
    async def test_nested_workspace_documents_load_into_the_four_tables(
        self, manager: FixtureManager, tenant: str, tmp_path: Path, catalog_set: Path
    ) -> None:
        """{"workspaces": [...]} is detected; owner_id and timestamps default sensibly."""
        write(tmp_path / "src", "workspaces.json", {"workspaces": [workspace_document()]})
        await load(manager, catalog_loader(manager, catalog_set))

        file = source_file(tmp_path / "src", "workspaces.json")
        await load(manager, SourceLoader([file], metadata=manager.store.metadata))

        assert [("w1", "u1")] == await rows(manager, "workspaces", "workspace_id", "owner_id")
        assert [("u1", "owner"), ("u2", "editor"), ("u3", "viewer")] == await rows(
            manager, "workspace_members", "user_id", "role"
        )
        assert [(PLAYLISTS[0], "u2")] == await rows(
            manager, "workspace_playlists", "playlist_id", "added_by"
        )
        assert [("c1", "u3", PLAYLISTS[0])] == await rows(
            manager, "comments", "comment_id", "author_id", "playlist_id"
        )

    @pytest.mark.parametrize(
        ("overrides", "rule"),
        [
            ({"members": [{"user_id": "u1", "role": "editor"}]}, "collaboration:owner_required"),
            (
                {"comments": [{"comment_id": "c9", "author_id": "u4", "body": "?"}]},
                "collaboration:author_not_member",
            ),
            (
                {"playlists": [{"playlist_id": PLAYLISTS[1], "added_by": "u3"}]},
                "collaboration:adder_not_editor",
            ),
        ],
        ids=["no_owner", "comment_by_stranger", "viewer_adds"],
    )
    async def test_a_document_breaking_a_workspace_rule_is_refused_at_that_document(
        self,
        manager: FixtureManager,
        tenant: str,
        tmp_path: Path,
        catalog_set: Path,
        overrides: dict[str, Any],
        rule: str,
    ) -> None:
        """The second workspace breaks the rule: the error names it; nothing is written."""
        documents = [workspace_document(), workspace_document(workspace_id="w2", **overrides)]
        write(tmp_path / "src", "workspaces.json", documents)
        file = source_file(tmp_path / "src", "workspaces.json", format="collaboration")
        await load(manager, catalog_loader(manager, catalog_set))

        with pytest.raises(RecordError) as caught:
            await load(manager, SourceLoader([file], metadata=manager.store.metadata))

        assert (rule, "workspaces.json", 2) == (
            caught.value.rule,
            caught.value.path,
            caught.value.record,
        )
        assert 0 == await count(manager, "workspaces")


async def test_the_enterprise_template_loads_every_domain_of_the_demo_set(
    manager: FixtureManager, settings: Settings
) -> None:
    """The generated demo passes every domain loader's checks and gets its aggregates."""
    await manager.create_tenant(TenantFixture(tenant_id=TENANT, tier="enterprise"))

    report = await manager.load_fixtures(TENANT)

    assert report.row_counts["comments"] > 0
    assert report.row_counts["product_events"] > 0
    assert 6 == report.row_counts["ai_models"]
    events = await rows(manager, "listening_events", "played_at")
    days = {
        played_at.astimezone(UTC).date() if played_at.tzinfo else played_at.date()
        for (played_at,) in events
    }
    daily = await rows(manager, "daily_stats", "day", "plays")
    assert days == {day for day, _ in daily}
    assert len(events) == sum(plays for _, plays in daily)
