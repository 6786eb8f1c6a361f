"""libpq's TLS query parameters become asyncpg's ``ssl`` argument, or a SettingsError.

No TLS server is needed: what is checked is the argument asyncpg would get (the mode it
is told, or the SSLContext's verification, trusted roots and client certificate).
"""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import make_url

from tenancy_fixtures import Settings, SettingsError, open_store, spotify_metadata
from tenancy_fixtures.store.postgres.tls import asyncpg_tls

BASE = "postgresql+asyncpg://app:s3cret@db.example:5432/tenants"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its private key, as PEM files."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tenancy-test-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _context(query: str) -> ssl.SSLContext:
    _, args = asyncpg_tls(make_url(f"{BASE}?{query}"))
    context = args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    return context


def _refusal(query: str) -> str:
    with pytest.raises(SettingsError) as caught:
        asyncpg_tls(make_url(f"{BASE}?{query}"))
    message = str(caught.value)
    assert message.startswith("TENANCY_DATABASE_URL: ")
    assert "s3cret" not in message
    return message


def test_a_url_without_tls_parameters_is_left_as_it_is() -> None:
    """No sslmode and friends: the same URL, no connect arguments."""
    url = make_url(f"{BASE}?prepared_statement_cache_size=0")

    assert (url, {}) == asyncpg_tls(url)


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_modes_without_verification_are_asyncpgs_modes_of_the_same_name(mode: str) -> None:
    """disable, allow and prefer pass through as asyncpg's own modes, off the URL."""
    url, args = asyncpg_tls(make_url(f"{BASE}?sslmode={mode}&prepared_statement_cache_size=0"))

    assert {"ssl": mode} == args
    assert {"prepared_statement_cache_size": "0"} == dict(url.query)


def test_require_encrypts_without_verifying_the_server() -> None:
    """sslmode=require: TLS, no certificate check, no host name check."""
    context = _context("sslmode=require")

    assert (ssl.CERT_NONE, False) == (context.verify_mode, context.check_hostname)


def test_require_with_a_root_certificate_verifies_it_like_libpq(
    certificate: tuple[Path, Path],
) -> None:
    """sslmode=require plus sslrootcert behaves as verify-ca, as in libpq."""
    context = _context(f"sslmode=require&sslrootcert={certificate[0]}")

    assert (ssl.CERT_REQUIRED, False) == (context.verify_mode, context.check_hostname)
    assert 1 == len(context.get_ca_certs())


@pytest.mark.parametrize(("mode", "checks_host"), [("verify-ca", False), ("verify-full", True)])
def test_verify_modes_trust_the_root_certificate_given(
    certificate: tuple[Path, Path], mode: str, checks_host: bool
) -> None:
    """verify-ca checks the chain to sslrootcert; verify-full the host name as well."""
    url, args = asyncpg_tls(make_url(f"{BASE}?sslmode={mode}&sslrootcert={certificate[0]}"))
    context = args["ssl"]

    assert {} == dict(url.query)
    assert (ssl.CERT_REQUIRED, checks_host) == (context.verify_mode, context.check_hostname)
    subjects = [dict(entry[0] for entry in ca["subject"]) for ca in context.get_ca_certs()]
    assert [{"commonName": "tenancy-test-ca"}] == subjects


def test_sslrootcert_system_trusts_the_systems_authorities() -> None:
    """sslrootcert=system verifies against the system's certificate store."""
    context = _context("sslmode=verify-full&sslrootcert=system")

    assert (ssl.CERT_REQUIRED, True) == (context.verify_mode, context.check_hostname)


def test_a_client_certificate_and_key_are_loaded(certificate: tuple[Path, Path]) -> None:
    """sslcert and sslkey become the context's client certificate chain."""
    cert, key = certificate

    context = _context(f"sslmode=require&sslcert={cert}&sslkey={key}")

    assert ssl.CERT_NONE == context.verify_mode


def test_protocol_version_bounds_are_applied() -> None:
    """ssl_min_protocol_version and ssl_max_protocol_version bound the TLS versions."""
    context = _context(
        "sslmode=require&ssl_min_protocol_version=TLSv1.3&ssl_max_protocol_version=TLSv1.3"
    )

    assert (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3) == (
        context.minimum_version,
        context.maximum_version,
    )


def test_verify_full_without_a_root_certificate_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without sslrootcert and without ~/.postgresql/root.crt, verify-full is refused."""
    monkeypatch.setenv("HOME", str(tmp_path))

    message = _refusal("sslmode=verify-full")

    assert "sslrootcert" in message
    assert "root.crt does not exist" in message


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("sslmode=bogus", "sslmode must be one of"),
        ("sslmode=verify-full&sslrootcert=/nonexistent/root.crt", "cannot use sslrootcert"),
        ("sslmode=require&sslcert=/nonexistent/client.crt", "client.crt': no such file"),
        ("sslmode=require&sslkey=/tmp/client.key", "sslkey needs sslcert"),
        ("sslmode=prefer&sslrootcert=/tmp/root.crt", "only used with sslmode=require"),
        ("sslmode=require&ssl_min_protocol_version=SSLv3", "ssl_min_protocol_version must"),
        ("sslmode=require&sslcrl=/tmp/crl.pem", "sslcrl cannot be honoured"),
        ("sslmode=require&ssl=require", "not both"),
        ("sslmode=require&sslmode=disable", "sslmode is given 2 times"),
    ],
)
def test_what_cannot_be_mapped_is_a_settings_error_naming_the_setting(
    query: str, says: str
) -> None:
    """Bad modes, unreadable files, missing pairs, unknown parameters and conflicts are
    refused as SettingsError on TENANCY_DATABASE_URL, without the password."""
    assert says in _refusal(query)


def test_the_postgresql_store_refuses_a_bad_tls_parameter_before_connecting() -> None:
    """open_store on a URL with sslmode=bogus raises SettingsError (exit code 2)."""
    settings = Settings(database_url=f"{BASE}?sslmode=bogus")

    with pytest.raises(SettingsError) as caught:
        open_store(settings, spotify_metadata())

    assert 2 == caught.value.exit_code
