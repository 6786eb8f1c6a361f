"""The compiled path for JSON Lines blocks says yes only to what the exact path accepts,
with the same values (timestamps as their UTC text); anything else it declines, and the
exact path names the line, column and rule."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Enum,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.dialects import postgresql

from tenancy_fixtures.errors import FixtureError
from tenancy_fixtures.loading.checksums import ContentChecksum
from tenancy_fixtures.loading.fast_plans import fast_rows_for
from tenancy_fixtures.loading.fixture_sets import FixtureFile
from tenancy_fixtures.loading.readers import json_lines_records
from tenancy_fixtures.loading.records import RowBuilder
from tenancy_fixtures.loading.table_checksums import table_checksum
from tenancy_fixtures.spotify import builtin_metadata
from tenancy_fixtures.spotify.generator import generate_fixture_set
from tenancy_fixtures.store.base import TENANT_SCHEMA


def _table() -> Table:
    return Table(
        "plays",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("country", String(2), info={"format": "country"}),
        Column("ms", Integer, nullable=False),
        Column("small", SmallInteger),
        Column("score", Float),
        Column("live", Boolean),
        Column("at", DateTime(timezone=True)),
        Column("kind", Enum("song", "podcast", native_enum=False)),
        Column("label", String(5)),
        Column("plays", Integer, nullable=False, default=1),
        Column("note", String(3), default="n/a"),
        CheckConstraint("ms >= 0", name="ms"),
        CheckConstraint("score BETWEEN -1 AND 1", name="score"),
    )


TABLE = _table()
FAST = fast_rows_for(TABLE)
BUILDER = RowBuilder(TABLE)
FILE = FixtureFile(
    table="plays",
    path=Path("plays.jsonl"),
    relative="plays.jsonl",
    format="jsonl",
    compressed=False,
)


def _exact(block: bytes) -> list[tuple[Any, ...]] | None:
    """The exact path's rows (timestamps as text), or ``None`` if it refuses the block."""
    records, failure = json_lines_records(FILE, block, 0)
    if failure is not None:
        return None
    try:
        rows = [BUILDER.build(record, path=FILE.relative) for record in records]
    except FixtureError:
        return None
    return [tuple(v.isoformat() if isinstance(v, datetime) else v for v in r) for r in rows]


GOOD = {
    "id": 1,
    "country": "SE",
    "ms": 5,
    "small": 7,
    "score": 0.5,
    "live": True,
    "at": "2026-01-01T12:00:00+00:00",
    "kind": "song",
    "label": "ab",
}


def _block(*records: dict[str, Any] | str) -> bytes:
    lines = [r if isinstance(r, str) else json.dumps(r, separators=(",", ":")) for r in records]
    return "".join(line + "\n" for line in lines).encode()


def test_a_clean_block_gives_the_rows_the_exact_path_gives() -> None:
    assert FAST is not None
    block = _block(GOOD, {**GOOD, "id": 2, "country": None, "label": None}, {"id": 3, "ms": 0})
    assert _exact(block) == FAST.rows(block)


@pytest.mark.parametrize(
    "line",
    [
        '{"id":1,"ms":5,"ms":6}',  # a repeated key
        '{"id" :1,"ms":5,"label":"a","label":"b"}',  # a repeated key hidden by a spaced one
        '{"id":1,"ms":5,"extra":1}',  # an unknown column
        '{"id":1}',  # a required column missing
        '{"id":1,"ms":null}',  # a required column null
        '{"id":1,"ms":"5"}',  # an integer as text: the exact path converts it
        '{"id":1,"ms":5.0}',  # an integral float: converted by the exact path
        '{"id":1,"ms":-1}',  # CHECK ms >= 0
        '{"id":1,"ms":5,"small":40000}',  # beyond SMALLINT
        '{"id":1,"ms":5,"score":2}',  # CHECK score BETWEEN -1 AND 1
        '{"id":1,"ms":5,"live":"yes"}',  # a boolean as text: converted
        '{"id":1,"ms":5,"at":"2026-01-01T12:00:00Z"}',  # UTC, but not as isoformat writes it
        '{"id":1,"ms":5,"at":"2026-01-01T14:00:00+02:00"}',  # another zone
        '{"id":1,"ms":5,"at":"2026-01-01T12:00:00.000000+00:00"}',  # zero microseconds
        '{"id":1,"ms":5,"at":"2026-02-30T12:00:00+00:00"}',  # no such day
        '{"id":1,"ms":5,"country":"XX"}',  # format: country
        '{"id":1,"ms":5,"kind":"video"}',  # not one of the enum's values
        '{"id":1,"ms":5,"label":"toolong"}',  # longer than String(5)
        '{"id":1,"ms":5,"label":"a\\u0000"}',  # NUL
        '{"id":1,"ms":5,"label":1}',  # a number for text
        '{"id":1,"ms":5} trailing',  # malformed
    ],
)
def test_the_compiled_path_declines_what_it_is_not_sure_of(line: str) -> None:
    assert FAST is not None
    assert None is FAST.rows(_block(GOOD, line))


def test_a_table_with_a_column_it_cannot_check_has_no_compiled_path() -> None:
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("doc", JSON))
    assert None is fast_rows_for(table)
    computed = Table(
        "d",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("n", Integer, default=lambda: 1),
    )
    assert None is fast_rows_for(computed)


def test_a_default_is_filled_in_as_the_exact_path_fills_it_in() -> None:
    """``default=0`` on a float column is 0.0 on both paths (a checksum hashes 0 and
    0.0 apart, and the workers take the fast path only for big files)."""
    table = Table(
        "s",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("score", Float, nullable=False, default=0),
    )
    fast = fast_rows_for(table)
    block = _block({"id": 1})
    records, _ = json_lines_records(FILE, block, 0)

    assert fast is not None
    assert [(1, 0.0)] == fast.rows(block) == [RowBuilder(table).build(records[0], path="s")]
    assert [float] == [type(row[1]) for row in fast.rows(block) or []]


@pytest.mark.parametrize("precision", [0, 3])
def test_a_timestamp_column_with_fewer_places_has_no_compiled_path(precision: int) -> None:
    """Its values are rounded on the way: only the exact path does it."""
    table = Table(
        "t",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("at", postgresql.TIMESTAMP(timezone=True, precision=precision)),
    )
    assert None is fast_rows_for(table)


#: Per column: values both paths accept, and values the exact path refuses or converts.
_VALUES: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "id": (st.integers(-(2**31), 2**31 - 1), st.sampled_from([2**31, "7", 1.0, None, True])),
    "country": (st.sampled_from(["SE", "DE", None]), st.sampled_from(["XX", "se", "", "DEU", 3])),
    "ms": (st.integers(0, 2**31 - 1), st.sampled_from([-1, 2**31, None, "12", -0.0, 12.0])),
    "small": (
        st.one_of(st.integers(-(2**15), 2**15 - 1), st.none()),
        st.sampled_from([2**15, True, "1"]),
    ),
    "score": (
        st.one_of(st.floats(-1, 1), st.integers(-1, 1), st.none()),
        st.sampled_from([1.5, -2, "0.5", False]),
    ),
    "live": (st.one_of(st.booleans(), st.none()), st.sampled_from(["true", "no", 1, 0])),
    "at": (
        st.one_of(
            st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
            st.none(),
        ),
        st.sampled_from(
            [
                "2026-01-01T12:00:00Z",
                "2026-01-01T12:00:00+01:00",
                "2026-01-01 12:00:00+00:00",
                "2026-01-01T12:00:00.000000+00:00",
                "2026-13-01T12:00:00+00:00",
                "2026-01-01T12:00:00",
                "2026-01-01T12:00:00.5+00:00",
            ]
        ),
    ),
    "kind": (st.sampled_from(["song", "podcast", None]), st.sampled_from(["video", "", 1])),
    "plays": (st.one_of(st.integers(0, 9), st.none()), st.sampled_from(["2", 2.0])),
    "note": (st.one_of(st.text(max_size=3), st.none()), st.sampled_from(["long", 3])),
    "label": (
        st.one_of(st.text(max_size=5), st.none()),
        st.one_of(st.text(min_size=6, max_size=8), st.just("a\x00"), st.just(5)),
    ),
}


@st.composite
def _records(draw: st.DrawFn) -> str:
    """One JSON line: mostly valid values, now and then one the exact path refuses or
    converts, a missing or unknown key, a repeated key or a space before a colon."""
    record = {}
    for name, (valid, other) in _VALUES.items():
        roll = draw(st.integers(0, 39))
        if roll == 0 and name not in ("id", "ms"):
            continue
        record[name] = draw(other if roll == 1 else valid)
    if draw(st.integers(0, 19)) == 0:
        record["unknown"] = 1
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 19)) == 0:  # repeat the first key
        text = text[:-1] + f',"id":{json.dumps(record["id"])}' + "}"
    if draw(st.integers(0, 19)) == 0:
        text = text.replace('":', '" :', 1)
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_records(), min_size=1, max_size=6))
def test_the_compiled_path_accepts_only_what_the_exact_path_accepts_with_the_same_rows(
    lines: list[str],
) -> None:
    assert FAST is not None
    block = _block(*lines)
    fast = FAST.rows(block)
    if fast is not None:
        assert _exact(block) == fast


@pytest.mark.parametrize(
    "table_name", ["listening_events", "audio_features", "playlist_tracks", "tracks"]
)
def test_generated_spotify_data_takes_the_compiled_path_with_the_exact_rows_and_checksum(
    tmp_path: Path, table_name: str
) -> None:
    generate_fixture_set(tmp_path, scale=2, seed=3)
    table = builtin_metadata().tables[f"{TENANT_SCHEMA}.{table_name}"]
    fast = fast_rows_for(table)
    assert fast is not None
    path = next(tmp_path.glob(f"{table_name}.jsonl*"))
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        block = handle.read()
    rows = fast.rows(block)
    assert rows is not None
    builder = RowBuilder(table)
    file = FixtureFile(table_name, path, path.name, "jsonl", compressed=False)
    records, failure = json_lines_records(file, block, 0)
    assert failure is None
    typed = [builder.build(record, path=path.name) for record in records]
    assert [
        tuple(v.isoformat() if isinstance(v, datetime) else v for v in r) for r in typed
    ] == rows
    exact, compiled = table_checksum(table), ContentChecksum()
    exact.add(typed)
    compiled.add(rows)
    assert exact.hexdigest() == compiled.hexdigest()
