"""Schema-derived rules: CHECK constraints compiled to Python, and domain formats."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import CheckConstraint, Column, Float, Integer, MetaData, String, Table

from tenancy_fixtures.errors import RecordError
from tenancy_fixtures.loading import rules
from tenancy_fixtures.loading.readers import SourceRecord
from tenancy_fixtures.loading.records import RowBuilder
from tenancy_fixtures.loading.rules import (
    COUNTRY_CODES,
    FORMAT_INFO,
    FORMATS,
    ColumnCheck,
    ValueFormat,
    column_format,
    compile_check,
    register_value_format,
    table_checks,
    uncompiled_checks,
)
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.store.base import TENANT_SCHEMA

SCHEMA = spotify_metadata()
TABLES: dict[str, Table] = {t.name: t for t in SCHEMA.sorted_tables}
#: A format a user's own domain might register.
ORDER_CODE = ValueFormat("order_code", "v.startswith('ORD-')", "an order code (ORD-...)")


def one_column_table(column: Column[Any], *checks: str) -> Table:
    """A table holding a copy of ``column`` (nullable) and the CHECKs given as SQL."""
    metadata = MetaData(schema=TENANT_SCHEMA)
    copy = Column(column.name, column.type, nullable=True, info=dict(column.info))
    return Table(
        "probe",
        metadata,
        copy,
        *(CheckConstraint(sql, name=f"c{i}") for i, sql in enumerate(checks)),
    )


def refusal(table: Table, values: dict[str, Any]) -> RecordError:
    """The RecordError building a row of ``table`` from ``values`` raises, at line 5."""
    with pytest.raises(RecordError) as caught:
        RowBuilder(table).build(SourceRecord(values, 5, 1), path=f"{table.name}.jsonl")
    return caught.value


def accepted(table: Table, values: dict[str, Any]) -> tuple[Any, ...]:
    """The row built from ``values``."""
    return RowBuilder(table).build(SourceRecord(values, 5, 1), path=f"{table.name}.jsonl")


class TestCompiledChecks:
    def test_every_check_of_the_built_in_schema_is_compiled(self) -> None:
        """No CHECK of the Spotify schema is left to the database alone."""
        assert [] == uncompiled_checks(SCHEMA)

    def test_the_schema_has_checks_to_compile(self) -> None:
        """The compiled list covers every table that declares a CHECK."""
        compiled = {check.rule for table in SCHEMA.sorted_tables for check in table_checks(table)}

        assert {
            "check:duration_ms",
            "check:popularity",
            "check:danceability_unit",
            "check:tempo",
            "check:key",
            "check:mode",
            "check:product",
            "check:album_type",
        } <= compiled

    @pytest.mark.parametrize(
        ("sql", "column", "conditions"),
        [
            pytest.param("c >= 0 AND c <= 1", "c", ((">=", 0), ("<=", 1)), id="range"),
            pytest.param("c > 0", "c", ((">", 0),), id="positive"),
            pytest.param('"c" >= -1 AND "c" <= 11', "c", ((">=", -1), ("<=", 11)), id="quoted"),
            pytest.param("c IN (0, 1)", "c", (("in", frozenset({0, 1})),), id="in-numbers"),
            pytest.param("0 < c", "c", ((">", 0),), id="literal-first"),
            pytest.param("(c >= 2) AND (c < 9.5)", "c", ((">=", 2), ("<", 9.5)), id="parens"),
            pytest.param("c BETWEEN 3 AND 7", "c", ((">=", 3), ("<=", 7)), id="between"),
            pytest.param("c = 4", "c", (("==", 4),), id="equals"),
            pytest.param("c <> 4", "c", (("!=", 4),), id="not-equal"),
            pytest.param("c >= 0 and c <= 1", "c", ((">=", 0), ("<=", 1)), id="lowercase-and"),
        ],
    )
    def test_simple_forms_compile(
        self, sql: str, column: str, conditions: tuple[tuple[str, Any], ...]
    ) -> None:
        """Comparisons with numbers, IN lists, BETWEEN and AND compile to conditions."""
        table = one_column_table(Column("c", Float), sql)
        (constraint,) = [c for c in table.constraints if isinstance(c, CheckConstraint)]

        compiled = compile_check(constraint, table)

        assert compiled is not None
        assert [(column, conditions)] == [(c.column, c.conditions) for c in compiled]

    def test_an_in_list_of_strings_compiles_for_a_text_column(self) -> None:
        """``c IN ('a', 'b')`` on a text column is a set of strings (quotes unescaped)."""
        table = one_column_table(Column("c", String(10)), "c IN ('a', 'it''s')")

        assert [ColumnCheck("check:c0", "c", "c IN ('a', 'it''s')", (("in", {"a", "it's"}),))] == (
            table_checks(table)
        )

    @pytest.mark.parametrize(
        "sql",
        [
            pytest.param("c > 0 OR c < -5", id="or"),
            pytest.param("length(c) > 3", id="function"),
            pytest.param("c LIKE 'x%'", id="like"),
            pytest.param("c > d", id="two-columns"),
            pytest.param("c IS NOT NULL", id="is-not-null"),
            pytest.param("NOT c > 0", id="not"),
            pytest.param("c + 1 > 0", id="arithmetic"),
            pytest.param("c > 'a'", id="text-ordering"),
            pytest.param("zz > 0", id="unknown-column"),
            pytest.param("c IN (1, 'a')", id="mixed-in-list"),
            pytest.param("c < 1" + "0" * 400 + ".5", id="beyond-float-range"),
        ],
    )
    def test_forms_it_cannot_compile_are_left_to_the_database_and_listed(self, sql: str) -> None:
        """A CHECK outside the compiled forms is not compiled, and uncompiled_checks says so."""
        table = one_column_table(Column("c", Integer), sql)

        assert [] == table_checks(table)
        assert [f"probe.c0: {sql}"] == uncompiled_checks([table])

    def test_a_fractional_bound_on_an_integer_column_keeps_its_meaning(self) -> None:
        """``c >= 0.5`` on integers refuses 0 and takes 1 (no rounding of the bound)."""
        table = one_column_table(Column("c", Integer), "c >= 0.5")

        assert (1,) == accepted(table, {"c": 1})
        assert "check:c0" == refusal(table, {"c": 0}).rule

    def test_an_integer_bound_beyond_float_range_still_works_on_a_float_column(self) -> None:
        """A huge integer literal is compared exactly, not converted to a float."""
        table = one_column_table(Column("c", Float), "c < 1" + "0" * 400)

        assert (5.0,) == accepted(table, {"c": 5.0})

    def test_a_check_on_two_columns_is_split_per_column(self) -> None:
        """``a >= 0 AND b >= 0`` becomes one check per column, both named for the CHECK."""
        metadata = MetaData(schema=TENANT_SCHEMA)
        table = Table(
            "pair",
            metadata,
            Column("a", Integer),
            Column("b", Integer),
            CheckConstraint("a >= 0 AND b >= 0", name="both"),
        )

        assert [("check:both", "a"), ("check:both", "b")] == [
            (c.rule, c.column) for c in table_checks(table)
        ]
        assert "b" == refusal(table, {"a": None, "b": -1}).column
        assert (None, 3) == accepted(table, {"a": None, "b": 3})

    @pytest.mark.parametrize(
        ("table", "check"),
        [
            pytest.param(table.name, check, id=f"{table.name}.{check.column}.{check.rule}")
            for table in SCHEMA.sorted_tables
            for check in table_checks(table)
        ],
    )
    def test_each_schema_check_refuses_a_value_breaking_it_and_lets_null_pass(
        self, table: str, check: ColumnCheck
    ) -> None:
        """For every compiled CHECK: a breaking value is refused with its rule; NULL passes."""
        column = TABLES[table].columns[check.column]
        probe = one_column_table(column, check.sql)

        for bad in _breaking_values(check):
            error = refusal(probe, {check.column: bad})
            assert (check.column, "check:c0", 5) == (error.column, error.rule, error.line)
            assert check.sql in error.message
        assert (None,) == accepted(probe, {check.column: None})


def _breaking_values(check: ColumnCheck) -> list[Any]:
    """One value breaking each condition of ``check``."""
    values: list[Any] = []
    for op, operand in check.conditions:
        if op in (">=", "<"):
            values.append(operand - 1 if op == ">=" else operand)
        elif op in ("<=", ">"):
            values.append(operand + 1 if op == "<=" else operand)
        elif op == "in":
            values.append("zz" if all(isinstance(v, str) for v in operand) else max(operand) + 1)
        elif op == "==":
            values.append(operand + 1)
        else:
            values.append(operand)
    return values


class TestChecksInTheSchema:
    @pytest.mark.parametrize(
        ("column", "good", "bad"),
        [
            pytest.param("danceability", [0.0, 0.5, 1.0, 0, 1], [-0.001, 1.001, 2], id="unit"),
            pytest.param("tempo", [0.1, 250.0], [0.0, -1.0], id="tempo"),
            pytest.param("key", [-1, 0, 11], [-2, 12], id="key"),
            pytest.param("mode", [0, 1, "1"], [2, -1, "2"], id="mode"),
            pytest.param("time_signature", [3, 7, "4"], [2, 8, "8"], id="time-signature"),
        ],
    )
    def test_audio_feature_bounds(self, column: str, good: list[Any], bad: list[Any]) -> None:
        """Audio features in [0, 1], tempo > 0, key -1..11, mode 0/1, time signature 3..7."""
        table = TABLES["audio_features"]
        probe = one_column_table(
            table.columns[column], *[c.sql for c in table_checks(table) if c.column == column]
        )

        assert [float(v) if column in ("danceability", "tempo") else int(v) for v in good] == [
            accepted(probe, {column: v})[0] for v in good
        ]
        assert {"check:c0"} == {refusal(probe, {column: v}).rule for v in bad}

    def test_a_text_in_list_refuses_values_outside_it(self) -> None:
        """users.product takes only the listed products."""
        probe = one_column_table(
            TABLES["users"].columns["product"],
            *[c.sql for c in table_checks(TABLES["users"]) if c.column == "product"],
        )

        assert ("family",) == accepted(probe, {"product": "family"})
        assert "check:c0" == refusal(probe, {"product": "gold"}).rule


VALID_ID = "4uLU6hMCjMI75M1A2tKUQC"

FORMAT_CASES = {
    "spotify_id": (
        [VALID_ID, "0" * 22, "aZ09aZ09aZ09aZ09aZ09aZ"],
        [VALID_ID[:21], VALID_ID + "x", VALID_ID[:21] + "-", VALID_ID[:21] + "é", "", " " * 22],
    ),
    "spotify_uri": (
        [
            f"spotify:track:{VALID_ID}",
            f"spotify:album:{VALID_ID}",
            f"spotify:artist:{VALID_ID}",
            f"spotify:playlist:{VALID_ID}",
            f"spotify:episode:{VALID_ID}",
            f"spotify:show:{VALID_ID}",
            "spotify:user:spotify",
            "spotify:user:ec1b8ca1-f91e-4d4c-9ff4-9b7889463e85",
            "spotify:user:first.last_99",
        ],
        [
            f"spotify:song:{VALID_ID}",
            f"spotify:track:{VALID_ID[:21]}",
            f"https://open.spotify.com/track/{VALID_ID}",
            f"Spotify:track:{VALID_ID}",
            "spotify:user:",
            "spotify:user:has space",
            "spotify:user:" + "u" * 65,
            f"spotify:track:{VALID_ID}:extra",
        ],
    ),
    "isrc": (
        ["USRC17607839", "BRW1A2140954", "GBAYE0000001"],
        ["US-RC1-76-07839", "usrc17607839", "USRC1760783", "USRC176078390", "USRC1760783X"],
    ),
    "country": (
        ["GB", "US", "SE", "XK", "AX", "SS"],
        ["UK", "EU", "XX", "gb", "G", "GBR", "ZZ"],
    ),
    "email": (
        ["ada@example.com", "first.last+tag@mail.example.co.uk", "ü@bücher.de"],
        [
            "ada.example.com",
            "a@b@example.com",
            "@example.com",
            "ada@example",
            "ada @example.com",
            "ada@example..com",
            "ada@.example.com",
            "ada@example.com.",
            "ada@exam\tple.com",
            "a" * 310 + "@example.com",
        ],
    ),
    "release_date": (
        ["1999", "1999-12", "2020-02-29", "0001-01-01"],
        ["99", "1999-13", "1999-1", "2021-02-29", "1999/12/01", "0000", "19991201", "1999-W01-1"],
    ),
}


class TestFormats:
    def test_the_country_list_is_every_assigned_iso_code_plus_kosovo(self) -> None:
        """249 assigned ISO 3166-1 alpha-2 codes and XK, all two capital letters."""
        assert 250 == len(COUNTRY_CODES)
        assert all(len(code) == 2 and code.isupper() for code in COUNTRY_CODES)

    def test_every_format_has_cases_here(self) -> None:
        """A format added without tests fails this test."""
        assert set(FORMATS) == set(FORMAT_CASES)

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            pytest.param(name, value, id=f"{name}:{value[:30]}")
            for name, (good, _) in FORMAT_CASES.items()
            for value in good
        ],
    )
    def test_a_valid_value_is_accepted(self, name: str, value: str) -> None:
        """Well-formed values pass the format, through a row builder too."""
        probe = one_column_table(Column("v", String(400), info={FORMAT_INFO: name}))

        assert FORMATS[name].accepts(value)
        assert (value,) == accepted(probe, {"v": value})

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            pytest.param(name, value, id=f"{name}:{value[:30]}")
            for name, (_, bad) in FORMAT_CASES.items()
            for value in bad
        ],
    )
    def test_a_malformed_value_is_refused_naming_the_format(self, name: str, value: str) -> None:
        """Malformed values are a RecordError with rule format:<name>, column and line."""
        probe = one_column_table(Column("v", String(400), info={FORMAT_INFO: name}))

        error = refusal(probe, {"v": value})

        assert not FORMATS[name].accepts(value)
        assert ("v", f"format:{name}", 5, "probe.jsonl") == (
            error.column,
            error.rule,
            error.line,
            error.path,
        )
        assert FORMATS[name].description in error.message

    def test_a_value_breaking_the_format_of_the_schema_columns_is_refused(self) -> None:
        """The schema names the formats: users.email and users.country among them."""
        assert {
            ("users", "email"): "email",
            ("users", "country"): "country",
            ("tracks", "isrc"): "isrc",
            ("albums", "release_date"): "release_date",
            ("listening_events", "context_uri"): "spotify_uri",
            ("artists", "artist_id"): "spotify_id",
        } == {
            (t, c): form.name
            for (t, c) in [
                ("users", "email"),
                ("users", "country"),
                ("tracks", "isrc"),
                ("albums", "release_date"),
                ("listening_events", "context_uri"),
                ("artists", "artist_id"),
            ]
            if (form := column_format(TABLES[t].columns[c])) is not None
        }

    @pytest.mark.parametrize(
        ("table", "column"),
        [
            ("tracks", "album_id"),
            ("tracks", "artist_id"),
            ("albums", "artist_id"),
            ("audio_features", "track_id"),
            ("playlist_tracks", "track_id"),
            ("listening_events", "track_id"),
        ],
    )
    def test_a_foreign_key_takes_the_format_of_the_column_it_references(
        self, table: str, column: str
    ) -> None:
        """tracks.album_id is a Spotify id because albums.album_id is."""
        form = column_format(TABLES[table].columns[column])

        assert form is not None
        assert "spotify_id" == form.name

    def test_a_foreign_key_to_a_column_without_format_has_none(self) -> None:
        """listening_events.user_id references users.user_id, which names no format."""
        assert column_format(TABLES["listening_events"].columns["user_id"]) is None

    def test_an_unknown_format_name_is_refused_when_the_builder_is_made(self) -> None:
        """A typo in a column's format fails loudly, naming table, column and format."""
        probe = one_column_table(Column("v", String(10), info={FORMAT_INFO: "spotifyid"}))

        with pytest.raises(TypeError, match=r"probe\.v: unknown format 'spotifyid'"):
            RowBuilder(probe)

    def test_a_format_on_a_column_that_is_not_text_is_refused(self) -> None:
        """Formats check text; naming one on an Integer column fails loudly."""
        probe = one_column_table(Column("v", Integer, info={FORMAT_INFO: "isrc"}))

        with pytest.raises(TypeError, match="needs a text column"):
            RowBuilder(probe)


class TestValueFormatRegistry:
    @pytest.fixture(autouse=True)
    def _own_registry(self) -> Iterator[None]:
        """What each test registers is gone afterwards (the registry is one dict, which
        ``rules`` and ``value_formats`` both name)."""
        saved = dict(FORMATS)
        yield
        FORMATS.clear()
        FORMATS.update(saved)

    def test_a_domain_registers_a_value_format_its_columns_can_name(self) -> None:
        """A registered format is checked by the row builder like the engine's own."""
        register_value_format(ORDER_CODE)
        probe = one_column_table(Column("v", String(20), info={FORMAT_INFO: "order_code"}))

        error = refusal(probe, {"v": "X-1"})

        assert ("ORD-1",) == accepted(probe, {"v": "ORD-1"})
        assert ("v", "format:order_code") == (error.column, error.rule)

    def test_registering_the_same_value_format_again_changes_nothing(self) -> None:
        """Registration is idempotent, as a domain's register() must be."""
        register_value_format(ORDER_CODE)
        before = dict(rules.FORMATS)

        assert ORDER_CODE is register_value_format(ORDER_CODE)
        assert before == rules.FORMATS

    @pytest.mark.parametrize(
        ("form", "message"),
        [
            pytest.param(
                ValueFormat("email", "True", "anything"),
                "value format 'email' is registered already",
                id="taken-name",
            ),
            pytest.param(
                ValueFormat("other", "FORMAT_EMAIL(v)", "x", {"FORMAT_EMAIL": str.isalpha}),
                "value format 'other' uses names another format uses: FORMAT_EMAIL",
                id="taken-expression-name",
            ),
        ],
    )
    def test_a_value_format_clashing_with_a_registered_one_is_refused(
        self, form: ValueFormat, message: str
    ) -> None:
        """A second format under a name, or sharing an expression name, is a ValueError."""
        with pytest.raises(ValueError, match=message):
            register_value_format(form)

        assert FORMATS == rules.FORMATS


def test_a_checks_sql_names_columns_by_name_not_by_key() -> None:
    """``Column("a", key="b")``: ``CHECK (a > 0)`` is about the column named ``a`` (it
    was compiled against the column whose key is ``a``, and checked the wrong one)."""
    table = Table(
        "swapped",
        MetaData(),
        Column("a", Integer, key="b"),
        Column("b", Integer, key="a"),
        CheckConstraint("a > 0", name="a_positive"),
    )
    assert ["a"] == [check.column for check in table_checks(table)]
