"""Content checksums: order-independent, additive, canonical, and the same in every process."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import enum
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import (
    CHAR,
    JSON,
    NCHAR,
    Column,
    DateTime,
    Enum,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
)

from tenancy_fixtures.loading.checksums import (
    ContentChecksum,
    _encode,
    add_checksums,
    row_digest,
)
from tenancy_fixtures.loading.table_checksums import table_checksum, table_checksum_over
from tenancy_fixtures.store.control_plane import TableChecksum, covered_columns
from tenancy_fixtures.validation.integrity import expected_contents

PLAYED = datetime(2026, 4, 22, 20, 28, 34, tzinfo=UTC)
ROWS: list[tuple[Any, ...]] = [
    ("u1", PLAYED, "t1", 378182, "spotify:playlist:p1", "android", True, False),
    ("u1", PLAYED + timedelta(minutes=5), "t2", 1000, None, "ios", False, None),
    ("u2", PLAYED, "t1", 0, None, None, None, True),
]
#: The checksum of ROWS; it changes only if the canonical encoding changes, which would
#: make every recorded checksum disagree with its table.
ROWS_CHECKSUM = "bf1bbe77024dddb1"

_METADATA = MetaData(schema="tenant")
EVENTS = Table(
    "events",
    _METADATA,
    Column("event_id", String(8), primary_key=True),
    Column("occurred_at", DateTime(timezone=True)),
    Column("properties", JSON),
    Column("count", Integer),
)


def checksum(rows: list[tuple[Any, ...]], *, batch: int = 1000) -> ContentChecksum:
    content = ContentChecksum()
    for start in range(0, len(rows), batch):
        content.add(rows[start : start + batch])
    return content


def event_checksum(*rows: tuple[Any, ...]) -> str:
    content = table_checksum(EVENTS)
    content.add(list(rows))
    return content.hexdigest()


class TestContentChecksum:
    def test_the_checksum_of_known_rows_is_unchanged(self) -> None:
        """The encoding is stable: these rows still give the checksum they always gave."""
        assert ROWS_CHECKSUM == checksum(ROWS).hexdigest()

    def test_the_checksum_does_not_depend_on_row_order_or_batches(self) -> None:
        """Reversed rows, fed one at a time, give the same checksum and row count."""
        whole = checksum(ROWS)
        parts = checksum(list(reversed(ROWS)), batch=1)
        assert (whole.rows, whole.hexdigest()) == (parts.rows, parts.hexdigest())

    def test_checksums_of_parts_add_up_to_the_whole(self) -> None:
        """Summing the checksums of two row sets gives the checksum of their union."""
        assert checksum(ROWS).hexdigest() == add_checksums(
            [checksum(ROWS[:1]).hexdigest(), checksum(ROWS[1:]).hexdigest()]
        )

    def test_a_batch_sums_the_digests_of_its_rows(self) -> None:
        """The batch path and row_digest agree (one byte order for both)."""
        assert sum(row_digest(row) for row in ROWS) % 2**64 == checksum(ROWS).total

    def test_changing_one_value_changes_the_checksum(self) -> None:
        """One ms_played off by one gives another checksum."""
        changed = [ROWS[0], (*ROWS[1][:3], 1001, *ROWS[1][4:]), ROWS[2]]
        assert checksum(ROWS).hexdigest() != checksum(changed).hexdigest()

    def test_a_repeated_row_counts_twice(self) -> None:
        """The checksum is of a multiset: a duplicated row changes it."""
        assert checksum(ROWS).hexdigest() != checksum([*ROWS, ROWS[0]]).hexdigest()

    def test_no_rows_give_zero(self) -> None:
        """An empty table's checksum is sixteen zeros, with zero rows."""
        empty = checksum([])
        assert (0, "0000000000000000") == (empty.rows, empty.hexdigest())

    def test_values_of_different_types_digest_differently(self) -> None:
        """None, a boolean, an integer, a float and strings that print alike all differ."""
        values: list[Any] = [None, True, 1, 1.0, "1", "true", "null", "1.0", 0, False, ""]
        digests = {row_digest((value,)) for value in values}
        assert len(values) == len(digests)

    def test_floats_are_encoded_exactly(self) -> None:
        """Two floats one unit in the last place apart digest differently."""
        assert row_digest((0.1,)) != row_digest((0.1 + 2**-56,))

    def test_a_naive_timestamp_digests_as_the_same_instant_in_utc(self) -> None:
        """SQLite's naive timestamp equals the loader's aware UTC one."""
        assert row_digest(("e", PLAYED)) == row_digest(("e", PLAYED.replace(tzinfo=None)))

    def test_a_timestamp_in_another_zone_digests_as_the_same_instant_in_utc(self) -> None:
        """The same instant at +02:00, in a batch with UTC and naive ones, digests as UTC."""
        elsewhere = PLAYED.astimezone(timezone(timedelta(hours=2)))
        naive = PLAYED.replace(tzinfo=None) + timedelta(hours=1)
        utc = [("e", PLAYED, None, 1), ("f", naive, None, 1), ("g", None, None, 1)]
        mixed = [("e", elsewhere, None, 1), ("f", naive, None, 1), ("g", None, None, 1)]
        assert event_checksum(*utc) == event_checksum(*mixed)

    def test_json_key_order_does_not_matter(self) -> None:
        """A JSON object digests the same whatever the order of its keys, at any depth."""
        first = {"a": 1, "b": {"x": [1, 2], "y": None}}
        second = {"b": {"y": None, "x": [1, 2]}, "a": 1}
        assert event_checksum(("e", None, first, 1)) == event_checksum(("e", None, second, 1))

    def test_a_whole_float_in_json_digests_like_the_integer_jsonb_returns(self) -> None:
        """jsonb gives 1e16 back as an integer; both digest alike in a JSON column."""
        assert event_checksum(("e", None, {"n": [1e16, 2.0]}, 1)) == event_checksum(
            ("e", None, {"n": [10**16, 2]}, 1)
        )

    def test_a_whole_float_past_2_53_in_json_digests_like_the_number_its_text_names(
        self,
    ) -> None:
        """jsonb keeps 1e23 as 100000000000000000000000, not as the float's own integer
        (99999999999999991611392): both sides digest the number the text names."""
        assert event_checksum(("e", None, {"n": 1e23}, 1)) == event_checksum(
            ("e", None, {"n": 10**23}, 1)
        )

    def test_a_negative_zero_decimal_digests_like_zero(self) -> None:
        """PostgreSQL's NUMERIC has no negative zero: -0 and -0.00 read back as 0."""
        assert row_digest((Decimal("-0"),)) == row_digest((Decimal("0"),))
        assert row_digest((Decimal("-0.00"),)) == row_digest((Decimal("0"),))

    def test_a_fraction_in_json_still_differs_from_its_integer_part(self) -> None:
        """Only whole floats are folded into integers."""
        assert event_checksum(("e", None, {"n": 1.5}, 1)) != event_checksum(
            ("e", None, {"n": 1}, 1)
        )

    def test_integers_beyond_64_bits_in_json_are_digested_deterministically(self) -> None:
        """orjson refuses 2**70; the fallback encoding still tells 2**70 from 2**70 + 1."""
        big = event_checksum(("e", None, {"n": 2**70}, 1))
        assert big == event_checksum(("e", None, {"n": 2**70}, 1))
        assert big != event_checksum(("e", None, {"n": 2**70 + 1}, 1))

    def test_decimals_ignore_trailing_zeros(self) -> None:
        """Decimal('1.10') as a driver returns it digests like the loader's Decimal('1.1')."""
        assert row_digest((Decimal("1.10"),)) == row_digest((Decimal("1.1"),))
        assert row_digest((Decimal("1.1"),)) != row_digest((Decimal("1.2"),))

    def test_dates_and_uuids_are_encoded(self) -> None:
        """Dates and UUIDs digest by value."""
        one = UUID("12345678-1234-5678-1234-567812345678")
        assert row_digest((date(2026, 1, 1), one)) == row_digest((date(2026, 1, 1), one))
        assert row_digest((date(2026, 1, 1), one)) != row_digest((date(2026, 1, 2), one))

    def test_a_uuid_of_the_drivers_own_class_digests_like_the_loaders_uuid(self) -> None:
        """asyncpg reads a uuid column as its own UUID subclass, which orjson refuses: in a
        row with non-ASCII text it must still digest as the loader's row did."""
        from asyncpg.pgproto.pgproto import UUID as DriverUUID

        value = UUID(int=9)
        read_back = DriverUUID(str(value))
        assert type(read_back) is not UUID
        assert row_digest(("café 漢字", value)) == row_digest(("café 漢字", read_back))

    def test_a_row_json_encodes_only_by_the_slow_path_digests_text_as_orjson_writes_it(
        self,
    ) -> None:
        """A JSON integer beyond 64 bits sends the row to the standard library's encoder,
        which writes non-ASCII text unescaped, as orjson does."""
        big = {"n": 2**70}
        assert '["é",{"n":1180591620717411303424}]'.encode() == _encode(["é", big])

    def test_the_checksum_is_the_same_in_another_process(self) -> None:
        """A fresh interpreter with another hash seed computes the same checksum."""
        script = (
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "from test_checksums import ROWS, checksum; print(checksum(ROWS).hexdigest())"
        )
        here = str(Path(__file__).parent)
        result = subprocess.run(
            [sys.executable, "-c", script, here],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": "12345", "PATH": ""},
        )
        assert ROWS_CHECKSUM == result.stdout.strip()


def write(
    table: str,
    mode: str,
    rows: int,
    checksum: str,
    *,
    inserted: int | None = None,
    updated: int = 0,
    unchanged: int = 0,
    columns: tuple[str, ...] | None = None,
) -> TableChecksum:
    return TableChecksum(
        table,
        mode,
        rows,
        checksum,
        rows if inserted is None else inserted,
        updated,
        unchanged,
        columns=columns,
    )


class TestChecksumOverSomeColumns:
    ROWS: list[tuple[Any, ...]] = [  # noqa: RUF012
        ("e1", PLAYED, {"b": 1, "a": [1.0]}, 3),
        ("e2", None, None, None),
    ]

    def test_whole_rows_hashed_over_some_columns_match_those_columns_alone(self) -> None:
        """What retention and erasure record after a column was added: the checksum of
        the columns the table's loads covered."""
        over = table_checksum_over(EVENTS, ["count", "event_id", "properties"])
        over.add(self.ROWS)
        alone = table_checksum(EVENTS, [EVENTS.c["count"], EVENTS.c.event_id, EVENTS.c.properties])
        alone.add([(r[3], r[0], r[2]) for r in self.ROWS])

        assert (over.hexdigest(), over.columns) == (alone.hexdigest(), alone.columns)

    def test_unknown_or_all_columns_hash_every_column(self) -> None:
        every = table_checksum(EVENTS)
        every.add(self.ROWS)
        for names in (None, ["event_id", "gone"], [c.name for c in EVENTS.columns]):
            over = table_checksum_over(EVENTS, names)
            over.add(self.ROWS)
            assert (over.hexdigest(), over.columns) == (every.hexdigest(), every.columns)

    def test_the_columns_covered_are_those_of_each_tables_latest_write_that_says(self) -> None:
        covered = covered_columns(
            [
                write("t", "insert", 1, "1", columns=("a",)),
                write("t", "insert", 1, "1"),
                write("u", "insert", 1, "1"),
                write("v", "insert", 1, "1", columns=("a",)),
                write("v", "replace", 1, "1", columns=("a", "b")),
            ]
        )

        assert covered == {"t": ("a",), "u": None, "v": ("a", "b")}


class TestExpectedContents:
    def test_inserts_add_up(self) -> None:
        """Two fixtures inserting into one table: rows and checksums add."""
        expected = expected_contents(
            [
                write("t", "insert", 2, "0000000000000001"),
                write("t", "upsert", 3, "0000000000000002"),
            ]
        )["t"]
        assert (True, 5, "0000000000000003") == (
            expected.comparable,
            expected.rows,
            expected.checksum,
        )

    def test_an_update_makes_the_table_incomparable(self) -> None:
        """An upsert that updated rows leaves no checksum that describes the table."""
        expected = expected_contents(
            [
                write("t", "insert", 2, "0000000000000001"),
                write("t", "upsert", 2, "0000000000000005", inserted=0, updated=1, unchanged=1),
            ]
        )
        assert expected["t"].comparable is False

    def test_inserts_mixed_with_unchanged_rows_make_the_table_incomparable(self) -> None:
        """Which of the given rows were new is unknown, so their checksum is too."""
        expected = expected_contents(
            [
                write("t", "insert", 2, "0000000000000001"),
                write("t", "upsert", 3, "0000000000000005", inserted=1, unchanged=2),
            ]
        )
        assert expected["t"].comparable is False

    def test_rows_given_again_unchanged_change_nothing(self) -> None:
        """A forced reload that found every row as it was keeps the first checksum."""
        expected = expected_contents(
            [
                write("t", "insert", 2, "0000000000000001"),
                write("t", "upsert", 2, "0000000000000001", inserted=0, unchanged=2),
            ]
        )["t"]
        assert (True, 2, "0000000000000001") == (
            expected.comparable,
            expected.rows,
            expected.checksum,
        )

    def test_a_replace_starts_the_table_afresh(self) -> None:
        """After a replace only its rows count, even after an incomparable upsert."""
        expected = expected_contents(
            [
                write("t", "insert", 2, "0000000000000001"),
                write("t", "upsert", 2, "0000000000000009", inserted=0, updated=2),
                write("t", "replace", 4, "00000000000000aa"),
            ]
        )["t"]
        assert (True, 4, "00000000000000aa") == (
            expected.comparable,
            expected.rows,
            expected.checksum,
        )

    def test_a_write_of_several_modes_is_comparable_only_as_the_tables_first(self) -> None:
        """'mixed' may hold a replace: after earlier rows it cannot be added up."""
        first = expected_contents([write("t", "mixed", 3, "0000000000000003")])["t"]
        later = expected_contents(
            [
                write("t", "insert", 2, "0000000000000001"),
                write("t", "mixed", 3, "0000000000000003"),
            ]
        )["t"]
        assert (True, 3, "0000000000000003") == (first.comparable, first.rows, first.checksum)
        assert later.comparable is False

    def test_checksums_over_different_columns_do_not_add_up(self) -> None:
        """A migration added a column between two loads: no sum describes the table."""
        expected = expected_contents(
            [
                write("t", "insert", 2, "0000000000000001", columns=("a", "b")),
                write("t", "insert", 1, "0000000000000002", columns=("a", "b", "c")),
            ]
        )["t"]
        assert expected.comparable is False
        assert "different columns" in (expected.unknown or "")

    def test_a_purge_over_other_columns_leaves_the_table_incomparable(self) -> None:
        """Retention after a migration takes rows out by a checksum of other columns."""
        expected = expected_contents(
            [
                write("t", "insert", 2, "0000000000000002", columns=("a",)),
                write("t", "purge", 1, "ffffffffffffffff", inserted=0, columns=("a", "b")),
            ]
        )["t"]
        assert expected.comparable is False

    def test_entries_recorded_before_columns_were_kept_add_to_later_ones(self) -> None:
        """An entry without columns covered the table's columns of then: it adds up
        with a later one, whose columns the table's checksum is recomputed over."""
        expected = expected_contents(
            [
                write("t", "insert", 2, "0000000000000001"),
                write("t", "insert", 1, "0000000000000002", columns=("a", "b")),
            ]
        )["t"]
        assert (True, 3, "0000000000000003", ("a", "b")) == (
            expected.comparable,
            expected.rows,
            expected.checksum,
            expected.columns,
        )

    def test_a_replace_after_a_change_of_columns_is_comparable_again(self) -> None:
        expected = expected_contents(
            [
                write("t", "insert", 2, "0000000000000001", columns=("a",)),
                write("t", "insert", 2, "0000000000000002", columns=("a", "b")),
                write("t", "replace", 4, "00000000000000aa", columns=("a", "b")),
            ]
        )["t"]
        assert (True, 4, ("a", "b")) == (expected.comparable, expected.rows, expected.columns)


def test_trailing_blanks_of_a_char_value_do_not_count_and_of_a_varchar_value_do() -> None:
    """PostgreSQL pads ``CHAR(n)`` and ignores its trailing blanks; SQLite keeps the
    value as given: both read back to one checksum. ``VARCHAR`` keeps its blanks."""
    codes = Table(
        "codes",
        MetaData(),
        Column("fixed", CHAR(5)),
        Column("wide", NCHAR(5)),
        Column("varying", String(5)),
    )

    def checksum(*row: Any) -> str:
        content = table_checksum(codes)
        content.add([row])
        return content.hexdigest()

    assert checksum("ab", "cd", "x") == checksum("ab   ", "cd ", "x")
    assert checksum("ab", "cd", "x") != checksum("ab", "cd", "x ")
    assert checksum(" ab", "cd", "x") != checksum("ab", "cd", "x")


def test_a_python_enum_member_is_hashed_by_its_name_as_the_column_stores_it() -> None:
    """A load gives the member's name; the column reads back the member itself."""

    class Mood(enum.Enum):
        happy = "HAPPY"

    moods = Table("moods", MetaData(), Column("mood", Enum(Mood, name="mood")))

    def checksum(value: Any) -> str:
        content = table_checksum(moods)
        content.add([(value,)])
        return content.hexdigest()

    assert checksum("happy") == checksum(Mood.happy)
    assert checksum("HAPPY") != checksum(Mood.happy)


def test_a_decimal_of_a_column_read_as_floats_is_hashed_as_the_float() -> None:
    """``Numeric(asdecimal=False)``: a load's ``Decimal("1.5")`` and SQLite's ``1.5``
    are one value; a plain ``Numeric`` keeps hashing decimals as decimals."""
    amounts = Table(
        "amounts",
        MetaData(),
        Column("as_float", Numeric(10, 2, asdecimal=False)),
        Column("as_decimal", Numeric(10, 2)),
    )

    def checksum(*row: Any) -> str:
        content = table_checksum(amounts)
        content.add([row])
        return content.hexdigest()

    assert checksum(Decimal("1.5"), Decimal("2")) == checksum(1.5, Decimal("2"))
    assert checksum(Decimal("1.5"), Decimal("2")) != checksum(Decimal("1.5"), 2.0)
