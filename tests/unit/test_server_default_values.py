"""What the loader reads from a column's server default: literals typed later, the
current time as the run's, and anything else as computed by the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Computed,
    Date,
    DateTime,
    Identity,
    Integer,
    String,
    false,
    func,
    literal,
    text,
    true,
)

from tenancy_fixtures.loading.server_defaults import (
    NO_SERVER_DEFAULT,
    DatabaseComputed,
    server_value,
)

NOW = datetime(2026, 12, 6, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (Column("x", String, server_default="free"), "free"),
        (Column("x", String, server_default="it's"), "it's"),
        (Column("x", String, server_default=text("'it''s'")), "it's"),
        (Column("x", String, server_default=text("('x'::character varying)")), "x"),
        (Column("x", String, server_default=text("'{}'::jsonb")), "{}"),
        (Column("x", Integer, server_default=text("0")), "0"),
        (Column("x", Integer, server_default=text("(-5)")), "-5"),
        (Column("x", Integer, server_default=text("1.5e3")), "1.5e3"),
        (Column("x", Integer, server_default=literal(7)), "7"),
        (Column("x", Boolean, server_default=false()), "false"),
        (Column("x", Boolean, server_default=true()), "true"),
        (Column("x", Boolean, server_default=text("TRUE")), "true"),
        (Column("x", String, server_default=text("NULL")), None),
    ],
)
def test_a_literal_server_default_is_read_as_its_text(column: Column[Any], expected: Any) -> None:
    assert expected == server_value(column, NOW)


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (Column("x", DateTime(timezone=True), server_default=func.now()), NOW.isoformat()),
        (
            Column("x", DateTime(timezone=True), server_default=text("CURRENT_TIMESTAMP")),
            NOW.isoformat(),
        ),
        (
            Column("x", DateTime, server_default=text("current_timestamp(3)")),
            NOW.replace(tzinfo=None).isoformat(),
        ),
        (
            Column("x", DateTime, server_default=text("LOCALTIMESTAMP")),
            "2026-12-06T23:59:59.999999",
        ),
        (Column("x", Date, server_default=text("CURRENT_DATE")), "2026-12-06"),
        (Column("x", Date, server_default=func.now()), "2026-12-06"),
    ],
)
def test_a_current_time_server_default_is_the_runs_time_in_utc(
    column: Column[Any], expected: str
) -> None:
    assert expected == server_value(column, NOW)


@pytest.mark.parametrize(
    "column",
    [
        Column("x", String, server_default=text("gen_random_uuid()")),
        Column("x", Integer, server_default=text("nextval('things_seq')")),
        Column("x", Integer, server_default=text("1 + 1")),
        Column("x", String, server_default=text("E'\\n'")),
        Column("x", String, server_default=text("'a' || 'b'")),
        Column("x", String, server_default=func.now()),
        Column("x", Integer, server_default=text("(1) + (2)")),
    ],
)
def test_any_other_server_default_is_computed_by_the_database(column: Column[Any]) -> None:
    assert isinstance(server_value(column, NOW), DatabaseComputed)


@pytest.mark.parametrize(
    "column",
    [
        Column("x", String),
        Column("x", Integer, Identity()),
        Column("x", Integer, Computed("1 + 1")),
        Column("x", String, default="free"),
    ],
)
def test_a_column_without_a_declared_server_default_has_none(column: Column[Any]) -> None:
    assert NO_SERVER_DEFAULT is server_value(column, NOW)
