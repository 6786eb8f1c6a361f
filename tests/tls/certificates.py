"""Throwaway certificate authorities and the certificates they sign, as PEM files."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Certificates", "make_certificates"]

#: Names the server certificate is valid for; 127.0.0.2 (also loopback) is not one.
SERVER_NAMES = ("localhost", "127.0.0.1")
CLIENT_USER = "tf_cert"


@dataclass(frozen=True)
class Certificates:
    """The files of one test session."""

    ca: Path  #: the authority that signed the server and client certificates
    wrong_ca: Path  #: an authority that signed nothing of ours
    server_cert: Path
    server_key: Path
    client_cert: Path  #: CN=tf_cert, for PostgreSQL's cert authentication
    client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _alternative_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _authority(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(common_name, _name(common_name), key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert, key


def _leaf(
    common_name: str,
    authority: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = authority
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(common_name, ca_cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_alternative_name(name) for name in SERVER_NAMES]),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def _write(
    directory: Path,
    stem: str,
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> Path:
    path = directory / f"{stem}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        key_path = directory / f"{stem}.key"
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
    return path


def make_certificates(directory: Path) -> Certificates:
    """A CA, a server certificate for localhost and 127.0.0.1, a client certificate for
    ``tf_cert``, and an unrelated CA, written into ``directory``."""
    authority = _authority("tenancy-fixtures test CA")
    wrong, _ = _authority("tenancy-fixtures wrong CA")
    server = _leaf("localhost", authority, server=True)
    client = _leaf(CLIENT_USER, authority, server=False)
    return Certificates(
        ca=_write(directory, "ca", authority[0]),
        wrong_ca=_write(directory, "wrong_ca", wrong),
        server_cert=_write(directory, "server", *server),
        server_key=directory / "server.key",
        client_cert=_write(directory, "client", *client),
        client_key=directory / "client.key",
    )
