"""Array columns: each element typed by its type, rectangular nesting, and the schemas
the manager refuses at start because a part of the engine works on whole values."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import (
    ARRAY,
    JSON,
    Column,
    Enum,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from tenancy_fixtures.errors import SettingsError
from tenancy_fixtures.loading.records import check_loadable, column_value


@pytest.mark.parametrize(
    ("kind", "given", "stored"),
    [
        (ARRAY(String(3)), ["a", None, "b"], ["a", None, "b"]),
        (ARRAY(Integer), "[1, 2]", [1, 2]),
        (ARRAY(Integer), [], []),
        (ARRAY(Integer, dimensions=2), [[1, 2], [3, 4]], [[1, 2], [3, 4]]),
        (ARRAY(Float), [1.5, None], [1.5, None]),
        (ARRAY(Integer, dimensions=2), [], []),
    ],
)
def test_an_array_is_a_list_of_values_each_typed_by_the_element_type(
    kind: Any, given: Any, stored: Any
) -> None:
    assert stored == column_value(Column("x", kind), given)


@pytest.mark.parametrize(
    ("kind", "given", "refusal"),
    [
        (ARRAY(String(3)), ["abcd"], "longer than 3"),
        (ARRAY(Integer), 5, "expected an array"),
        (ARRAY(Integer), "{1,2}", "a JSON list"),
        (ARRAY(Integer, dimensions=2), [[1, 2], [3]], "rectangular"),
        (ARRAY(Integer, dimensions=2), [[]], "rectangular"),
        (ARRAY(Integer, dimensions=2), [[1], None], "rectangular"),
        (ARRAY(Integer, dimensions=3), [[[1], [2]], [[1, 2], [3, 4]]], "rectangular"),
    ],
)
def test_an_array_the_database_would_refuse_or_store_otherwise_is_refused(
    kind: Any, given: Any, refusal: str
) -> None:
    """Ragged or empty inner arrays: PostgreSQL refuses the first (the whole load, with
    no line) and keeps ``[[]]`` as ``{}`` (a checksum mismatch after a clean load)."""
    with pytest.raises(ValueError, match=refusal):
        column_value(Column("x", kind), given)


def _schema(*columns: Any, key: Any = None) -> MetaData:
    metadata = MetaData()
    Table(
        "things",
        metadata,
        key if key is not None else Column("thing_id", String(10), primary_key=True),
        *columns,
    )
    return metadata


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        (_schema(Column("c", ARRAY(Enum("a", "b", name="ab")))), "arrays of"),
        (_schema(Column("c", ARRAY(JSONB))), "arrays of"),
        (_schema(Column("c", ARRAY(JSON))), "arrays of"),
        (_schema(key=Column("c", ARRAY(Integer), primary_key=True)), "key"),
        (_schema(Column("c", ARRAY(Text), unique=True)), "key"),
        (_schema(Column("c", ARRAY(Text)), UniqueConstraint("c")), "key"),
        (_schema(Column("c", ARRAY(Text), info={"personal": True})), "'personal'"),
        (_schema(Column("c", ARRAY(Text), info={"subject": "reference"})), "'subject'"),
        (_schema(Column("c", JSON().with_variant(ARRAY(Text), "postgresql"))), "variant"),
    ],
)
def test_a_schema_with_an_array_the_engine_cannot_carry_is_refused_at_start(
    metadata: MetaData, reason: str
) -> None:
    """Before, these created tenants and then failed: a raw driver error, erasure with
    ``operator does not exist``, a pseudonymised export that did not reload."""
    with pytest.raises(SettingsError, match=f"things.c: .*{reason}"):
        check_loadable(metadata)
