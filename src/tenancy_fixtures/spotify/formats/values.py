"""Typed reads of Spotify source documents, shared by the Spotify source formats.

Source documents are untrusted JSON: :class:`Fields` reads one object's fields as the
types the tenant schema wants and refuses anything else with a
:class:`~tenancy_fixtures.errors.RecordError` that names the source file, the line or
document, and the field's path inside the document (``items[3].track.type``).
Unknown fields are never looked at; a missing or ``null`` optional field reads as
``None``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tenancy_fixtures.errors import RecordError
from tenancy_fixtures.loading.records import parse_timestamp
from tenancy_fixtures.loading.sources import RowSink
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.spotify.spotify_ids import id_of

__all__ = ["Fields", "SkipCounts", "iso_utc", "listener_row", "log"]

log = get_logger("tenancy_fixtures.spotify.catalogue")

#: Longest user id the ``users`` table holds.
_USER_ID_LENGTH = 64
_DISPLAY_NAME_LENGTH = 200


def iso_utc(moment: datetime) -> str:
    """``moment`` as an ISO 8601 text in UTC with its offset (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


class SkipCounts(Counter[str]):
    """What a format read but did not load, by reason (``local``, ``unavailable``...)."""

    def report(self, format_name: str) -> None:
        """Log the counts (once per load, when there is anything to say)."""
        if self:
            log.info("source_documents_skipped", format=format_name, **dict(sorted(self.items())))


class Fields:
    """One JSON object of a source document, read field by field with its path."""

    __slots__ = ("path", "rule", "sink", "value")

    def __init__(self, value: Any, sink: RowSink, *, rule: str, path: str = "") -> None:
        self.sink = sink
        self.rule = rule
        self.path = path
        if type(value) is not dict and not isinstance(value, Mapping):
            raise self.refuse(f"expected a JSON object, found {_kind(value)}", None)
        self.value: Mapping[str, Any] = value

    def column(self, name: str | None) -> str | None:
        """The path of field ``name`` inside the document."""
        if name is None:
            return self.path or None
        return f"{self.path}.{name}" if self.path else name

    def refuse(self, message: str, name: str | None) -> RecordError:
        """An error about field ``name`` of this object (raise it)."""
        return self.sink.refuse(message, column=self.column(name), rule=self.rule)

    def has(self, name: str) -> bool:
        """Whether the field is present and not ``null``."""
        return self.value.get(name) is not None

    def raw(self, name: str) -> Any:
        """The field's value as it is."""
        return self.value.get(name)

    def child(self, name: str, *, required: bool = False) -> Fields | None:
        """The nested object at ``name`` (``None`` when missing or ``null``)."""
        value = self.value.get(name)
        if value is None:
            if required:
                raise self.refuse(f"missing {name!r}", name)
            return None
        return Fields(value, self.sink, rule=self.rule, path=self.column(name) or name)

    def items(self, name: str, *, required: bool = False) -> list[Any]:
        """The array at ``name`` (empty when missing or ``null``)."""
        value = self.value.get(name)
        if value is None:
            if required:
                raise self.refuse(f"missing {name!r}", name)
            return []
        if not isinstance(value, list):
            raise self.refuse(f"expected an array, found {_kind(value)}", name)
        return value

    def element(self, name: str, index: int, value: Any) -> Fields:
        """Element ``index`` of the array at ``name``, as an object."""
        return Fields(value, self.sink, rule=self.rule, path=f"{self.column(name)}[{index}]")

    def text(self, name: str, *, required: bool = False) -> str | None:
        """A string field."""
        value = self.value.get(name)
        if value is None:
            if required:
                raise self.refuse(f"missing {name!r}", name)
            return None
        if not isinstance(value, str):
            raise self.refuse(f"expected a string, found {_kind(value)}", name)
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        """A whole-number field, within ``minimum`` and ``maximum`` when given."""
        value = self.value.get(name)
        if value is None:
            if required:
                raise self.refuse(f"missing {name!r}", name)
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.refuse(f"expected a whole number, found {_kind(value)}", name)
        if minimum is not None and value < minimum:
            raise self.refuse(f"must be at least {minimum}, found {value}", name)
        if maximum is not None and value > maximum:
            raise self.refuse(f"must be at most {maximum}, found {value}", name)
        return value

    def number(self, name: str) -> float | None:
        """A numeric field."""
        value = self.value.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.refuse(f"expected a number, found {_kind(value)}", name)
        return float(value)

    def boolean(self, name: str, *, strings: bool = False) -> bool | None:
        """A true/false field (``"true"``/``"false"`` too when ``strings``)."""
        value = self.value.get(name)
        if value is None or isinstance(value, bool):
            return value
        if strings and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.refuse(f"expected true or false, found {_kind(value)}", name)

    def timestamp(self, name: str, *, required: bool = False) -> str | None:
        """An ISO 8601 timestamp field, as UTC text (without an offset it is UTC)."""
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            return iso_utc(parse_timestamp(value.strip()))
        except ValueError as exc:
            raise self.refuse(str(exc), name) from None
        except OverflowError:
            raise self.refuse(
                f"timestamp {value!r:.40} is outside the calendar in UTC", name
            ) from None

    def spotify_id(self, name: str, kind: str, *, required: bool = False) -> str | None:
        """A Spotify id field given as an id, a URI or a link of ``kind``."""
        value = self.value.get(name)
        if value is None:
            if required:
                raise self.refuse(f"missing {name!r}", name)
            return None
        try:
            return id_of(value, kind)
        except ValueError as exc:
            raise self.refuse(str(exc), name) from None

    def expect_type(self, *expected: str) -> str | None:
        """The object's ``type``; refused when it is given and is not one of ``expected``."""
        kind = self.text("type")
        if kind is not None and kind not in expected:
            wanted = " or ".join(repr(e) for e in expected)
            raise self.refuse(f"expected a Spotify object of type {wanted}, found {kind!r}", "type")
        return kind


def listener_row(options: Mapping[str, Any], sink: RowSink, *, format_name: str) -> str:
    """The user whose plays a history names (``options["user_id"]``), staged as a
    ``users`` row that is only inserted when the tenant lacks it; returns the id.

    Raises a :class:`RecordError` for the current document when the option is
    missing or is not a user id.
    """
    user_id = options.get("user_id")
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > _USER_ID_LENGTH:
        raise sink.refuse(
            f"the {format_name} format needs the option user_id naming the listener "
            f"(a string of 1 to {_USER_ID_LENGTH} characters), found {user_id!r:.40}: "
            "give -o user_id=<id> to load-fixtures, options={'user_id': ...} in code or "
            "in the file's fixtures.json entry",
            column="user_id",
            rule="option:user_id",
        )
    display_name = options.get("display_name")
    if not isinstance(display_name, str) or not display_name.strip():
        display_name = user_id
    sink.merge(
        "users",
        {"user_id": user_id, "display_name": display_name[:_DISPLAY_NAME_LENGTH]},
        authoritative=False,
    )
    return user_id


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r:.40}"
    if isinstance(value, list):
        return "an array"
    return "an object"
