"""AnalyticsLoader: listening and product events at volume, then daily aggregates.

Events go through the bulk path of :class:`DataLoader` (``COPY`` on PostgreSQL). The
aggregates ``track_daily_stats`` and ``daily_stats`` are then computed in the
database, in the same transaction, for the days the load touched (see
:mod:`tenancy_fixtures.spotify.daily_stats`): a day is the UTC date of ``played_at``.
Product events also come as Segment-style exports (source format ``events``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tenancy_fixtures.loading.derived import RefreshesDerivedTables
from tenancy_fixtures.loading.sources import RowSink, SourceFormat
from tenancy_fixtures.spotify.daily_stats import refresh_daily_stats

__all__ = ["AnalyticsLoader", "ProductEventsFormat", "refresh_daily_stats"]

_EVENTS = "listening_events"


class AnalyticsLoader(RefreshesDerivedTables):
    """Loads listening and product events through the bulk path, then refreshes what
    derives from them: the daily aggregates of the days the listening events fall on
    (the derivation :func:`tenancy_fixtures.spotify.register` registers)."""

    loader_name = "analytics"
    domain_tables = frozenset({_EVENTS, "product_events"})


_EVENT_KEYS = ("messageId", "event_id")
_USER_KEYS = ("userId", "user_id")
_TIME_KEYS = ("timestamp", "occurred_at", "originalTimestamp")
_CALLS = {"track", "page", "screen"}


def _first(document: Mapping[str, Any], keys: Sequence[str]) -> Any:
    return next((document[k] for k in keys if document.get(k) is not None), None)


class ProductEventsFormat(SourceFormat):
    """``events``: product analytics events, one JSON object a line (or a JSON array).

    Reads Segment-style calls (``type`` track/page/screen, ``messageId``, ``userId``,
    ``event``/``name``, ``timestamp``, ``properties``) and rows already named like the
    ``product_events`` columns (``event_id``, ``user_id``, ``event_type``,
    ``occurred_at``, ``properties``). Calls that are not events (identify, group,
    alias) are passed over. An event without a user is refused, or skipped with the
    option ``{"anonymous": "skip"}``.
    """

    name = "events"
    option_names = frozenset({"anonymous"})
    loader = "analytics"
    tables = frozenset({"product_events"})

    @classmethod
    def sniff(cls, document: Any) -> bool:
        if not isinstance(document, dict):
            return False
        keys = document.keys()
        kind = document.get("type")
        named = (
            "event" in keys or "event_type" in keys or (isinstance(kind, str) and kind in _CALLS)
        )
        return (
            named
            and any(k in keys for k in _EVENT_KEYS)
            and any(k in keys for k in _TIME_KEYS)
            and any(k in keys for k in (*_USER_KEYS, "anonymousId"))
        )

    def record_table(self, document: Any) -> str | None:
        del document
        return "product_events"

    def normalize(self, document: Any, sink: RowSink) -> None:
        if not isinstance(document, dict):
            raise sink.refuse(
                f"expected an event object, found {type(document).__name__}", rule="format:event"
            )
        call = document.get("type")
        if call is not None and call not in _CALLS:
            return
        event_type = document.get("event_type") or document.get("event")
        if call in ("page", "screen") and event_type is None:
            event_type = f"{call}_viewed"
        event_id = _first(document, _EVENT_KEYS)
        occurred_at = _first(document, _TIME_KEYS)
        user_id = _first(document, _USER_KEYS)
        for column, value in (
            ("event_id", event_id),
            ("event_type", event_type),
            ("occurred_at", occurred_at),
        ):
            if not isinstance(value, str) or not value:
                raise sink.refuse(f"{column} is missing", column=column, rule="format:event")
        if user_id is None:
            if self.options.get("anonymous") == "skip":
                return
            raise sink.refuse(
                "event has no userId (anonymous events are not stored; pass the option "
                "anonymous=skip to pass them over)",
                column="user_id",
                rule="format:event",
            )
        properties = document.get("properties")
        if call in ("page", "screen") and document.get("name") is not None:
            properties = {**(properties or {}), "name": document["name"]}
        sink.add(
            "product_events",
            {
                "event_id": event_id,
                "user_id": str(user_id),
                "occurred_at": occurred_at,
                "event_type": event_type,
                "properties": properties,
            },
        )
