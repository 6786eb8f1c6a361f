"""The values of asyncpg's connection parameters given in the database URL.

A URL's query is text, and SQLAlchemy hands most of it to ``asyncpg.connect`` as it is:
``?timeout=10`` then failed at the first connection with a ``TypeError`` (asyncpg adds
it to a float), ``?command_timeout=abc`` with a ``ValueError`` naming no setting. Here
each value is checked and turned into what asyncpg takes, before any connection, and a
bad one is a :class:`SettingsError` naming the parameter and its value (the URL itself,
which may hold a password, is not printed).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL

from tenancy_fixtures.errors import SettingsError

__all__ = ["asyncpg_parameters"]

#: Seconds, greater than 0.
_SECONDS = ("timeout", "command_timeout")
#: Counts and sizes, 0 or more.
_COUNTS = (
    "statement_cache_size",
    "max_cached_statement_lifetime",
    "max_cacheable_statement_size",
    "prepared_statement_cache_size",
)
_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True}
_BOOLEANS |= {"false": False, "0": False, "no": False, "off": False}
_SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
#: Parameters asyncpg (or SQLAlchemy's dialect) takes as Python objects, not text.
_OBJECTS = (
    "dsn",
    "loop",
    "connection_class",
    "record_class",
    "server_settings",
    "prepared_statement_name_func",
)


def _refuse(name: str, value: str, wanted: str) -> SettingsError:
    return SettingsError(f"TENANCY_DATABASE_URL: {name}={value!r}: {wanted}")


def _number(name: str, value: str) -> float | int:
    if name in _SECONDS:
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not seconds > 0 or seconds == float("inf"):
            raise _refuse(name, value, "give a number of seconds greater than 0")
        return seconds
    if not value.isascii() or not value.isdigit():
        raise _refuse(name, value, "give a whole number, 0 or more")
    return int(value)


def _converted(name: str, value: str) -> Any:
    if name in _OBJECTS:
        raise _refuse(name, value, "asyncpg takes a Python object here, not a URL value")
    if name in _SECONDS or name in _COUNTS:
        return _number(name, value)
    if name == "direct_tls":
        if value.lower() not in _BOOLEANS:
            raise _refuse(name, value, "give true or false")
        return _BOOLEANS[value.lower()]
    if name == "target_session_attrs" and value not in _SESSION_ATTRS:
        raise _refuse(name, value, f"give one of {', '.join(_SESSION_ATTRS)}")
    return value


def asyncpg_parameters(url: URL) -> tuple[URL, dict[str, Any]]:
    """``url`` without the parameters whose values are not text to asyncpg, and those
    parameters as ``connect_args`` of the types asyncpg takes; a value asyncpg would
    refuse (or misread: ``direct_tls=false`` is a true string) raises
    :class:`SettingsError` naming the parameter and the value."""
    converted: dict[str, Any] = {}
    for name, given in url.query.items():
        if isinstance(given, tuple):
            raise SettingsError(f"TENANCY_DATABASE_URL: {name} is given {len(given)} times")
        value = _converted(name, given)
        if value is not given:
            converted[name] = value
    return url.difference_update_query(list(converted)), converted
