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

The settings ``TENANCY_PG_SSLMODE``, ``_SSLROOTCERT``, ``_SSLCERT`` and ``_SSLKEY`` say
the same as the URL parameters of those names and are merged with them; a parameter given
both ways with two different values is refused rather than one silently winning.

Anything else of libpq's TLS parameters is refused, as is a malformed value or a file
that cannot be read: a :class:`SettingsError` naming where the value came from
(``TENANCY_PG_SSLROOTCERT``, or ``TENANCY_DATABASE_URL``).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from tenancy_fixtures.errors import SettingsError

__all__ = ["asyncpg_tls", "refuse_unknown_parameters", "tls_failure"]

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
_URL = "TENANCY_DATABASE_URL"
#: The settings that may give a parameter instead of the URL.
_SETTINGS = {
    name: f"TENANCY_PG_{name.upper()}" for name in ("sslmode", "sslrootcert", "sslcert", "sslkey")
}


class _Given:
    """The TLS parameters in force, and where each came from (for error messages)."""

    def __init__(self, url: URL, configured: Mapping[str, str]) -> None:
        self.values: dict[str, str | None] = {n: _one(url, n) for n in _HANDLED if n in url.query}
        self.origins = dict.fromkeys(self.values, _URL)
        for name, value in configured.items():
            setting = _SETTINGS[name]
            if name in self.values and self.values[name] != value:
                raise SettingsError(
                    f"{setting} is {value!r} but {_URL} says {name}="
                    f"{self.values[name]!r}; give it in one place"
                )
            self.values[name] = value
            self.origins[name] = setting

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def refuse(self, name: str, message: str) -> SettingsError:
        return SettingsError(f"{self.origins.get(name, _URL)}: {message}")


def _refuse(message: str) -> SettingsError:
    return SettingsError(f"{_URL}: {message}")


def _one(url: URL, name: str) -> str | None:
    value = url.query.get(name)
    if isinstance(value, tuple):
        raise _refuse(f"{name} is given {len(value)} times")
    return value


def asyncpg_tls(
    url: URL, configured: Mapping[str, str] | None = None
) -> tuple[URL, dict[str, Any]]:
    """``url`` without libpq's TLS parameters, and the ``connect_args`` that say the same
    to asyncpg (``{}`` when neither the URL nor ``configured`` says anything about TLS).

    ``configured``: the ``TENANCY_PG_SSL*`` settings by libpq name (``Settings.pg_tls``).
    """
    refused = sorted(_REFUSED & set(url.query))
    if refused:
        raise _refuse(
            f"{', '.join(refused)} cannot be honoured with asyncpg; supported TLS "
            f"parameters: {', '.join(sorted(_HANDLED))}"
        )
    given = _Given(url, configured or {})
    if not given.values:
        return url, {}
    if "ssl" in url.query:
        raise given.refuse(
            "sslmode", "give either asyncpg's ssl= or libpq's sslmode= parameters, not both"
        )
    stripped = url.difference_update_query([n for n in given.values if n in url.query])
    mode = given.get("sslmode") or "prefer"  # libpq's default
    if mode not in _MODES:
        raise given.refuse("sslmode", f"sslmode must be one of {', '.join(_MODES)}, not {mode!r}")
    files = [n for n in ("sslrootcert", "sslcert", "sslkey", "sslpassword") if n in given.values]
    if mode in ("disable", "allow", "prefer"):
        if files:
            raise given.refuse(
                files[0],
                f"{', '.join(files)}: only used with sslmode=require, verify-ca or verify-full "
                f"(sslmode is {mode})",
            )
        return stripped, {"ssl": mode}
    if mode == "require" and given.get("sslrootcert"):
        mode = "verify-ca"
    return stripped, {"ssl": _context(mode, given)}


def _context(mode: str, given: _Given) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if mode == "require":
        # libpq's require: encrypted, the server unverified.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = mode == "verify-full"
        context.verify_mode = ssl.CERT_REQUIRED
        _trust(context, mode, given)
    cert, key = given.get("sslcert"), given.get("sslkey")
    if key and not cert:
        raise given.refuse("sslkey", "sslkey needs sslcert")
    for name in ("sslcert", "sslkey"):
        value = given.get(name)
        if value and not Path(value).expanduser().is_file():
            raise given.refuse(name, f"{name} {value!r}: no such file")
    if cert:
        try:
            context.load_cert_chain(
                Path(cert).expanduser(),
                Path(key).expanduser() if key else None,
                password=given.get("sslpassword"),
            )
        except (OSError, ssl.SSLError) as exc:
            raise given.refuse(
                "sslcert", f"cannot use sslcert {cert!r} / sslkey {key!r}: {exc}"
            ) from None
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


def _trust(context: ssl.SSLContext, mode: str, given: _Given) -> None:
    root = given.get("sslrootcert")
    if root == "system":
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        return
    path = Path(root).expanduser() if root else _DEFAULT_ROOT.expanduser()
    if root is None and not path.exists():
        raise given.refuse(
            "sslmode",
            f"sslmode={mode} needs sslrootcert=PATH (or sslrootcert=system): "
            f"{_DEFAULT_ROOT} does not exist",
        )
    try:
        context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise given.refuse("sslrootcert", f"cannot use sslrootcert {str(path)!r}: {exc}") from None


#: URL parameters SQLAlchemy's asyncpg dialect takes for itself.
_DIALECT = {"prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback"}


def refuse_unknown_parameters(url: URL) -> None:
    """The URL's query (its TLS parameters taken off) names only what asyncpg's
    ``connect`` (or SQLAlchemy's dialect) takes: a misspelt one is a
    :class:`SettingsError` now, not a ``TypeError`` at the first connection."""
    import inspect

    import asyncpg

    known = set(inspect.signature(asyncpg.connect).parameters) | _DIALECT
    unknown = sorted(set(url.query) - known)
    if unknown:
        raise _refuse(
            f"{', '.join(unknown)}: not a parameter asyncpg takes (TLS: "
            f"{', '.join(sorted(_HANDLED))}; connection: timeout, command_timeout, "
            "statement_cache_size, server_settings...)"
        )


def tls_failure(exc: BaseException) -> str | None:
    """What went wrong with TLS, if that is why ``exc`` (or what it wraps) was raised."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return (
                f"the server's certificate was refused ({current.verify_message}); it must "
                "chain to sslrootcert and, with sslmode=verify-full, name the host"
            )
        if isinstance(current, ssl.SSLError):
            return str(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return None
