"""libpq's TLS query parameters (``?sslmode=verify-full&sslrootcert=...``) for asyncpg.

asyncpg takes TLS as one ``ssl`` argument, not as libpq's query parameters, which
SQLAlchemy would hand it as unknown keywords. :func:`asyncpg_tls` takes them off the URL
and builds that argument the way libpq reads them:

- ``disable``: no TLS; ``allow`` / ``prefer``: asyncpg's own modes of those names (TLS
  if the server offers it, unverified);
- ``require``: TLS without verifying the server, unless ``sslrootcert`` is given, when it
  is ``verify-ca`` (as in libpq);
- ``verify-ca``: the server's certificate must chain to ``sslrootcert``; ``verify-full``:
  and name the host. ``sslrootcert`` defaults to ``~/.postgresql/root.crt``;
  ``sslrootcert=system`` trusts the system's certificate authorities;
- ``sslcert`` / ``sslkey`` / ``sslpassword``: a client certificate (with ``require`` or
  stricter); ``ssl_min_protocol_version`` / ``ssl_max_protocol_version``: ``TLSv1.2``...

Anything else of libpq's TLS parameters is refused, as is a malformed value or a file
that cannot be read: a :class:`SettingsError` naming ``TENANCY_DATABASE_URL``.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from tenancy_fixtures.errors import SettingsError

__all__ = ["asyncpg_tls"]

_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_HANDLED = {
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
}
#: libpq's other TLS parameters, which asyncpg has no way to honour.
_REFUSED = {
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "sslcompression",
    "sslcertmode",
    "sslnegotiation",
    "requiressl",
    "gssencmode",
}
_DEFAULT_ROOT = Path("~/.postgresql/root.crt")


def _refuse(message: str) -> SettingsError:
    return SettingsError(f"TENANCY_DATABASE_URL: {message}")


def _one(url: URL, name: str) -> str | None:
    value = url.query.get(name)
    if isinstance(value, tuple):
        raise _refuse(f"{name} is given {len(value)} times")
    return value


def asyncpg_tls(url: URL) -> tuple[URL, dict[str, Any]]:
    """``url`` without libpq's TLS parameters, and the ``connect_args`` that say the same
    to asyncpg (``{}`` when the URL says nothing about TLS)."""
    refused = sorted(_REFUSED & set(url.query))
    if refused:
        raise _refuse(
            f"{', '.join(refused)} cannot be honoured with asyncpg; supported TLS "
            f"parameters: {', '.join(sorted(_HANDLED))}"
        )
    given = {name: _one(url, name) for name in _HANDLED if name in url.query}
    if not given:
        return url, {}
    if "ssl" in url.query:
        raise _refuse("give either asyncpg's ssl= or libpq's sslmode= parameters, not both")
    stripped = url.difference_update_query(list(given))
    mode = given.get("sslmode") or "prefer"  # libpq's default
    if mode not in _MODES:
        raise _refuse(f"sslmode must be one of {', '.join(_MODES)}, not {mode!r}")
    files = [n for n in ("sslrootcert", "sslcert", "sslkey", "sslpassword") if n in given]
    if mode in ("disable", "allow", "prefer"):
        if files:
            raise _refuse(
                f"{', '.join(files)}: only used with sslmode=require, verify-ca or verify-full "
                f"(sslmode is {mode})"
            )
        return stripped, {"ssl": mode}
    if mode == "require" and given.get("sslrootcert"):
        mode = "verify-ca"
    return stripped, {"ssl": _context(mode, given)}


def _context(mode: str, given: dict[str, str | None]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if mode == "require":
        # libpq's require: encrypted, the server unverified.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = mode == "verify-full"
        context.verify_mode = ssl.CERT_REQUIRED
        _trust(context, mode, given.get("sslrootcert"))
    cert, key = given.get("sslcert"), given.get("sslkey")
    if key and not cert:
        raise _refuse("sslkey needs sslcert")
    if cert:
        try:
            context.load_cert_chain(
                Path(cert).expanduser(),
                Path(key).expanduser() if key else None,
                password=given.get("sslpassword"),
            )
        except (OSError, ssl.SSLError) as exc:
            raise _refuse(f"cannot use sslcert {cert!r} / sslkey {key!r}: {exc}") from None
    for name, attribute in (
        ("ssl_min_protocol_version", "minimum_version"),
        ("ssl_max_protocol_version", "maximum_version"),
    ):
        version = given.get(name)
        if version is None:
            continue
        if version not in _VERSIONS:
            raise _refuse(f"{name} must be one of {', '.join(_VERSIONS)}, not {version!r}")
        setattr(context, attribute, _VERSIONS[version])
    return context


def _trust(context: ssl.SSLContext, mode: str, root: str | None) -> None:
    if root == "system":
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        return
    path = Path(root).expanduser() if root else _DEFAULT_ROOT.expanduser()
    if root is None and not path.exists():
        raise _refuse(
            f"sslmode={mode} needs sslrootcert=PATH (or sslrootcert=system): "
            f"{_DEFAULT_ROOT} does not exist"
        )
    try:
        context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise _refuse(f"cannot use sslrootcert {str(path)!r}: {exc}") from None
