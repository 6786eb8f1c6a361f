"""TLS options of the config cache's Redis client, from ``TENANCY_REDIS_SSL_*`` and the URL.

A ``rediss://`` URL makes redis-py speak TLS and verify the server's certificate (against
the system's authorities unless told otherwise). The settings ``TENANCY_REDIS_SSL_CA_CERTS``,
``_SSL_CERTFILE`` and ``_SSL_KEYFILE`` say the same as redis-py's URL parameters
``ssl_ca_certs``, ``ssl_certfile`` and ``ssl_keyfile``; a value given both ways must be
the same. The host name is checked too (``ssl_check_hostname=false`` in the URL turns
that off, as redis-py lets it).

The files are read here, when the cache is opened: redis-py would only read them at the
first connection, and the config cache treats a failing connection as Redis being down
(it answers from the database), so a mistyped path would go unnoticed. A file that cannot
be used is a :class:`SettingsError` naming where it was given.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

from tenancy_fixtures.errors import SettingsError
from tenancy_fixtures.settings import Settings

__all__ = ["redis_tls_options", "without_tls_files"]

_URL = "TENANCY_REDIS_URL"
_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


def redis_tls_options(settings: Settings) -> dict[str, str | bool]:
    """Keyword arguments for ``Redis.from_url(settings.redis_url, ...)`` (``{}`` unless the
    URL is ``rediss://``)."""
    url = settings.redis_url
    if url is None or not url.lower().startswith("rediss://"):
        return {}
    query = parse_qs(urlsplit(url).query)
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    for option in _OPTIONS:
        in_url = query[option][0] if option in query else None  # redis-py reads the first
        setting = getattr(settings, f"redis_{option}")
        name = f"TENANCY_REDIS_{option.upper()}"
        if setting is not None and in_url is not None and in_url != str(setting):
            raise SettingsError(
                f"{name} is {str(setting)!r} but {_URL} says {option}={in_url!r}; "
                "give it in one place"
            )
        if setting is not None:
            values[option], origins[option] = str(setting), name
        elif in_url is not None:
            values[option], origins[option] = in_url, _URL
    _check_files(values, origins)
    # The paths as checked: redis-py opens them as given, so ``~`` would not be found.
    expanded = {option: str(Path(value).expanduser()) for option, value in values.items()}
    return {**expanded, "ssl_check_hostname": True}


def without_tls_files(url: str) -> str:
    """``url`` without the file parameters :func:`redis_tls_options` returns (redis-py
    lets the URL's win over its keyword arguments, and would open ``~/ca.pem`` as is)."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _OPTIONS]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def _check_files(values: dict[str, str], origins: dict[str, str]) -> None:
    """Load the files as redis-py will, so that a bad one is refused now."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca = values.get("ssl_ca_certs")
    if ca is not None:
        try:
            context.load_verify_locations(cafile=Path(ca).expanduser())
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(
                f"{origins['ssl_ca_certs']}: cannot use ssl_ca_certs {ca!r}: {exc}"
            ) from None
    cert, key = values.get("ssl_certfile"), values.get("ssl_keyfile")
    if key is not None and cert is None:
        raise SettingsError(f"{origins['ssl_keyfile']}: ssl_keyfile needs ssl_certfile")
    if cert is not None:
        try:
            context.load_cert_chain(
                Path(cert).expanduser(), Path(key).expanduser() if key else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(
                f"{origins['ssl_certfile']}: cannot use ssl_certfile {cert!r} / "
                f"ssl_keyfile {key!r}: {exc}"
            ) from None
