"""Settings derived from the TENANCY_* values."""

from __future__ import annotations

import os

import pytest

from tenancy_fixtures import Settings, SettingsError, load_settings


class TestParseWorkers:
    """How many parse worker processes a load uses."""

    @pytest.mark.parametrize(("cpus", "expected"), [(1, 0), (2, 2), (3, 3), (16, 4), (None, 0)])
    def test_unset_means_one_per_cpu_at_most_four_and_none_on_one_cpu(
        self, monkeypatch: pytest.MonkeyPatch, cpus: int | None, expected: int
    ) -> None:
        monkeypatch.setattr(os, "cpu_count", lambda: cpus)

        assert expected == Settings(database_url="sqlite:///x").workers_for_parsing

    def test_a_set_number_is_used_as_given(self) -> None:
        assert 0 == Settings(database_url="sqlite:///x", parse_workers=0).workers_for_parsing
        assert 7 == Settings(database_url="sqlite:///x", parse_workers=7).workers_for_parsing


class TestRefusals:
    """Settings built directly refuse as load_settings does: one typed error."""

    def test_settings_built_directly_refuse_a_malformed_value_with_a_settings_error(
        self,
    ) -> None:
        """It was pydantic's ValidationError, outside the library's hierarchy."""
        with pytest.raises(SettingsError) as caught:
            Settings(database_url="mysql://db/x", parse_workers=-1)

        message = str(caught.value)
        assert message.startswith("invalid settings: TENANCY_DATABASE_URL: only sqlite:///")
        assert "; TENANCY_PARSE_WORKERS: Input should be greater than or equal to 0" in message
        assert "Value error" not in message
        assert 2 == caught.value.exit_code

    def test_a_malformed_environment_value_is_a_settings_error_naming_the_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TENANCY_PARSE_WORKERS", "many")

        with pytest.raises(SettingsError, match="TENANCY_PARSE_WORKERS: Input should be"):
            Settings(database_url="sqlite:///x")


class TestEmptyVariables:
    """``TENANCY_X=`` (a compose file's empty entry) says "unset" for a setting whose
    README default or meaning includes "unset"; a required one is still refused."""

    @pytest.mark.parametrize(
        "name",
        [
            "catalog_budget",
            "catalog_limit",
            "redis_url",
            "parse_workers",
            "template_dir",
            "secret_key",
            "migrations",
            "service_load_root",
            "service_snapshot_interval_seconds",
        ],
    )
    def test_an_empty_optional_variable_means_unset(
        self, monkeypatch: pytest.MonkeyPatch, name: str
    ) -> None:
        monkeypatch.setenv(f"TENANCY_{name.upper()}", "")

        assert getattr(Settings(database_url="sqlite:///x"), name) is None

    def test_an_empty_required_variable_is_still_refused_naming_it(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TENANCY_BATCH_SIZE", "")

        with pytest.raises(SettingsError, match="TENANCY_BATCH_SIZE"):
            Settings(database_url="sqlite:///x")


class TestActor:
    """TENANCY_ACTOR is what the audit log's 200-character actor column can keep."""

    @pytest.mark.parametrize("actor", ["", " \t ", "x" * 201, "a\x00b", "a\x1bb"])
    def test_an_actor_empty_too_long_or_with_control_characters_is_refused(
        self, actor: str
    ) -> None:
        with pytest.raises(SettingsError, match="TENANCY_ACTOR: "):
            Settings(database_url="sqlite:///x", actor=actor)

    def test_an_actor_is_stripped_and_may_fill_the_column(self) -> None:
        assert "é" * 200 == Settings(database_url="sqlite:///x", actor=f" {'é' * 200}\n").actor


class TestDurations:
    """Every ``*_SECONDS`` setting is finite and at most 30 days: Redis refuses a longer
    TTL (every cache write failed), and inf overflowed (OverflowError, exit 1)."""

    NAMES = (
        "cache_ttl_seconds",
        "cache_revalidate_seconds",
        "redis_breaker_seconds",
        "validation_timeout_seconds",
        "service_snapshot_interval_seconds",
    )

    @pytest.mark.parametrize("value", ["inf", "1e30", str(30 * 86_400 + 1)])
    @pytest.mark.parametrize("name", NAMES)
    def test_an_infinite_or_huge_duration_is_a_settings_error_naming_it(
        self, monkeypatch: pytest.MonkeyPatch, name: str, value: str
    ) -> None:
        monkeypatch.setenv(f"TENANCY_{name.upper()}", value)

        with pytest.raises(SettingsError, match=f"TENANCY_{name.upper()}: "):
            Settings(database_url="sqlite:///x")

    @pytest.mark.parametrize("name", NAMES)
    def test_thirty_days_is_accepted(self, name: str) -> None:
        settings = load_settings(database_url="sqlite:///x", **{name: 30 * 86_400})

        assert 30 * 86_400 == getattr(settings, name)


class TestPorts:
    """A URL's port is 1 to 65535, checked when settings are read."""

    @pytest.mark.parametrize(
        "url",
        [
            "postgresql+asyncpg://127.0.0.1:99999/test",
            "postgres://127.0.0.1:65536/test",
            "postgresql+asyncpg://127.0.0.1:0/test",
        ],
    )
    def test_a_database_url_port_out_of_range_is_a_settings_error_naming_it(self, url: str) -> None:
        """It passed, and the first connect failed: "unexpected error: OverflowError:
        connect(): port must be 0-65535", exit 1."""
        with pytest.raises(SettingsError) as caught:
            load_settings(database_url=url)

        assert "TENANCY_DATABASE_URL: port" in str(caught.value)
        assert "give 1 to 65535" in str(caught.value)
        assert 2 == caught.value.exit_code

    @pytest.mark.parametrize("url", ["redis://127.0.0.1:0/0", "redis://[::1]:70000/0"])
    def test_a_redis_url_port_out_of_range_is_a_settings_error_naming_it(self, url: str) -> None:
        """Port 0 passed; past 65535 the client's message said 0 to 65535 were allowed."""
        with pytest.raises(SettingsError, match=r"TENANCY_REDIS_URL: port .* give 1 to 65535"):
            load_settings(database_url="sqlite:///x", redis_url=url)

    @pytest.mark.parametrize(
        "url", ["postgresql+asyncpg://h:1/db", "postgresql+asyncpg://h:65535/db", "postgres://h/db"]
    )
    def test_ports_in_range_or_none_are_accepted(self, url: str) -> None:
        assert load_settings(database_url=url).backend == "postgresql"


class TestRedisUrl:
    """TENANCY_REDIS_URL is checked when settings are read, not at the first Redis call."""

    @pytest.mark.parametrize(
        "url",
        ["notaurl", "http://127.0.0.1:6379/0", "redis://127.0.0.1:port/0", "redis://h:6379/x"],
    )
    def test_a_value_that_is_not_a_redis_url_is_a_settings_error_naming_it(self, url: str) -> None:
        """A non-Redis scheme, a bad port or a non-numeric database raise SettingsError."""
        with pytest.raises(SettingsError) as caught:
            load_settings(database_url="sqlite:///x", redis_url=url)

        assert "TENANCY_REDIS_URL" in str(caught.value)
        assert 2 == caught.value.exit_code

    @pytest.mark.parametrize(
        ("query", "named"),
        [
            ("socket_timout=1", "socket_timout"),
            ("ssl_cert_reqs=none", "ssl_cert_reqs"),
            ("protocol=9", "protocol"),
        ],
    )
    def test_a_parameter_the_client_refuses_is_a_settings_error_naming_it(
        self, query: str, named: str
    ) -> None:
        """A misspelt parameter, a TLS one on redis://, a protocol redis-py has not: every
        Redis call failed with it (TypeError), so the cache never used Redis, quietly."""
        with pytest.raises(SettingsError) as caught:
            load_settings(database_url="sqlite:///x", redis_url=f"redis://h:6379/0?{query}")

        assert "TENANCY_REDIS_URL" in str(caught.value)
        assert named in str(caught.value)

    def test_a_password_in_a_refused_redis_url_is_not_shown(self) -> None:
        """The error for a bad URL does not repeat the password it carries."""
        with pytest.raises(SettingsError) as caught:
            load_settings(database_url="sqlite:///x", redis_url="redis://:s3cret@h:99999/0")

        assert "s3cret" not in str(caught.value)

    @pytest.mark.parametrize(
        "url", ["redis://127.0.0.1:6379/0", "rediss://cache.example:6380", "unix:///tmp/r.sock"]
    )
    def test_redis_rediss_and_unix_urls_are_accepted(self, url: str) -> None:
        assert url == load_settings(database_url="sqlite:///x", redis_url=url).redis_url


class TestCacheDefaults:
    def test_redis_calls_are_short_and_a_failing_redis_is_left_alone_for_a_while(
        self,
    ) -> None:
        """Redis calls time out after 0.25 s; two failures open the breaker for 5 s; a
        cached config is checked against the control plane at least every second."""
        settings = Settings(database_url="sqlite:///x")

        assert (0.25, 2, 5.0, 1.0) == (
            settings.redis_timeout_seconds,
            settings.redis_breaker_failures,
            settings.redis_breaker_seconds,
            settings.cache_revalidate_seconds,
        )
