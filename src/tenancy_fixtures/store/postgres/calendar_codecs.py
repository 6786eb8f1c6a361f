"""Exact codecs for ``date``, ``timestamp`` and ``timestamptz`` on every asyncpg connection.

asyncpg writes the ends of Python's calendar — ``date(1, 1, 1)``, ``date(9999, 12, 31)``
and the timestamps ``0001-01-01 00:00:00`` and ``9999-12-31 23:59:59.999999`` (UTC for
``timestamptz``) — as PostgreSQL's ``-infinity`` and ``infinity``, and reads a
``timestamptz`` infinity back naive. A loaded "valid until 9999-12-31" or Go's zero time
(``0001-01-01T00:00:00Z``) was stored as an infinity, unlike SQLite and the ``COPY`` text
path. These codecs send each value as the number PostgreSQL keeps for it, and decode as
asyncpg does (an infinity as the calendar's end it stood for).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

__all__ = ["set_calendar_codecs"]

_EPOCH_DATE_ORDINAL = date(2000, 1, 1).toordinal()
_EPOCH = datetime(2000, 1, 1)
_EPOCH_UTC = datetime(2000, 1, 1, tzinfo=UTC)
_DATE_INFINITY = 0x7FFFFFFF
_DATE_MINUS_INFINITY = -0x80000000
_TIME_INFINITY = 0x7FFFFFFFFFFFFFFF
_TIME_MINUS_INFINITY = -0x8000000000000000


def _micros(delta: timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _encode_date(value: date) -> tuple[int]:
    return (value.toordinal() - _EPOCH_DATE_ORDINAL,)


def _decode_date(value: tuple[int]) -> date:
    days = value[0]
    if days == _DATE_INFINITY:
        return date.max
    if days == _DATE_MINUS_INFINITY:
        return date.min
    return date.fromordinal(days + _EPOCH_DATE_ORDINAL)


def _encode_timestamp(value: date) -> tuple[int]:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return (_micros(value - _EPOCH),)  # an aware value is a TypeError, as in asyncpg


def _decoding_from(epoch: datetime) -> Callable[[tuple[int]], datetime]:
    """A decoder of microseconds since ``epoch``, an infinity as the calendar's end (naive,
    as asyncpg reads it)."""

    def decode(value: tuple[int]) -> datetime:
        micros = value[0]
        if micros == _TIME_INFINITY:
            return datetime.max
        if micros == _TIME_MINUS_INFINITY:
            return datetime.min
        return epoch + timedelta(microseconds=micros)

    return decode


def _local_zone() -> timezone:
    offset = datetime.now(UTC).astimezone().utcoffset()
    return timezone(offset or timedelta(0))


def _encode_timestamptz(value: date) -> tuple[int]:
    if not isinstance(value, datetime):  # asyncpg's reading: midnight where the client is
        value = datetime(value.year, value.month, value.day, tzinfo=_local_zone())
    return (_micros(value.astimezone(UTC) - _EPOCH_UTC),)


_CODECS: dict[str, tuple[Callable[[Any], tuple[int]], Callable[[tuple[int]], Any]]] = {
    "date": (_encode_date, _decode_date),
    "timestamp": (_encode_timestamp, _decoding_from(_EPOCH)),
    "timestamptz": (_encode_timestamptz, _decoding_from(_EPOCH_UTC)),
}


async def set_calendar_codecs(connection: Any) -> None:
    """Give asyncpg ``connection`` the exact codecs (built-in types: no round trip)."""
    for name, (encoder, decoder) in _CODECS.items():
        await connection.set_type_codec(
            name, schema="pg_catalog", encoder=encoder, decoder=decoder, format="tuple"
        )
