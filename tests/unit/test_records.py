"""RowBuilder: source records become typed rows of a table, or a RecordError saying why."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from sqlalchemy import (
    CHAR,
    DOUBLE_PRECISION,
    REAL,
    Column,
    DateTime,
    Double,
    Enum,
    Float,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects import postgresql

from tenancy_fixtures.errors import RecordError, SettingsError
from tenancy_fixtures.loading.readers import SourceRecord
from tenancy_fixtures.loading.records import RowBuilder, check_loadable, text_limit
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.store.base import TENANT_SCHEMA

TABLES: dict[str, Table] = {t.name: t for t in spotify_metadata().sorted_tables}
#: A column of each number type: integer, float, NUMERIC with and without a scale.
NUMBERS = Table(
    "numbers",
    MetaData(schema=TENANT_SCHEMA),
    Column("n", Integer),
    Column("ratio", Float),
    Column("cost", Numeric(10, 2)),
    Column("amount", Numeric),
)

USER: dict[str, Any] = {
    "user_id": "u1",
    "display_name": "Ada",
    "email": "ada@example.com",
    "country": "GB",
    "product": "premium",
    "created_at": "2026-01-01T12:00:00+00:00",
}
ARTIST_ID = "0OdUWJ0sBjDrqHygGUXeCF"
ALBUM_ID = "6akEvsycLGftJxYudPjmqK"
TRACK_ID = "4uLU6hMCjMI75M1A2tKUQC"
ARTIST: dict[str, Any] = {"artist_id": ARTIST_ID, "name": "The Foxes"}
TRACK: dict[str, Any] = {
    "track_id": TRACK_ID,
    "name": "Song",
    "album_id": ALBUM_ID,
    "artist_id": ARTIST_ID,
    "duration_ms": 200000,
}
AUDIO_FEATURES: dict[str, Any] = {
    "track_id": TRACK_ID,
    "danceability": 0.5,
    "energy": 0.5,
    "valence": 0.5,
    "acousticness": 0.5,
    "instrumentalness": 0.5,
    "liveness": 0.5,
    "speechiness": 0.5,
    "loudness": -5.0,
    "tempo": 120.0,
    "key": 1,
    "mode": 1,
    "time_signature": 4,
}
AI_MODEL: dict[str, Any] = {
    "model_id": "m1",
    "provider": "internal",
    "model_name": "two-tower",
    "version": "1.0",
    "task": "chat",
    "parameters": {"top_k": 5},
}


def build(table: str, values: dict[str, Any], *, line: int | None = 7) -> dict[str, Any]:
    """The row built from ``values`` as a column -> value dict."""
    builder = RowBuilder(TABLES[table])
    row = builder.build(SourceRecord(values, line, 3), path=f"{table}.jsonl")
    return dict(zip(builder.columns, row, strict=True))


def refusal(table: str, values: dict[str, Any], *, line: int | None = 7) -> RecordError:
    """The RecordError raised building a row from ``values``."""
    with pytest.raises(RecordError) as caught:
        build(table, values, line=line)
    return caught.value


class TestBuild:
    def test_a_row_is_a_tuple_in_column_order(self) -> None:
        """build returns one value per column, in the table's column order."""
        builder = RowBuilder(TABLES["users"])

        row = builder.build(SourceRecord(dict(reversed(USER.items())), 2, 1), path="users.csv")

        assert ("user_id", "display_name", "email", "country", "product", "created_at") == (
            builder.columns
        )
        assert (
            "u1",
            "Ada",
            "ada@example.com",
            "GB",
            "premium",
            datetime(2026, 1, 1, 12, tzinfo=UTC),
        ) == row

    def test_csv_strings_are_coerced_to_column_types(self) -> None:
        """Text from CSV becomes int, float, bool, datetime and JSON values."""
        assert {
            "track_id": TRACK_ID,
            "name": "Song",
            "album_id": ALBUM_ID,
            "artist_id": ARTIST_ID,
            "duration_ms": 200000,
            "explicit": True,
            "popularity": 42,
            "track_number": 3,
            "isrc": None,
        } == build(
            "tracks",
            {
                **TRACK,
                "duration_ms": "200000",
                "explicit": "true",
                "popularity": " 42 ",
                "track_number": "+3",
            },
        )
        assert {**AUDIO_FEATURES, "tempo": 120.5, "loudness": -7.25, "key": 11} == build(
            "audio_features",
            {**AUDIO_FEATURES, "tempo": "120.5", "loudness": "-7.25", "key": "11"},
        )
        assert ["rock", "jazz"] == build("artists", {**ARTIST, "genres": '["rock", "jazz"]'})[
            "genres"
        ]
        assert {"top_k": 5, "seed": None} == build(
            "ai_models", {**AI_MODEL, "parameters": '{"top_k": 5, "seed": null}'}
        )["parameters"]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("true", True),
            ("TRUE", True),
            ("t", True),
            ("yes", True),
            ("y", True),
            ("1", True),
            (" True ", True),
            ("false", False),
            ("F", False),
            ("no", False),
            ("n", False),
            ("0", False),
        ],
    )
    def test_boolean_text_is_read(self, text: str, expected: bool) -> None:
        """Common spellings of true and false are accepted for Boolean columns."""
        assert expected is build("tracks", {**TRACK, "explicit": text})["explicit"]

    def test_json_values_pass_through_unchanged(self) -> None:
        """Values already typed (from JSON/YAML) are kept as they are."""
        assert {**AUDIO_FEATURES} == build("audio_features", AUDIO_FEATURES)
        assert {"top_k": 5} == build("ai_models", AI_MODEL)["parameters"]

    def test_an_integral_float_is_accepted_for_an_integer_column(self) -> None:
        """3.0 is the integer 3."""
        assert 3 == build("audio_features", {**AUDIO_FEATURES, "key": 3.0})["key"]

    def test_an_int_is_accepted_for_a_float_column(self) -> None:
        """An int for a Float column becomes a float."""
        value = build("audio_features", {**AUDIO_FEATURES, "tempo": 120})["tempo"]

        assert (120.0, float) == (value, type(value))

    def test_an_explicit_null_is_kept_for_a_nullable_column(self) -> None:
        """None in a nullable column stays None."""
        assert build("users", {**USER, "country": None})["country"] is None


class TestTimestamps:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2026-01-01T12:00:00+00:00", datetime(2026, 1, 1, 12, tzinfo=UTC)),
            ("2026-01-01T12:00:00Z", datetime(2026, 1, 1, 12, tzinfo=UTC)),
            ("2026-01-01T12:00:00+02:00", datetime(2026, 1, 1, 10, tzinfo=UTC)),
            ("2026-01-01T01:30:00-05:30", datetime(2026, 1, 1, 7, tzinfo=UTC)),
            ("2026-01-01 12:00:00.250+00:00", datetime(2026, 1, 1, 12, 0, 0, 250000, tzinfo=UTC)),
            (" 2026-01-01T12:00:00+01:00 ", datetime(2026, 1, 1, 11, tzinfo=UTC)),
        ],
    )
    def test_a_timestamp_is_converted_to_utc(self, text: str, expected: datetime) -> None:
        """Timestamps with any offset come out as the same instant in UTC."""
        actual = build("users", {**USER, "created_at": text})["created_at"]

        assert expected == actual
        assert UTC == actual.tzinfo

    def test_an_aware_datetime_is_converted_to_utc(self) -> None:
        """A datetime object (as YAML gives) is converted to UTC too."""
        given = datetime.fromisoformat("2026-06-01T09:00:00+09:00")

        actual = build("users", {**USER, "created_at": given})["created_at"]

        assert (datetime(2026, 6, 1, 0, tzinfo=UTC), UTC) == (actual, actual.tzinfo)

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            pytest.param("2026-01-01T12:00:00", "timestamp needs a UTC offset", id="no-offset"),
            pytest.param("2026-01-01", "timestamp needs a UTC offset", id="date-text"),
            pytest.param(
                datetime(2026, 1, 1, 12), "timestamp needs a UTC offset", id="naive-datetime"
            ),
            pytest.param(datetime(2026, 1, 1).date(), "found a date", id="date-object"),
            pytest.param("yesterday", "expected an ISO 8601 timestamp", id="word"),
            pytest.param("2026-01-01T25:00:00+00:00", "expected an ISO 8601", id="hour-25"),
            pytest.param(1767268800, "expected an ISO 8601 timestamp, found int", id="epoch"),
            pytest.param(
                # Python 3.11 reads it as +00:00: the instant would move by 1 µs.
                "2000-01-01T00:00:00+00:00:00.000001",
                "a UTC offset takes whole seconds at most",
                id="offset-with-a-fraction-of-a-second",
            ),
            pytest.param(
                "2000-01-01T00:00:00-00:00:00,999999",
                "a UTC offset takes whole seconds at most",
                id="offset-with-a-decimal-comma",
            ),
            pytest.param(
                "2000-01-01T00:00:00+00:00:00.12345678",
                "a UTC offset takes whole seconds at most",
                id="offset-with-eight-fractional-digits",
            ),
        ],
    )
    def test_a_bad_timestamp_is_refused(self, value: Any, message: str) -> None:
        """Timestamps without an offset, dates and non-timestamps are refused."""
        error = refusal("users", {**USER, "created_at": value})

        assert "created_at" == error.column
        assert message in error.message


class TestRequiredAndDefaults:
    def test_a_missing_not_null_column_is_refused_naming_it(self) -> None:
        """A NOT NULL column without a default must be given."""
        values = {k: v for k, v in USER.items() if k != "display_name"}

        error = refusal("users", values)

        assert ("display_name", "required value is missing") == (error.column, error.message)

    def test_a_null_in_a_not_null_column_is_refused_naming_it(self) -> None:
        """An explicit null in a NOT NULL column is refused."""
        error = refusal("tracks", {**TRACK, "name": None})

        assert ("name", "must not be null") == (error.column, error.message)

    @pytest.mark.parametrize(
        ("table", "values", "column", "default"),
        [
            pytest.param("tracks", TRACK, "explicit", False, id="tracks.explicit"),
            pytest.param("users", USER, "country", None, id="nullable-users.country"),
            pytest.param(
                "users",
                {k: v for k, v in USER.items() if k != "product"},
                "product",
                "free",
                id="users.product",
            ),
            pytest.param("ai_models", AI_MODEL, "enabled", True, id="ai_models.enabled"),
            pytest.param("ai_models", AI_MODEL, "is_default", False, id="ai_models.is_default"),
        ],
    )
    def test_a_missing_column_with_a_default_gets_the_default(
        self, table: str, values: dict[str, Any], column: str, default: Any
    ) -> None:
        """Columns left out take their declared default (or NULL when nullable)."""
        values = {k: v for k, v in values.items() if k != column}

        assert default == build(table, values)[column]

    def test_a_default_function_is_called_for_each_row_and_its_value_typed_and_checked(
        self,
    ) -> None:
        """``default=uuid.uuid4`` gives each row left without the column its own value
        (the column was left NULL before); the value is typed and checked like one
        given, so a function returning what the column refuses is refused."""
        counter = iter(range(1, 100))
        table = Table(
            "made",
            MetaData(),
            Column("key", Integer, primary_key=True),
            Column("token", Uuid, default=uuid.uuid4, nullable=False),
            Column("rank", SmallInteger, default=lambda: next(counter), nullable=False),
            Column("bad", SmallInteger, default=lambda: 70000),
        )
        builder = RowBuilder(table)

        first, second = (
            builder.build(SourceRecord({"key": key, "bad": 1}, key, key), path="made.jsonl")
            for key in (1, 2)
        )
        with pytest.raises(RecordError) as refused:
            builder.build(SourceRecord({"key": 3}, 3, 3), path="made.jsonl")

        assert isinstance(first[1], uuid.UUID)
        assert first[1] != second[1]
        assert (1, 2) == (first[2], second[2])
        assert ("bad", "range") == (refused.value.column, refused.value.rule)

    def test_a_default_function_fills_only_a_missing_value_and_its_failure_is_a_refusal(
        self,
    ) -> None:
        """An explicit null stays null (refused on a NOT NULL column), a function giving
        None leaves NULL, and one that raises is refused naming the column, like any
        bad value; a partial and an object with ``__call__`` are functions too."""

        def boom() -> str:
            raise KeyError("no more tokens")

        class Seven:
            def __call__(self) -> int:
                return 7

        table = Table(
            "made",
            MetaData(),
            Column("key", Integer, primary_key=True),
            Column("note", String(10), default=lambda: None),
            Column("code", String(5), nullable=False, default=partial(str.upper, "abc")),
            Column("seven", Integer, default=Seven()),
            Column("risky", String(5), default=boom),
        )
        builder = RowBuilder(table)

        def build_row(values: dict[str, Any]) -> tuple[Any, ...]:
            return builder.build(SourceRecord(values, 1, 1), path="made.jsonl")

        row = build_row({"key": 1, "risky": "x"})
        with pytest.raises(RecordError) as null:
            build_row({"key": 2, "code": None, "risky": "x"})
        with pytest.raises(RecordError) as failed:
            build_row({"key": 3})

        assert (1, None, "ABC", 7, "x") == row
        assert ("code", "not_null") == (null.value.column, null.value.rule)
        assert ("risky", "default") == (failed.value.column, failed.value.rule)
        assert "its default function failed: KeyError('no more tokens')" in failed.value.message

    def test_a_default_function_of_the_statement_context_is_refused_at_start(self) -> None:
        """The loader has no statement context to give it."""
        table = Table(
            "made",
            MetaData(),
            Column("key", Integer, primary_key=True),
            Column("rank", Integer, default=lambda context: context.get_current_parameters()),
        )

        with pytest.raises(SettingsError, match=r"made\.rank: its default function takes"):
            check_loadable(table.metadata)

    def test_an_unknown_column_is_refused_naming_it(self) -> None:
        """A key the table does not have is refused, naming the first unknown one."""
        error = refusal("artists", {**ARTIST, "zodiac": "leo", "mood": "sunny"})

        assert ("mood", "unknown column for this table") == (error.column, error.message)
        assert "artists" == error.table


class TestTypes:
    @pytest.mark.parametrize(
        ("table", "values", "column", "message"),
        [
            pytest.param(
                "users", {**USER, "country": "GBR"}, "country", "longer than 2", id="str-length"
            ),
            pytest.param(
                "artists",
                {**ARTIST, "artist_id": "x" * 23},
                "artist_id",
                "longer than 22 characters (23)",
                id="spotify-id-length",
            ),
            pytest.param(
                "users",
                {**USER, "display_name": "Ada\x00Lovelace"},
                "display_name",
                "must not contain NUL",
                id="nul",
            ),
            pytest.param(
                "users", {**USER, "display_name": 5}, "display_name", "expected text", id="int"
            ),
            pytest.param(
                "audio_features",
                {**AUDIO_FEATURES, "key": 2**31},
                "key",
                "out of range",
                id="int32-high",
            ),
            pytest.param(
                "audio_features",
                {**AUDIO_FEATURES, "key": -(2**31) - 1},
                "key",
                "out of range",
                id="int32-low",
            ),
            pytest.param(
                "audio_features",
                {**AUDIO_FEATURES, "key": "2147483648"},
                "key",
                "out of range",
                id="int32-text",
            ),
            pytest.param(
                "artists",
                {**ARTIST, "followers": 2**63},
                "followers",
                "out of range",
                id="int64-high",
            ),
            pytest.param(
                "audio_features",
                {**AUDIO_FEATURES, "key": True},
                "key",
                "expected an integer",
                id="bool-for-int",
            ),
            pytest.param(
                "audio_features",
                {**AUDIO_FEATURES, "key": "False"},
                "key",
                "expected an integer",
                id="bool-text-for-int",
            ),
            pytest.param(
                "audio_features",
                {**AUDIO_FEATURES, "key": 1.5},
                "key",
                "expected an integer",
                id="fraction-for-int",
            ),
            pytest.param(
                "audio_features",
                {**AUDIO_FEATURES, "key": "1.0"},
                "key",
                "expected an integer",
                id="decimal-text-for-int",
            ),
            pytest.param(
                "audio_features",
                {**AUDIO_FEATURES, "tempo": float("nan")},
                "tempo",
                "must be finite",
                id="nan",
            ),
            pytest.param(
                "audio_features",
                {**AUDIO_FEATURES, "tempo": float("inf")},
                "tempo",
                "must be finite",
                id="infinity",
            ),
            pytest.param(
                "audio_features",
                {**AUDIO_FEATURES, "tempo": "-Infinity"},
                "tempo",
                "must be finite",
                id="infinity-text",
            ),
            pytest.param(
                "audio_features",
                {**AUDIO_FEATURES, "tempo": "NaN"},
                "tempo",
                "must be finite",
                id="nan-text",
            ),
            pytest.param(
                "audio_features",
                {**AUDIO_FEATURES, "tempo": "fast"},
                "tempo",
                "expected a number",
                id="word-for-float",
            ),
            pytest.param(
                "audio_features",
                {**AUDIO_FEATURES, "tempo": False},
                "tempo",
                "expected a number",
                id="bool-for-float",
            ),
            pytest.param(
                "tracks", {**TRACK, "explicit": "maybe"}, "explicit", "true or false", id="bool"
            ),
            pytest.param(
                "tracks", {**TRACK, "explicit": 1}, "explicit", "true or false", id="int-for-bool"
            ),
            pytest.param(
                "ai_models",
                {**AI_MODEL, "parameters": "{top_k: 5}"},
                "parameters",
                "expected JSON text",
                id="bad-json",
            ),
            pytest.param(
                "artists",
                {**ARTIST, "genres": "null"},  # a CSV field holding null
                "genres",
                "the JSON text null: leave the value empty",
                id="json-text-null",
            ),
        ],
    )
    def test_a_wrong_value_is_refused_naming_its_column(
        self, table: str, values: dict[str, Any], column: str, message: str
    ) -> None:
        """Values of the wrong type, size or range are refused naming the column."""
        error = refusal(table, values)

        assert column == error.column
        assert message in error.message

    @pytest.mark.parametrize("followers", [2**31, 2**63 - 1, "9223372036854775807", 0])
    def test_a_bigint_column_accepts_64_bit_values(self, followers: int | str) -> None:
        """artists.followers (BigInteger) takes values beyond 32 bits, up to 2**63 - 1."""
        assert int(followers) == build("artists", {**ARTIST, "followers": followers})["followers"]

    @pytest.mark.parametrize("value", [2**31 - 1, -(2**31), str(2**31 - 1)])
    def test_an_integer_column_accepts_the_32_bit_bounds(self, value: int | str) -> None:
        """The extremes of a 32-bit Integer (with no CHECK narrowing it) are accepted."""
        probe = Table("probe", MetaData(schema=TENANT_SCHEMA), Column("n", Integer))

        assert (int(value),) == RowBuilder(probe).build(SourceRecord({"n": value}, 1, 1), path="x")

    def test_a_string_at_its_column_length_is_accepted(self) -> None:
        """A value exactly as long as the column allows is kept."""
        assert "x" * 22 == build("artists", {**ARTIST, "artist_id": "x" * 22})["artist_id"]

    def test_an_int_too_large_for_a_float_column_is_refused(self) -> None:
        """A huge integer in a Float column is a RecordError, not a crash."""
        error = refusal("audio_features", {**AUDIO_FEATURES, "tempo": 10**400})

        assert "tempo" == error.column

    @pytest.mark.parametrize("column", ["n", "ratio", "cost", "amount"])
    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("1_0", id="underscore"),
            pytest.param("1_0.5", id="underscore-in-a-fraction"),
            pytest.param("\uff11\uff12", id="full-width-digits"),
            pytest.param("\u0661\u0662", id="arabic-indic-digits"),
            pytest.param("12\u00a0", id="no-break-space"),
        ],
    )
    def test_a_number_with_underscores_or_non_ascii_digits_is_refused_naming_line_and_column(
        self, column: str, text: str
    ) -> None:
        """float() and Decimal() read ``1_0.5`` as 10.5 and full-width ``12`` as 12; as
        CSV text (or any text) in an integer, float or numeric column, it is refused."""
        with pytest.raises(RecordError) as caught:
            RowBuilder(NUMBERS).build(SourceRecord({column: text}, 3, 2), path="numbers.csv")

        error = caught.value
        assert ("numbers.csv", 3, column, "type") == (
            error.path,
            error.line,
            error.column,
            error.rule,
        )

    @pytest.mark.parametrize("text", [" 12 ", "\t12", "12\r\n"])
    def test_a_number_in_surrounding_ascii_whitespace_is_read_as_the_number(
        self, text: str
    ) -> None:
        """Text around a number may be padded, as around an integer, date, UUID or
        boolean: the number is read."""
        record = SourceRecord(dict.fromkeys(("n", "ratio", "cost", "amount"), text), 3, 2)

        assert (12, 12.0, Decimal("12.00"), Decimal(12)) == RowBuilder(NUMBERS).build(
            record, path="numbers.csv"
        )


class TestWhere:
    def test_an_error_names_file_table_line_and_column(self) -> None:
        """A RecordError carries path, table, line and column, and prints them."""
        error = refusal("users", {**USER, "country": "GBR"}, line=12)

        assert ("users.jsonl", "users", 12, None, "country") == (
            error.path,
            error.table,
            error.line,
            error.record,
            error.column,
        )
        assert "users.jsonl:12, column country: longer than 2 characters (3) [length]" == str(error)

    def test_an_error_without_a_line_names_the_record(self) -> None:
        """Records from JSON arrays (no line) are located by record number."""
        error = refusal("users", {**USER, "country": "GBR"}, line=None)

        assert (None, 3) == (error.line, error.record)
        assert (
            "users.jsonl, record 3, column country: longer than 2 characters (3) [length]"
            == str(error)
        )


PLAYLIST: dict[str, Any] = {
    "playlist_id": "37i9dQZF1DXcBWIGoYBM5M",
    "owner_id": "u1",
    "name": "Hits",
}


class TestRules:
    @pytest.mark.parametrize(
        ("table", "values", "column", "rule"),
        [
            pytest.param(
                "users",
                {k: v for k, v in USER.items() if k != "display_name"},
                "display_name",
                "not_null",
                id="missing",
            ),
            pytest.param("tracks", {**TRACK, "name": None}, "name", "not_null", id="null"),
            pytest.param(
                "artists", {**ARTIST, "mood": "x"}, "mood", "unknown_column", id="unknown"
            ),
            pytest.param(
                "tracks", {**TRACK, "duration_ms": "long"}, "duration_ms", "type", id="type"
            ),
            pytest.param(
                "users", {**USER, "display_name": "a\x00b"}, "display_name", "type", id="nul"
            ),
            pytest.param(
                "artists", {**ARTIST, "followers": 2**63}, "followers", "range", id="range"
            ),
            pytest.param(
                "users", {**USER, "display_name": "x" * 201}, "display_name", "length", id="len"
            ),
            pytest.param(
                "users",
                {**USER, "created_at": "2026-01-01T12:00:00"},
                "created_at",
                "timezone",
                id="timezone",
            ),
            pytest.param(
                "tracks",
                {**TRACK, "duration_ms": -5},
                "duration_ms",
                "check:duration_ms",
                id="check",
            ),
            pytest.param(
                "tracks",
                {**TRACK, "duration_ms": "0"},
                "duration_ms",
                "check:duration_ms",
                id="check-csv-text",
            ),
            pytest.param(
                "albums",
                {"album_id": ALBUM_ID, "name": "A", "artist_id": ARTIST_ID, "album_type": "ep"},
                "album_type",
                "check:album_type",
                id="check-in-list",
            ),
            pytest.param(
                "tracks",
                {**TRACK, "album_id": "al1"},
                "album_id",
                "format:spotify_id",
                id="fk-format",
            ),
            pytest.param(
                "users", {**USER, "country": "UK"}, "country", "format:country", id="country"
            ),
            pytest.param(
                "users", {**USER, "email": "ada@example"}, "email", "format:email", id="email"
            ),
        ],
    )
    def test_a_refusal_names_its_rule_column_and_place(
        self, table: str, values: dict[str, Any], column: str, rule: str
    ) -> None:
        """Every refusal carries the rule broken, the column, the file and the line."""
        error = refusal(table, values)

        assert (rule, column, f"{table}.jsonl", 7, table) == (
            error.rule,
            error.column,
            error.path,
            error.line,
            error.table,
        )
        assert str(error).endswith(f"[{rule}]")

    def test_a_check_refusal_shows_the_value_and_the_check(self) -> None:
        """The message says which value broke which CHECK."""
        error = refusal("tracks", {**TRACK, "popularity": 101})

        assert "101 breaks CHECK (popularity >= 0 AND popularity <= 100)" == error.message

    def test_a_format_refusal_shows_the_value_and_the_format(self) -> None:
        """The message says which value is not in which format."""
        error = refusal("tracks", {**TRACK, "isrc": "usrc17607839"})

        assert error.message.startswith("'usrc17607839' is not an ISRC")

    @pytest.mark.parametrize("column", ["duration_ms", "popularity", "track_number", "isrc"])
    def test_null_passes_a_check_and_a_format_as_in_sql(self, column: str) -> None:
        """A NULL in a nullable column with a CHECK or a format is accepted."""
        assert build("tracks", {**TRACK, column: None})[column] is None

    def test_values_at_the_bounds_of_a_check_are_accepted(self) -> None:
        """popularity 0 and 100 pass ``popularity >= 0 AND popularity <= 100``."""
        assert [0, 100, 100] == [
            build("tracks", {**TRACK, "popularity": value})["popularity"]
            for value in (0, 100, "100")
        ]

    def test_an_unbounded_text_column_is_capped_by_default_at_one_mib(self) -> None:
        """A 10 MB description is a RecordError naming the column, not a database error."""
        error = refusal("playlists", {**PLAYLIST, "description": "x" * 10_000_000})

        assert ("description", "length") == (error.column, error.rule)
        assert "longer than 1048576 characters (10000000)" == error.message
        assert (
            "x" * (1 << 20)
            == build("playlists", {**PLAYLIST, "description": "x" * (1 << 20)})["description"]
        )

    def test_the_text_cap_is_configurable(self) -> None:
        """``max_text_length`` sets the cap of every unbounded Text column."""
        builder = RowBuilder(TABLES["playlists"], max_text_length=100)

        def description(text: str) -> Any:
            record = SourceRecord({**PLAYLIST, "description": text}, 3, 1)
            return builder.build(record, path="playlists.jsonl")[
                builder.columns.index("description")
            ]

        assert "y" * 100 == description("y" * 100)
        with pytest.raises(RecordError) as caught:
            description("y" * 101)
        assert ("description", "length") == (caught.value.column, caught.value.rule)

    def test_a_deeply_nested_json_value_is_a_record_error(self) -> None:
        """Nesting deeper than JSON serialisation allows is refused, not a RecursionError."""
        nested: list[Any] = []
        for _ in range(100_000):
            nested = [nested]

        error = refusal("artists", {**ARTIST, "genres": nested})

        assert ("genres", "type") == (error.column, error.rule)
        assert "nested too deeply" in error.message

    def test_a_builder_lists_the_checks_it_enforces(self) -> None:
        """RowBuilder.checks are the table's compiled CHECKs."""
        assert {"duration_ms", "popularity", "track_number"} == {
            check.column for check in RowBuilder(TABLES["tracks"]).checks
        }


def _column_table(column: Column[Any]) -> Table:
    return Table("probe", MetaData(schema=TENANT_SCHEMA), column)


def _built(column: Column[Any], value: Any) -> Any:
    table = _column_table(column)
    return RowBuilder(table).build(SourceRecord({column.name: value}, 4, 4), path="probe.jsonl")[0]


def _refused(column: Column[Any], value: Any) -> RecordError:
    with pytest.raises(RecordError) as caught:
        _built(column, value)
    return caught.value


class TestNaiveTimestamps:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("2002-08-14T09:30:00", datetime(2002, 8, 14, 9, 30), id="text"),
            pytest.param(
                "2002-08-14 09:30:00.5", datetime(2002, 8, 14, 9, 30, 0, 500000), id="space"
            ),
            pytest.param("2002-08-14", datetime(2002, 8, 14), id="date-text"),
            pytest.param(datetime(2002, 8, 14, 9, 30), datetime(2002, 8, 14, 9, 30), id="datetime"),
            pytest.param(date(2002, 8, 14), datetime(2002, 8, 14), id="date-object"),
        ],
    )
    def test_a_naive_column_keeps_the_timestamp_as_given(
        self, value: Any, expected: datetime
    ) -> None:
        """DateTime(timezone=False) takes timestamps without offset and keeps their wall time."""
        actual = _built(Column("HireDate", DateTime(timezone=False)), value)

        assert (expected, None) == (actual, actual.tzinfo)

    @pytest.mark.parametrize(
        "value",
        [
            "2002-08-14T09:30:00+00:00",
            "2002-08-14T09:30:00Z",
            "2002-08-14T09:30:00+02:00",
            datetime(2002, 8, 14, 9, 30, tzinfo=UTC),
        ],
    )
    def test_a_naive_column_refuses_a_timestamp_with_an_offset(self, value: Any) -> None:
        """An offset is refused, not converted: the column's zone is the application's to know."""
        error = _refused(Column("HireDate", DateTime(timezone=False)), value)

        assert ("probe.jsonl", 4, "HireDate", "timezone") == (
            error.path,
            error.line,
            error.column,
            error.rule,
        )
        assert "without time zone" in error.message

    def test_an_aware_column_still_refuses_a_timestamp_without_offset(self) -> None:
        """DateTime(timezone=True) keeps needing the offset."""
        error = _refused(Column("CreatedAt", DateTime(timezone=True)), "2002-08-14T09:30:00")

        assert ("CreatedAt", "timezone") == (error.column, error.rule)

    def test_a_naive_column_refuses_what_is_not_a_timestamp(self) -> None:
        """Text that is no ISO 8601 timestamp is a type error, as for aware columns."""
        error = _refused(Column("HireDate", DateTime), "last tuesday")

        assert ("HireDate", "type") == (error.column, error.rule)


class TestWidths:
    @pytest.mark.parametrize("value", [2**15 - 1, -(2**15), "32767"])
    def test_a_smallint_column_accepts_its_16_bit_bounds(self, value: int | str) -> None:
        """SMALLINT holds -32768..32767."""
        assert int(value) == _built(Column("LineNo", SmallInteger), value)

    @pytest.mark.parametrize("value", [2**15, -(2**15) - 1, "40000"])
    def test_a_smallint_column_refuses_what_a_16_bit_integer_cannot_hold(
        self, value: int | str
    ) -> None:
        """Beyond 16 bits PostgreSQL refuses the value and SQLite would keep it: refused."""
        error = _refused(Column("LineNo", SmallInteger), value)

        assert ("LineNo", "range") == (error.column, error.rule)

    @pytest.mark.parametrize(
        ("value", "stored"),
        [
            ("99999999.99", "99999999.99"),
            ("-99999999.99", "-99999999.99"),
            ("99999999.994", "99999999.99"),
            (0, "0.00"),
            ("0.001", "0.00"),
            (12345678.9, "12345678.90"),
        ],
    )
    def test_a_numeric_column_accepts_what_rounds_into_its_precision(
        self, value: Any, stored: str
    ) -> None:
        """NUMERIC(10, 2) takes values that round to at most 8 digits before the point."""
        built = _built(Column("Total", Numeric(10, 2)), value)

        assert (Decimal(stored), Decimal(stored).as_tuple()) == (built, built.as_tuple())

    @pytest.mark.parametrize(
        ("value", "stored"),
        [("1.005", "1.01"), ("-1.005", "-1.01"), ("1.0049", "1.00"), ("2.675", "2.68")],
    )
    def test_a_numeric_column_rounds_to_its_scale_half_away_from_zero(
        self, value: str, stored: str
    ) -> None:
        """As PostgreSQL stores it, so that the load's checksum is of the stored value."""
        assert Decimal(stored) == _built(Column("Total", Numeric(10, 2)), value)

    @pytest.mark.parametrize("value", ["100000000", "99999999.995", "-123456789012.5", 1e9])
    def test_a_numeric_column_refuses_what_overflows_its_precision(self, value: Any) -> None:
        """A value PostgreSQL would round past the precision is refused on both backends."""
        error = _refused(Column("Total", Numeric(10, 2)), value)

        assert ("Total", "range") == (error.column, error.rule)
        assert "NUMERIC(10, 2)" in error.message

    @pytest.mark.parametrize(
        ("column_type", "value", "stored"),
        [
            (Numeric(29, 0), "9" * 29, "9" * 29),
            (Numeric(40, 10), "9" * 30 + ".4", "9" * 30 + ".4000000000"),
        ],
    )
    def test_a_numeric_column_past_28_digits_takes_what_fits_its_precision(
        self, column_type: Numeric[Decimal], value: str, stored: str
    ) -> None:
        """The range check does not round the value to the default context's 28 digits."""
        built = _built(Column("Total", column_type), value)

        assert (Decimal(stored).as_tuple(), True) == (built.as_tuple(), built == Decimal(stored))

    @pytest.mark.parametrize("column_type", [REAL(), Float(24), Float(precision=10)])
    def test_a_four_byte_float_column_keeps_the_nearest_four_byte_float(
        self, column_type: Float[float]
    ) -> None:
        """As PostgreSQL's ``real`` stores it (SQLite keeps whatever it is given)."""
        assert 0.10000000149011612 == _built(Column("Ratio", column_type), "0.1")

    @pytest.mark.parametrize(
        "column_type", [Float(), Double(), Double(precision=10), DOUBLE_PRECISION(precision=10)]
    )
    def test_a_double_float_column_keeps_the_value(self, column_type: Float[float]) -> None:
        """PostgreSQL stores a ``Double`` as double precision whatever its ``p``."""
        assert 0.1 == _built(Column("Ratio", column_type), "0.1")

    def test_a_default_of_a_column_read_back_as_floats_stays_a_float(self) -> None:
        """``asdecimal=False``: the database gives floats back, so no ``Decimal``."""
        table = Table(
            "prices", MetaData(), Column("Price", Numeric(10, 2, asdecimal=False), default=0.5)
        )

        built = RowBuilder(table).build(SourceRecord({}, 4, 4), path="probe.jsonl")

        assert [(0.5, float)] == [(v, type(v)) for v in built]

    def test_a_four_byte_float_columns_default_is_the_four_byte_float(self) -> None:
        table = Table("ratios", MetaData(), Column("Ratio", REAL(), default=0.1))

        built = RowBuilder(table).build(SourceRecord({}, 4, 4), path="probe.jsonl")

        assert (0.10000000149011612,) == built

    @pytest.mark.parametrize("value", [1e39, "-1e39", 1e-46])
    def test_a_four_byte_float_column_refuses_what_overflows_or_underflows_it(
        self, value: Any
    ) -> None:
        error = _refused(Column("Ratio", REAL()), value)

        assert ("Ratio", "range") == (error.column, error.rule)
        assert "REAL" in error.message

    @pytest.mark.parametrize(
        ("column_type", "value", "stored"),
        [
            # What PostgreSQL 15 stores for each (SELECT '...'::timestamp(p)).
            (
                postgresql.TIMESTAMP(timezone=True, precision=3),
                "2024-01-01T00:00:00.1235+00:00",
                datetime(2024, 1, 1, 0, 0, 0, 124000, tzinfo=UTC),
            ),
            (
                postgresql.TIMESTAMP(timezone=True, precision=3),
                "1999-12-31T23:59:59.9995+00:00",
                datetime(1999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
            ),
            (
                postgresql.TIMESTAMP(precision=0),
                "2024-01-01T00:00:00.5",
                datetime(2024, 1, 1, 0, 0, 1),
            ),
            (postgresql.TIMESTAMP(precision=0), "1999-01-01T00:00:00.5", datetime(1999, 1, 1)),
        ],
    )
    def test_a_timestamp_column_with_fewer_places_rounds_as_postgresql_stores_it(
        self, column_type: postgresql.TIMESTAMP, value: str, stored: datetime
    ) -> None:
        """Half away from zero, counted from 2000-01-01 (so the load's checksum is of the
        stored value, and SQLite stores the same)."""
        assert stored == _built(Column("At", column_type), value)

    def test_a_numeric_column_without_precision_takes_any_finite_number(self) -> None:
        """Unbounded NUMERIC has no range to check."""
        assert Decimal("1e40") == _built(Column("Total", Numeric()), "1e40")


def test_a_schema_declaring_one_enum_name_with_two_sets_of_values_is_refused() -> None:
    """The database would make one type of that name: the second column's values would
    be refused (or let in) by the first's."""
    metadata = MetaData()
    Table(
        "a",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("m", Enum("x", "y", name="mood")),
    )
    Table(
        "b",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("m", Enum("x", "z", name="mood")),
    )

    with pytest.raises(SettingsError) as refused:
        check_loadable(metadata)

    assert "'mood' on a.m ('x', 'y') and on b.m ('x', 'z')" in str(refused.value)


def test_one_enum_name_used_by_two_columns_with_the_same_values_is_fine() -> None:
    metadata = MetaData()
    for name in ("a", "b"):
        Table(
            name,
            metadata,
            Column("id", Integer, primary_key=True),
            Column("m", Enum("x", "y", name="mood")),
        )

    check_loadable(metadata)


@pytest.mark.parametrize(
    ("declared", "limit"),
    [
        pytest.param(CHAR(), 1, id="char-without-length"),
        pytest.param(Text().with_variant(CHAR(3), "postgresql"), 3, id="char-variant"),
        pytest.param(String(10).with_variant(CHAR(3), "postgresql"), 3, id="shorter-variant"),
        pytest.param(String(5), 5, id="varchar"),
        pytest.param(Text(), 99, id="text"),
    ],
)
def test_a_columns_text_limit_is_the_shortest_its_backends_keep(declared: Any, limit: int) -> None:
    """``CHAR`` alone is ``CHAR(1)``; a ``CHAR(3)`` variant for PostgreSQL holds 3
    characters there, so 3 on both backends (it was 1)."""
    assert limit == text_limit(Column("c", declared), 99)
