"""What the loader reads from a column's server default (literals typed like a value
given, the current time as the load's transaction time, anything else as computed by
the database), and what a row leaving the column out gets."""

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
    MetaData,
    Sequence,
    String,
    Table,
    false,
    func,
    literal,
    text,
    true,
)

from tenancy_fixtures.errors import RecordError
from tenancy_fixtures.loading.fast_plans import fast_rows_for
from tenancy_fixtures.loading.readers import SourceRecord
from tenancy_fixtures.loading.records import RowBuilder
from tenancy_fixtures.loading.server_defaults import (
    NO_SERVER_DEFAULT,
    CurrentTime,
    DatabaseComputed,
    server_value,
)

NOW = datetime(2026, 12, 6, 23, 59, 59, 999_999, tzinfo=UTC)
#: The same instant on a session whose time zone is five hours behind UTC.
LOCAL_NOW = datetime(2026, 12, 6, 18, 59, 59, 999_999)


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (Column("x", String, server_default="free"), "free"),
        (Column("x", String, server_default="it's"), "it's"),
        (Column("x", String, server_default=text("'it''s'")), "it's"),
        (Column("x", String, server_default=text("('x'::character varying)")), "x"),
        (Column("x", String, server_default=text("'{}'::jsonb")), "{}"),
        (Column("x", String, server_default=text(''''free'::"Plan Tier"''')), "free"),
        (Column("x", String, server_default=text("'free'::acme.plan_tier")), "free"),
        (Column("x", String, server_default=text("'a::b'::text")), "a::b"),
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
    assert expected == server_value(column)


@pytest.mark.parametrize(
    ("default", "expected"),
    [
        (func.now(), CurrentTime()),
        (text("CURRENT_TIMESTAMP"), CurrentTime()),
        (text("current_timestamp(3)"), CurrentTime(places=3)),
        (text("LOCALTIMESTAMP(0)"), CurrentTime(places=0)),
        (text("transaction_timestamp()"), CurrentTime()),
        (text("CURRENT_DATE"), CurrentTime(day=True)),
        (text("timezone('utc', now())"), CurrentTime(utc=True)),
        (text("timezone('UTC', CURRENT_TIMESTAMP)"), CurrentTime(utc=True)),
        (text("(now() AT TIME ZONE 'utc')"), CurrentTime(utc=True)),
    ],
)
def test_a_current_time_server_default_is_read_as_such(default: Any, expected: Any) -> None:
    assert expected == server_value(Column("x", DateTime, server_default=default))


def _left_out(column: Column[Any]) -> Any:
    """What a row leaving ``column`` out gets from a builder of the load's times."""
    table = Table("things", MetaData(), Column("key", Integer, primary_key=True), column)
    builder = RowBuilder(table, now=NOW, local_now=LOCAL_NOW)
    return builder.build(SourceRecord({"key": 1}, 1, 1), path="things.jsonl")[1]


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (Column("x", DateTime(timezone=True), server_default=func.now()), NOW),
        (Column("x", DateTime, server_default=func.now()), LOCAL_NOW),
        (Column("x", DateTime, server_default=text("LOCALTIMESTAMP")), LOCAL_NOW),
        (
            Column("x", DateTime(timezone=True), server_default=text("CURRENT_TIMESTAMP(0)")),
            datetime(2026, 12, 7, 0, 0, 0, tzinfo=UTC),
        ),
        (
            Column("x", DateTime, server_default=text("current_timestamp(3)")),
            datetime(2026, 12, 6, 19, 0, 0),
        ),
        (Column("x", Date, server_default=text("CURRENT_DATE")), LOCAL_NOW.date()),
        (Column("x", Date, server_default=func.now()), LOCAL_NOW.date()),
        (
            Column("x", DateTime, server_default=text("timezone('utc', now())")),
            NOW.replace(tzinfo=None),
        ),
        (Column("x", Integer, server_default=text("(-5)")), -5),
        (Column("x", Boolean, server_default=text("1")), True),
    ],
)
def test_a_row_leaving_the_column_out_gets_what_the_database_would_store(
    column: Column[Any], expected: Any
) -> None:
    """The load's transaction time: aware, or the session's wall time for a column
    without a time zone (as PostgreSQL converts ``now()``), rounded to ``(p)`` places."""
    assert expected == _left_out(column)


@pytest.mark.parametrize(
    ("column", "reason"),
    [
        (Column("x", Integer, server_default=text("length('abc')")), "only the database evaluates"),
        (Column("x", DateTime, server_default=text("CURRENT_DATE")), "only the database evaluates"),
        (Column("x", Integer, Sequence("things_x")), "drawn from a sequence"),
        (Column("x", Integer, Identity()), "drawn from a sequence"),
        (Column("x", Integer, server_default=text("'many'")), "does not fit the column"),
    ],
)
def test_a_row_leaving_out_a_column_the_loader_cannot_fill_is_refused_saying_why(
    column: Column[Any], reason: str
) -> None:
    with pytest.raises(RecordError) as refused:
        _left_out(column)
    assert ("x", "default") == (refused.value.column, refused.value.rule)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    "column",
    [
        Column("x", String, server_default=text("gen_random_uuid()")),
        Column("x", Integer, server_default=text("nextval('things_seq')")),
        Column("x", Integer, server_default=text("1 + 1")),
        Column("x", String, server_default=text("E'\\n'")),
        Column("x", String, server_default=text("'a' || 'b'")),
        Column("x", Integer, server_default=text("(1) + (2)")),
    ],
)
def test_any_other_server_default_is_computed_by_the_database(column: Column[Any]) -> None:
    assert isinstance(server_value(column), DatabaseComputed)


@pytest.mark.parametrize(
    "column",
    [
        Column("x", String),
        Column("x", Integer, Computed("1 + 1")),
        Column("x", String, default="free"),
    ],
)
def test_a_column_without_a_declared_server_default_has_none(column: Column[Any]) -> None:
    assert NO_SERVER_DEFAULT is server_value(column)


def test_a_table_with_an_identity_key_keeps_the_compiled_path_which_declines_a_key_left_out() -> (
    None
):
    """Refusing a left-out identity key (rule ``default``) is the exact path's; the
    compiled one still takes blocks that give every key (found: it declined them all,
    halving the parse workers' speed on such tables)."""
    table = Table(
        "things",
        MetaData(),
        Column("id", Integer, Identity(), primary_key=True),
        Column("name", String(10)),
    )
    fast = fast_rows_for(table)
    assert fast is not None
    assert [(1, "a")] == fast.rows(b'{"id": 1, "name": "a"}\n')
    assert fast.rows(b'{"name": "a"}\n') is None
