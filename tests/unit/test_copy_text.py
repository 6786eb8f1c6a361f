"""COPY text encoding of typed rows: one line per row, tab-separated, ``\\N`` for NULL,
text escaped where the format needs it, each type written as PostgreSQL reads it."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Uuid,
)

from tenancy_fixtures.loading.copy_text import row_encoder


def _table(*columns: Column[object]) -> Table:
    return Table("t", MetaData(), *columns)


def test_each_type_is_written_as_postgresql_reads_it_and_null_as_backslash_n() -> None:
    table = _table(
        Column("i", Integer),
        Column("f", Float),
        Column("d", Numeric),
        Column("b", Boolean),
        Column("at", DateTime(timezone=True)),
        Column("day", Date),
        Column("u", Uuid),
        Column("j", JSON),
        Column("s", String(10)),
    )
    encode = row_encoder(table)
    assert encode is not None
    row = (
        -7,
        0.1,
        Decimal("1E+2"),
        False,
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        date(2024, 2, 29),
        uuid.UUID(int=1),
        {"a": [1, None]},
        "x",
    )
    expected = (
        "-7\t0.1\t1E+2\tf\t2026-01-02T03:04:05.000006+00:00\t2024-02-29\t"
        '00000000-0000-0000-0000-000000000001\t{"a":[1,null]}\tx\n'
        "\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n"
    )
    assert expected.encode() == encode([row, (None,) * 9])


def test_text_escapes_backslash_tab_and_line_breaks() -> None:
    encode = row_encoder(_table(Column("s", String(40)), Column("j", JSON)))
    assert encode is not None
    assert b'a\\\\b\\tc\\nd\\re\t"q\\\\""\n' == encode([("a\\b\tc\nd\re", 'q"')])


def test_the_encoder_for_text_without_escapes_still_escapes_a_default_that_needs_it() -> None:
    table = _table(Column("plain", String(10)), Column("note", String(10), default="a\tb"))
    encode = row_encoder(table, escape=False)
    assert encode is not None
    assert b"x\ta\\tb\n" == encode([("x", "a\tb")])


def test_a_table_with_a_type_no_encoder_writes_has_none() -> None:
    assert None is row_encoder(_table(Column("blob", LargeBinary)))
