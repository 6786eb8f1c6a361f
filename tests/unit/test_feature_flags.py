"""The four feature flags without a database: their defaults, the combinations the
settings refuse, and what each switch hands out when off."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet

from tenancy_fixtures import Settings, SettingsError, load_settings
from tenancy_fixtures.errors import RecordError
from tenancy_fixtures.loading.readers import SourceRecord
from tenancy_fixtures.loading.records import RowBuilder
from tenancy_fixtures.monitoring.performance import (
    PerformanceTracker,
    UntimedTracker,
    tracker_for,
)
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.tenancy.config_cache import (
    MemoryConfigCache,
    NoConfigCache,
    open_config_cache,
)

FLAGS = ("performance_monitoring", "data_validation", "audit_logging", "cache_optimization")
TABLES = {t.name: t for t in spotify_metadata().sorted_tables}
USER: dict[str, Any] = {
    "user_id": "u1",
    "display_name": "Ada",
    "email": "not-an-email",
    "country": "GB",
    "product": "premium",
    "created_at": "2026-01-01T12:00:00+00:00",
}
TRACK: dict[str, Any] = {
    "track_id": "4uLU6hMCjMI75M1A2tKUQC",
    "name": "Song",
    "album_id": "6akEvsycLGftJxYudPjmqK",
    "artist_id": "0OdUWJ0sBjDrqHygGUXeCF",
    "duration_ms": -5,
}


def build(table: str, values: dict[str, Any], *, rules: bool) -> tuple[Any, ...]:
    builder = RowBuilder(TABLES[table], rules=rules)
    return builder.build(SourceRecord(values, 2, 1), path=f"{table}.jsonl")


class TestSettings:
    def test_every_flag_is_on_by_default(self) -> None:
        settings = Settings(database_url="sqlite:///x")

        assert dict.fromkeys(FLAGS, True) == {f: getattr(settings, f) for f in FLAGS}

    @pytest.mark.parametrize("flag", FLAGS)
    def test_each_flag_is_switched_off_from_the_environment(
        self, flag: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(f"TENANCY_{flag.upper()}", "false")

        assert getattr(load_settings(database_url="sqlite:///x"), flag) is False

    def test_audit_off_is_refused_with_tenant_roles_on(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Per-tenant roles are a compliance feature: their grants must be audited."""
        monkeypatch.setenv("TENANCY_AUDIT_LOGGING", "false")
        monkeypatch.setenv("TENANCY_TENANT_ROLES", "true")

        with pytest.raises(SettingsError, match=r"TENANCY_AUDIT_LOGGING: .*TENANCY_TENANT_ROLES"):
            load_settings(database_url="postgresql+asyncpg://h/db")

    def test_audit_off_is_refused_with_a_secret_key_set(self) -> None:
        """Encrypted credentials are a compliance feature: who stored them is audited."""
        key = Fernet.generate_key().decode()

        with pytest.raises(SettingsError, match=r"TENANCY_AUDIT_LOGGING: .*TENANCY_SECRET_KEY"):
            load_settings(database_url="sqlite:///x", audit_logging=False, secret_key=key)

    def test_the_refusal_names_both_compliance_features_when_both_are_on(self) -> None:
        key = Fernet.generate_key().decode()

        with pytest.raises(SettingsError) as caught:
            load_settings(
                database_url="postgresql+asyncpg://h/db",
                audit_logging=False,
                tenant_roles=True,
                secret_key=key,
            )

        assert "TENANCY_TENANT_ROLES and TENANCY_SECRET_KEY are set" in str(caught.value)

    def test_audit_off_is_accepted_without_compliance_features(self) -> None:
        assert load_settings(database_url="sqlite:///x", audit_logging=False).audit_logging is False

    def test_validation_off_is_refused_with_lenient_loading(self) -> None:
        with pytest.raises(SettingsError, match=r"TENANCY_DATA_VALIDATION: .*lenient"):
            load_settings(
                database_url="sqlite:///x", data_validation=False, validation_mode="lenient"
            )


class TestRowBuilderWithoutRules:
    def test_a_value_format_is_not_checked(self) -> None:
        assert "not-an-email" == build("users", USER, rules=False)[2]

    def test_a_compiled_check_constraint_is_not_checked(self) -> None:
        row = build("tracks", TRACK, rules=False)

        assert -5 == row[list(TABLES["tracks"].columns.keys()).index("duration_ms")]

    def test_with_rules_both_are_refused_by_name(self) -> None:
        refused = []
        for table, values in (("users", USER), ("tracks", TRACK)):
            with pytest.raises(RecordError) as caught:
                build(table, values, rules=True)
            refused.append(caught.value.rule)

        assert ["format:email", "check:duration_ms"] == refused

    @pytest.mark.parametrize(
        ("change", "rule"),
        [
            ({"duration_ms": "long"}, "type"),
            ({"duration_ms": 2**40}, "range"),
            ({"name": None}, "not_null"),
            ({"name": "x" * 10_000}, "length"),
            ({"tempo": 120}, "unknown_column"),
        ],
    )
    def test_typing_a_record_into_a_row_still_refuses(
        self, change: dict[str, Any], rule: str
    ) -> None:
        with pytest.raises(RecordError) as caught:
            build("tracks", {**TRACK, "duration_ms": 1, **change}, rules=False)

        assert rule == caught.value.rule


class TestSwitchesHandOut:
    def test_an_untimed_tracker_with_monitoring_off(self) -> None:
        tracker = tracker_for(Settings(database_url="sqlite:///x", performance_monitoring=False))
        with tracker.stage("write"):
            tracker.add("parse", 1.0)

        assert isinstance(tracker, UntimedTracker)
        assert ({}, {}, {}) == (tracker.stages, tracker.summary(), tracker.performance(10))

    def test_a_timing_tracker_by_default(self) -> None:
        tracker = tracker_for(Settings(database_url="sqlite:///x"))
        with tracker.stage("write"):
            pass

        assert type(tracker) is PerformanceTracker
        assert ["write", "total"] == list(tracker.summary())

    async def test_no_cache_with_cache_optimization_off_even_with_a_redis_url(self) -> None:
        settings = Settings(
            database_url="sqlite:///x", redis_url="redis://127.0.0.1:1/0", cache_optimization=False
        )
        cache = open_config_cache(settings)

        assert isinstance(cache, NoConfigCache)
        assert await cache.set("plane", "acme", "{}", version=1) is False
        assert await cache.get("plane", "acme") is None
        await cache.aclose()

    async def test_the_in_process_cache_by_default(self) -> None:
        cache = open_config_cache(Settings(database_url="sqlite:///x"))

        assert isinstance(cache, MemoryConfigCache)
        await cache.aclose()
