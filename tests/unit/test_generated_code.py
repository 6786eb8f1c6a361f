"""Code generated from a schema is compiled once per process and shared: what differs
between loads (limits, rules) stays each builder's own."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table

from tenancy_fixtures.errors import RecordError
from tenancy_fixtures.loading.readers import SourceRecord
from tenancy_fixtures.loading.records import RowBuilder


def _table() -> Table:
    return Table(
        "notes",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("body", String, nullable=False),
    )


def test_row_builders_of_one_table_share_the_compiled_code() -> None:
    first, second = RowBuilder(_table()), RowBuilder(_table())

    assert first._build.__code__ is second._build.__code__


def test_builders_sharing_code_keep_their_own_text_limit() -> None:
    short, long = RowBuilder(_table(), max_text_length=3), RowBuilder(_table(), max_text_length=10)
    record = SourceRecord({"id": 1, "body": "abcdef"}, 1, 1)

    assert long.build(record, path="notes.jsonl") == (1, "abcdef")
    with pytest.raises(RecordError, match="body"):
        short.build(record, path="notes.jsonl")
