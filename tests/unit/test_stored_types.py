"""A declared type and the type read back name one stored type, or two."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import (
    CHAR,
    CLOB,
    DOUBLE_PRECISION,
    NCHAR,
    NUMERIC,
    REAL,
    TEXT,
    UUID,
    BigInteger,
    Float,
    Integer,
    String,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeEngine

from tenancy_fixtures.store.stored_types import same_stored_type

POSTGRESQL = postgresql.dialect()  # type: ignore[no-untyped-call]
SQLITE = sqlite.dialect()


@pytest.mark.parametrize(
    ("dialect", "declared", "found"),
    [
        pytest.param(POSTGRESQL, Float(24), REAL(), id="postgresql-float-24-is-real"),
        pytest.param(POSTGRESQL, Float(1), REAL(), id="postgresql-float-1-is-real"),
        pytest.param(POSTGRESQL, Float(25), DOUBLE_PRECISION(), id="postgresql-float-25-is-double"),
        pytest.param(POSTGRESQL, NCHAR(3), CHAR(3), id="postgresql-nchar-is-char"),
        pytest.param(SQLITE, DOUBLE_PRECISION(), REAL(), id="sqlite-double-precision-is-real"),
        pytest.param(SQLITE, CLOB(), TEXT(), id="sqlite-clob-is-text"),
        pytest.param(SQLITE, UUID(), NUMERIC(), id="sqlite-uuid-is-numeric"),
    ],
)
def test_a_type_the_database_keeps_under_another_name_is_the_same(
    dialect: Any, declared: TypeEngine[Any], found: TypeEngine[Any]
) -> None:
    assert same_stored_type(dialect, declared, found)


@pytest.mark.parametrize(
    ("dialect", "declared", "found"),
    [
        pytest.param(POSTGRESQL, Float(24), DOUBLE_PRECISION(), id="postgresql-real-widened"),
        pytest.param(POSTGRESQL, Float(53), REAL(), id="postgresql-double-narrowed"),
        pytest.param(POSTGRESQL, String(5), String(6), id="postgresql-longer-varchar"),
        pytest.param(POSTGRESQL, Integer(), BigInteger(), id="postgresql-integer-widened"),
        pytest.param(SQLITE, String(5), String(6), id="sqlite-longer-varchar"),
        pytest.param(SQLITE, Integer(), REAL(), id="sqlite-integer-to-real"),
    ],
)
def test_a_type_changed_in_the_database_is_not_the_same(
    dialect: Any, declared: TypeEngine[Any], found: TypeEngine[Any]
) -> None:
    assert not same_stored_type(dialect, declared, found)
