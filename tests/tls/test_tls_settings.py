"""The TLS settings as the clients receive them, and what is refused before connecting.

No server is needed: these check the arguments asyncpg and redis-py are given and the
SettingsError (exit code 2) that names the setting at fault.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tenancy_fixtures import FixtureManager, Settings, SettingsError, load_settings
from tenancy_fixtures.store.postgres.tls import asyncpg_tls
from tenancy_fixtures.tenancy.config_cache import open_config_cache
from tenancy_fixtures.tenancy.redis_tls import redis_tls_options
from tests.tls.certificates import Certificates

PG = "postgresql+asyncpg://app:s3cret@db.example:5432/tenants"
REDISS = "rediss://:s3cret@cache.example:6380/0"


def _pg_refusal(url: str = PG, **settings: object) -> str:
    with pytest.raises(SettingsError) as caught:
        FixtureManager(load_settings(database_url=url, **settings))
    assert 2 == caught.value.exit_code
    assert "s3cret" not in str(caught.value)
    return str(caught.value)


def _redis_refusal(url: str = REDISS, **settings: object) -> str:
    with pytest.raises(SettingsError) as caught:
        open_config_cache(load_settings(database_url="sqlite:///x", redis_url=url, **settings))
    assert "s3cret" not in str(caught.value)
    return str(caught.value)


class TestPostgres:
    def test_the_settings_build_a_verifying_context(self, certificates: Certificates) -> None:
        """pg_sslmode=verify-full and pg_sslrootcert give asyncpg an SSLContext that checks
        the chain and the host name against that CA."""
        settings = Settings(
            database_url=PG, pg_sslmode="verify-full", pg_sslrootcert=str(certificates.ca)
        )

        url, args = asyncpg_tls(settings.url, settings.pg_tls)
        context = args["ssl"]

        assert {} == dict(url.query)
        assert (ssl.CERT_REQUIRED, True) == (context.verify_mode, context.check_hostname)
        assert 1 == len(context.get_ca_certs())

    def test_settings_and_url_parameters_are_merged(self, certificates: Certificates) -> None:
        """sslmode from the settings and sslrootcert from the URL (or the same value in
        both) make one verify-ca context."""
        url = make_url(f"{PG}?sslrootcert={certificates.ca}&sslmode=verify-ca")

        _, args = asyncpg_tls(url, {"sslmode": "verify-ca"})

        assert (ssl.CERT_REQUIRED, False) == (args["ssl"].verify_mode, args["ssl"].check_hostname)

    def test_a_conflict_between_url_and_setting_names_both(self) -> None:
        """sslmode=require in the URL and TENANCY_PG_SSLMODE=verify-full: refused, neither
        silently wins."""
        message = _pg_refusal(f"{PG}?sslmode=require", pg_sslmode="verify-full")

        assert "TENANCY_PG_SSLMODE is 'verify-full'" in message
        assert "TENANCY_DATABASE_URL says sslmode='require'" in message

    @pytest.mark.parametrize(
        ("settings", "says"),
        [
            ({"pg_sslrootcert": "/nonexistent/ca.crt"}, "TENANCY_PG_SSLROOTCERT: cannot use"),
            ({"pg_sslcert": "/nonexistent/c.crt"}, "TENANCY_PG_SSLCERT: sslcert '/nonexistent"),
        ],
    )
    def test_a_file_that_cannot_be_used_names_its_setting(
        self, settings: dict[str, str], says: str
    ) -> None:
        assert says in _pg_refusal(pg_sslmode="require", **settings)

    def test_a_key_without_its_certificate_is_refused(self, certificates: Certificates) -> None:
        message = _pg_refusal(pg_sslmode="require", pg_sslkey=str(certificates.client_key))

        assert "TENANCY_PG_SSLKEY: sslkey needs sslcert" in message

    def test_the_postgresql_settings_need_a_postgresql_url(self) -> None:
        """TENANCY_PG_SSLMODE with the SQLite default would do nothing: refused."""
        with pytest.raises(SettingsError) as caught:
            load_settings(database_url="sqlite:///x", pg_sslmode="verify-full")

        assert "TENANCY_PG_SSLMODE" in str(caught.value)
        assert "postgresql://" in str(caught.value)


class TestRedis:
    def test_the_ca_setting_is_passed_to_redis_py_with_host_checks(
        self, certificates: Certificates
    ) -> None:
        settings = Settings(
            database_url="sqlite:///x", redis_url=REDISS, redis_ssl_ca_certs=certificates.ca
        )

        assert {"ssl_ca_certs": str(certificates.ca), "ssl_check_hostname": True} == (
            redis_tls_options(settings)
        )

    def test_a_plain_redis_url_gets_no_tls_options(self) -> None:
        settings = Settings(database_url="sqlite:///x", redis_url="redis://127.0.0.1:6379/0")

        assert {} == redis_tls_options(settings)

    def test_the_tls_settings_need_a_rediss_url(self, certificates: Certificates) -> None:
        with pytest.raises(SettingsError) as caught:
            load_settings(
                database_url="sqlite:///x",
                redis_url="redis://127.0.0.1:6379/0",
                redis_ssl_ca_certs=str(certificates.ca),
            )

        assert "TENANCY_REDIS_SSL_CA_CERTS" in str(caught.value)
        assert "rediss://" in str(caught.value)

    @pytest.mark.parametrize(
        ("url", "settings", "says"),
        [
            (REDISS, {"redis_ssl_ca_certs": "/nonexistent/ca.crt"}, "TENANCY_REDIS_SSL_CA_CERTS:"),
            (f"{REDISS}?ssl_ca_certs=/nonexistent/ca.crt", {}, "TENANCY_REDIS_URL: cannot use"),
            (REDISS, {"redis_ssl_certfile": "/nonexistent/c.crt"}, "TENANCY_REDIS_SSL_CERTFILE:"),
            (REDISS, {"redis_ssl_keyfile": "/nonexistent/c.key"}, "ssl_keyfile needs"),
        ],
    )
    def test_a_file_that_cannot_be_used_is_refused_when_the_cache_opens(
        self, url: str, settings: dict[str, str], says: str
    ) -> None:
        """redis-py would read the files only at the first connection, whose failure the
        cache treats as Redis being down; they are checked when the cache is opened."""
        assert says in _redis_refusal(url, **settings)

    def test_a_conflict_between_url_and_setting_is_refused(
        self, certificates: Certificates, tmp_path: Path
    ) -> None:
        message = _redis_refusal(
            f"{REDISS}?ssl_ca_certs={tmp_path / 'other.crt'}", redis_ssl_ca_certs=certificates.ca
        )

        assert "TENANCY_REDIS_SSL_CA_CERTS is" in message
        assert "give it in one place" in message
