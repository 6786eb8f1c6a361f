"""Streaming readers: JSON arrays, JSON Lines, CSV and YAML, plain or gzipped."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tenancy_fixtures.errors import FixtureFormatError, RecordError
from tenancy_fixtures.loading.fixture_sets import FixtureFile, open_fixture_set
from tenancy_fixtures.loading.readers import (
    SourceRecord,
    iter_records,
    json_lines_blocks,
    json_lines_records,
    yaml_items,
)
from tenancy_fixtures.spotify.schema import spotify_metadata


def fixture_file(directory: Path, name: str, data: bytes, *, gzipped: bool = False) -> FixtureFile:
    """Write ``data`` as the only file of a fixture set and return its FixtureFile."""
    directory.mkdir(parents=True, exist_ok=True)
    if gzipped:
        name, data = name + ".gz", gzip.compress(data)
    (directory / name).write_bytes(data)
    fixture_set = open_fixture_set(directory, metadata=spotify_metadata())
    assert 1 == len(fixture_set.files)
    return fixture_set.files[0]


def read(directory: Path, name: str, data: bytes, *, gzipped: bool = False) -> list[SourceRecord]:
    """Every record of a one-file set holding ``data``."""
    return list(iter_records(fixture_file(directory, name, data, gzipped=gzipped)))


def read_error(
    directory: Path, name: str, data: bytes, *, gzipped: bool = False
) -> FixtureFormatError:
    """The FixtureFormatError raised while reading a one-file set holding ``data``."""
    with pytest.raises(FixtureFormatError) as caught:
        read(directory, name, data, gzipped=gzipped)
    return caught.value


def where(records: list[SourceRecord]) -> list[tuple[int | None, int, dict[str, Any]]]:
    """``(line, record, values)`` of each record."""
    return [(r.line, r.record, r.values) for r in records]


GOOD_FILES = [
    pytest.param(
        "artists.json",
        b'[\n {"artist_id": "a1", "name": "One", "followers": 5},\n'
        b' {"artist_id": "a2", "name": "Two", "genres": ["jazz"]}\n]\n',
        [
            (None, 1, {"artist_id": "a1", "name": "One", "followers": 5}),
            (None, 2, {"artist_id": "a2", "name": "Two", "genres": ["jazz"]}),
        ],
        id="json",
    ),
    pytest.param(
        "artists.jsonl",
        b'{"artist_id": "a1", "name": "One"}\n\n   \n{"artist_id": "a2", "name": "Two"}\n',
        [
            (1, 1, {"artist_id": "a1", "name": "One"}),
            (4, 2, {"artist_id": "a2", "name": "Two"}),
        ],
        id="jsonl-with-blank-lines",
    ),
    pytest.param(
        "artists.ndjson",
        b'{"artist_id": "a1"}\r\n{"artist_id": "a2"}',
        [(1, 1, {"artist_id": "a1"}), (2, 2, {"artist_id": "a2"})],
        id="ndjson-crlf-no-final-newline",
    ),
    pytest.param(
        "artists.csv",
        b'artist_id,name,popularity\na1,"Fox, Lucas",\n\na2,Two,7\na3,"Say ""hi""",1\n',
        [
            (2, 1, {"artist_id": "a1", "name": "Fox, Lucas", "popularity": None}),
            (4, 2, {"artist_id": "a2", "name": "Two", "popularity": "7"}),
            (5, 3, {"artist_id": "a3", "name": 'Say "hi"', "popularity": "1"}),
        ],
        id="csv",
    ),
    pytest.param(
        "artists.yaml",
        b"- artist_id: a1\n  name: One\n  genres: [jazz, folk]\n- artist_id: a2\n  name: Two\n",
        [
            (None, 1, {"artist_id": "a1", "name": "One", "genres": ["jazz", "folk"]}),
            (None, 2, {"artist_id": "a2", "name": "Two"}),
        ],
        id="yaml",
    ),
    pytest.param(
        "artists.yml",
        b"- {artist_id: a1}\n",
        [(None, 1, {"artist_id": "a1"})],
        id="yml",
    ),
]


class TestReading:
    @pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
    @pytest.mark.parametrize(("name", "data", "expected"), GOOD_FILES)
    def test_each_format_yields_its_records_in_order(
        self,
        tmp_path: Path,
        name: str,
        data: bytes,
        expected: list[tuple[int | None, int, dict[str, Any]]],
        gzipped: bool,
    ) -> None:
        """Every format, plain or gzipped, yields the file's records with where they stand."""
        assert expected == where(read(tmp_path, name, data, gzipped=gzipped))

    def test_a_json_number_with_a_fraction_is_a_float(self, tmp_path: Path) -> None:
        """JSON arrays give floats (not Decimals) for fractional numbers."""
        records = read(tmp_path, "audio_features.json", b'[{"tempo": 120.5, "key": 3}]')

        assert [(120.5, float), (3, int)] == [
            (value, type(value)) for value in records[0].values.values()
        ]

    @pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
    def test_a_quoted_newline_stays_inside_its_csv_field(
        self, tmp_path: Path, gzipped: bool
    ) -> None:
        """A newline inside quotes is part of the value; later records keep their lines."""
        data = b'artist_id,name\na1,"Two\nLines"\na2,"Three\r\nMore\nLines"\na3,Plain\n'

        records = read(tmp_path, "artists.csv", data, gzipped=gzipped)

        assert [
            {"artist_id": "a1", "name": "Two\nLines"},
            {"artist_id": "a2", "name": "Three\r\nMore\nLines"},
            {"artist_id": "a3", "name": "Plain"},
        ] == [r.values for r in records]
        assert (3, 7) == (records[2].record, records[2].line)

    def test_a_multiline_csv_record_is_located_at_its_first_line(self, tmp_path: Path) -> None:
        """A record whose quoted field spans lines is reported at the line it starts on."""
        records = read(tmp_path, "artists.csv", b'artist_id,name\na1,"Two\nLines"\n')

        assert 2 == records[0].line

    def test_a_csv_empty_field_is_none_but_quoted_spaces_are_kept(self, tmp_path: Path) -> None:
        """An empty CSV field reads as None; a field of spaces stays a string."""
        records = read(tmp_path, "artists.csv", b'artist_id,name,label\na1,," "\n')

        assert {"artist_id": "a1", "name": None, "label": " "} == records[0].values

    def test_a_csv_row_of_empty_fields_is_a_record_and_a_blank_line_is_not(
        self, tmp_path: Path
    ) -> None:
        """``,`` is a record of NULLs, read (to load or be refused) at its line; only a
        blank line is skipped. The row of empty fields vanished before."""
        records = read(tmp_path, "artists.csv", b"artist_id,name\na1,One\n,\n\na2,Two\n")

        assert [
            (2, 1, {"artist_id": "a1", "name": "One"}),
            (3, 2, {"artist_id": None, "name": None}),
            (5, 3, {"artist_id": "a2", "name": "Two"}),
        ] == where(records)

    @pytest.mark.parametrize(
        ("name", "data"),
        [
            pytest.param("artists.json", b"[]", id="json-empty-array"),
            pytest.param("artists.jsonl", b"", id="jsonl-empty"),
            pytest.param("artists.jsonl", b"\n\n  \n", id="jsonl-only-blank"),
            pytest.param("artists.csv", b"artist_id,name\n", id="csv-header-only"),
            pytest.param("artists.yaml", b"", id="yaml-empty"),
            pytest.param("artists.yaml", b"[]\n", id="yaml-empty-list"),
        ],
    )
    def test_a_file_without_records_yields_nothing(
        self, tmp_path: Path, name: str, data: bytes
    ) -> None:
        """Files holding no records are empty, not errors."""
        assert [] == read(tmp_path, name, data)

    def test_records_are_read_lazily(self, tmp_path: Path) -> None:
        """The first record is available before a later malformed line is reached."""
        file = fixture_file(tmp_path, "artists.jsonl", b'{"artist_id": "a1"}\n{oops\n')
        records = iter_records(file)

        first = next(records)
        with pytest.raises(FixtureFormatError):
            next(records)

        assert {"artist_id": "a1"} == first.values


#: Files with one line no reader can read: (name, data, that line, what the error says).
UNREADABLE_LINES = [
    pytest.param(
        "artists.jsonl",
        b'{"a": 1}\n{"a": 2}\n{"a": "\xff\xfe"}\n',
        3,
        "unreadable",
        id="jsonl-not-utf8",
    ),
    pytest.param(
        "artists.csv",
        b'artist_id,name\na1,One\na2,"Two\na3,Three\n',
        3,
        "malformed CSV",
        id="unterminated-csv-quote",
    ),
]


class TestFormatErrors:
    def test_a_malformed_json_array_is_refused(self, tmp_path: Path) -> None:
        """A JSON array cut off mid-way is a FixtureFormatError naming the file."""
        error = read_error(tmp_path, "artists.json", b'[{"artist_id": "a1"}, {"artist_id": ')

        assert ("artists.json", "artists") == (error.path, error.table)
        assert "malformed JSON after record 1" in error.message

    @pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
    def test_an_integer_beyond_64_bits_in_a_json_array_is_read_not_called_malformed_json(
        self, tmp_path: Path, gzipped: bool
    ) -> None:
        """ijson's fast number reading refuses it: the array is read again with exact
        numbers (the load then refuses the value naming its record and column)."""
        data = (
            b'[{"artist_id": "a1", "followers": 5},\n'
            b' {"artist_id": "a2", "followers": 18446744073709551616, "x": [0.5, 2]},\n'
            b' {"artist_id": "a3", "followers": -99999999999999999999}]'
        )

        records = read(tmp_path, "artists.json", data, gzipped=gzipped)

        assert [
            (None, 1, {"artist_id": "a1", "followers": 5}),
            (None, 2, {"artist_id": "a2", "followers": 2**64, "x": [0.5, 2]}),
            (None, 3, {"artist_id": "a3", "followers": -99_999_999_999_999_999_999}),
        ] == where(records)
        assert [float, int] == [type(v) for v in records[1].values["x"]]

    def test_a_float_past_the_float_range_after_such_an_integer_is_still_malformed_json(
        self, tmp_path: Path
    ) -> None:
        """Read again with exact numbers, a float past the range is refused as before."""
        data = b'[{"followers": 18446744073709551616}, {"tempo": 1e400}]'

        error = read_error(tmp_path, "artists.json", data)

        expected = "malformed JSON after record 1: parse error: numeric (floating point) overflow"
        assert (2, expected) == (error.record, error.message)

    def test_an_integer_too_long_for_python_in_a_json_array_is_still_a_format_error(
        self, tmp_path: Path
    ) -> None:
        """Past 4,300 digits Python reads no integer: refused as ijson refused it."""
        data = b'[{"artist_id": "a1"}, {"followers": ' + b"9" * 5000 + b"}]"

        error = read_error(tmp_path, "artists.json", data)

        assert 2 == error.record
        assert "integer overflow" in error.message

    @pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
    def test_a_json_file_whose_top_level_is_an_object_is_refused(
        self, tmp_path: Path, gzipped: bool
    ) -> None:
        """A .json file must hold an array, not a single object."""
        data = b'  \n{"artist_id": "a1", "name": "One"}\n'

        error = read_error(tmp_path, "artists.json", data, gzipped=gzipped)

        assert "a .json fixture file must hold a JSON array of objects" == error.message
        assert error.path == ("artists.json.gz" if gzipped else "artists.json")

    def test_a_json_object_after_much_whitespace_is_still_refused(self, tmp_path: Path) -> None:
        """Leading whitespace does not hide a top-level object from the array check."""
        data = b" " * 100 + b'{"artist_id": "a1", "name": "One"}'

        error = read_error(tmp_path, "artists.json", data)

        assert "a .json fixture file must hold a JSON array of objects" == error.message

    def test_a_json_array_item_that_is_not_an_object_is_refused(self, tmp_path: Path) -> None:
        """Each item of the array must be an object; the error names the record."""
        error = read_error(tmp_path, "artists.json", b'[{"artist_id": "a1"}, [1, 2]]')

        assert ("artists.json", 2) == (error.path, error.record)
        assert "expected an object, found list" == error.message

    @pytest.mark.parametrize(
        ("data", "gzipped"),
        [
            pytest.param(b'[{"artist_id": "a1"}, {"artist_id": ', False, id="malformed"),
            pytest.param(b'{"artist_id": "a1"}', False, id="top-level-object"),
            pytest.param(b'[{"artist_id": "a1"}, {"artist_id": "a2"}]', True, id="truncated-gz"),
        ],
    )
    def test_a_json_array_error_says_where_it_is(
        self, tmp_path: Path, data: bytes, gzipped: bool
    ) -> None:
        """Every JSON-array format error carries a line or a record number."""
        if gzipped:
            (tmp_path / "artists.json.gz").write_bytes(gzip.compress(data)[:-12])
            file = open_fixture_set(tmp_path, metadata=spotify_metadata()).files[0]
            with pytest.raises(FixtureFormatError) as caught:
                list(iter_records(file))
            error = caught.value
        else:
            error = read_error(tmp_path, "artists.json", data)

        assert error.line is not None or error.record is not None

    @pytest.mark.parametrize(
        ("data", "line", "message"),
        [
            pytest.param(
                b'{"a": 1}\n\n{"a": 2}\n[1, 2]\n', 4, "expected an object, found list", id="list"
            ),
            pytest.param(b'{"a": 1}\n"text"\n', 2, "expected an object, found str", id="string"),
            pytest.param(b'{"a": 1}\nnull\n', 2, "expected an object, found NoneType", id="null"),
            pytest.param(b'{"a": 1}\n{"a": \n', 2, "malformed JSON", id="malformed"),
            pytest.param(b'{"a": 1} {"a": 2}\n', 1, "malformed JSON", id="two-on-a-line"),
        ],
    )
    def test_a_jsonl_line_that_is_not_an_object_is_refused_at_its_line(
        self, tmp_path: Path, data: bytes, line: int, message: str
    ) -> None:
        """A JSON Lines line that is not one JSON object is refused naming that line."""
        error = read_error(tmp_path, "artists.jsonl", data)

        assert ("artists.jsonl", line) == (error.path, error.line)
        assert message in error.message

    def test_a_truncated_gzip_is_refused(self, tmp_path: Path) -> None:
        """A gzip stream cut short is a FixtureFormatError with file and line."""
        data = gzip.compress(b'{"artist_id": "a1"}\n' * 50)
        (tmp_path / "artists.jsonl.gz").write_bytes(data[: len(data) // 2])
        file = open_fixture_set(tmp_path, metadata=spotify_metadata()).files[0]

        with pytest.raises(FixtureFormatError) as caught:
            list(iter_records(file))

        assert "artists.jsonl.gz" == caught.value.path
        assert caught.value.line is not None
        assert "unreadable" in caught.value.message

    @pytest.mark.parametrize("name", ["artists.jsonl.gz", "artists.csv.gz", "artists.yaml.gz"])
    def test_a_gz_file_that_is_not_gzip_is_refused(self, tmp_path: Path, name: str) -> None:
        """A .gz name over plain bytes is a FixtureFormatError, not a crash."""
        (tmp_path / name).write_bytes(b"artist_id\na1\n")
        file = open_fixture_set(tmp_path, metadata=spotify_metadata()).files[0]

        with pytest.raises(FixtureFormatError) as caught:
            list(iter_records(file))

        assert name == caught.value.path

    @pytest.mark.parametrize(
        ("name", "data", "message"),
        [
            pytest.param(
                "artists.json",
                b'[{"artist_id": "a1"}] [{"x": 1}]',
                "malformed JSON",
                id="trailing-garbage-after-a-json-array",
            ),
            pytest.param(
                "artists.csv", b"artist_id,name\na1,Caf\xe9\n", "unreadable", id="csv-not-utf8"
            ),
        ],
    )
    def test_an_unreadable_file_is_refused_naming_it(
        self, tmp_path: Path, name: str, data: bytes, message: str
    ) -> None:
        """Anything after a JSON array's closing bracket, CSV bytes that are not UTF-8: a
        FixtureFormatError naming the file."""
        error = read_error(tmp_path, name, data)

        assert name == error.path
        assert message in error.message

    @pytest.mark.parametrize(("name", "data", "line", "message"), UNREADABLE_LINES)
    def test_an_unreadable_line_is_refused_naming_file_and_line(
        self, tmp_path: Path, name: str, data: bytes, line: int, message: str
    ) -> None:
        """JSON Lines bytes that are not UTF-8, a CSV quote never closed: a
        FixtureFormatError with file and line."""
        error = read_error(tmp_path, name, data)

        assert name == error.path
        assert error.line is not None
        assert message in error.message

    @pytest.mark.parametrize(("name", "data", "line", "message"), UNREADABLE_LINES)
    def test_an_unreadable_line_is_refused_at_its_line(
        self, tmp_path: Path, name: str, data: bytes, line: int, message: str
    ) -> None:
        """The error names the line holding the bad bytes, or where the bad record starts."""
        assert line == read_error(tmp_path, name, data).line

    @pytest.mark.parametrize(
        ("data", "line", "fields"),
        [
            pytest.param(b"artist_id,name\na1,One\na2,Two,extra\n", 3, 3, id="more-fields"),
            pytest.param(b"artist_id,name\na1,One\n\na2\n", 4, 1, id="fewer-fields"),
        ],
    )
    def test_a_ragged_csv_row_is_refused_at_its_line(
        self, tmp_path: Path, data: bytes, line: int, fields: int
    ) -> None:
        """A CSV row with more or fewer fields than the header is refused naming its line."""
        error = read_error(tmp_path, "artists.csv", data)

        assert ("artists.csv", line) == (error.path, error.line)
        assert f"row has {fields} fields, the header has 2" == error.message

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            pytest.param(
                b"artist_id,name,name\na1,x,y\n",
                "CSV header names a column twice",
                id="a-column-twice",
            ),
            pytest.param(b"", "CSV file has no header row", id="empty"),
        ],
    )
    def test_a_csv_header_that_cannot_name_the_columns_is_refused_at_line_1(
        self, tmp_path: Path, data: bytes, message: str
    ) -> None:
        """A header naming a column twice, or none at all, is refused at line 1."""
        error = read_error(tmp_path, "artists.csv", data)

        assert ("artists.csv", 1) == (error.path, error.line)
        assert message == error.message

    def test_malformed_yaml_is_refused_at_its_line(self, tmp_path: Path) -> None:
        """A YAML syntax error names the file and the line of the problem."""
        error = read_error(tmp_path, "artists.yaml", b"- artist_id: a1\n- artist_id: @a2\n")

        assert ("artists.yaml", 2) == (error.path, error.line)
        assert "malformed YAML" in error.message

    def test_a_yaml_mapping_at_the_top_level_is_refused(self, tmp_path: Path) -> None:
        """A YAML fixture must be a list of mappings."""
        error = read_error(tmp_path, "artists.yaml", b"artist_id: a1\n")

        assert "a YAML fixture file must hold a list of mappings" == error.message

    def test_a_yaml_list_item_that_is_not_a_mapping_is_refused(self, tmp_path: Path) -> None:
        """Each YAML item must be a mapping; the error names the record."""
        error = read_error(tmp_path, "artists.yaml", b"- artist_id: a1\n- just text\n")

        assert ("artists.yaml", 2) == (error.path, error.record)

    @pytest.mark.parametrize(
        ("data", "column", "line", "record"),
        [
            pytest.param(
                b"- {artist_id: 1123456789012345678901, name: 2024-02-30}\n",
                "name",
                1,
                1,
                id="impossible-date",
            ),
            pytest.param(
                b"- {artist_id: a1}\n- artist_id: a2\n  genres:\n  - 2024-13-01 10:00:00\n",
                "genres",
                4,
                2,
                id="impossible-month-in-a-list",
            ),
            pytest.param(
                b"- {artist_id: a1, followers: 2024-01-01 00:00:00 +99:00}\n",
                "followers",
                1,
                1,
                id="impossible-offset",
            ),
        ],
    )
    @pytest.mark.parametrize("reader", [iter_records, yaml_items], ids=["table", "streamed"])
    def test_a_yaml_timestamp_pyyaml_cannot_build_is_a_type_refusal_at_its_place(
        self, tmp_path: Path, reader: Any, data: bytes, column: str, line: int, record: int
    ) -> None:
        """PyYAML resolves a plain 2024-02-30 as a date and fails building it with a bare
        ValueError; it is refused (rule type) naming the file, line, record and column."""
        with pytest.raises(RecordError) as caught:
            list(reader(fixture_file(tmp_path, "artists.yaml", data)))

        error = caught.value
        assert ("artists.yaml", line, record, column, "type") == (
            error.path,
            error.line,
            error.record,
            error.column,
            error.rule,
        )
        assert "is not a valid timestamp" in error.message

    def test_a_format_error_prints_file_and_line(self, tmp_path: Path) -> None:
        """str() of a format error starts with 'file:line:' for people to jump to."""
        error = read_error(tmp_path, "artists.jsonl", b'{"a": 1}\n[]\n')

        assert "artists.jsonl:2: expected an object, found list" == str(error)


#: Both YAML readers: a table file's (parsed whole) and the source formats' (streamed).
YAML_READERS = pytest.mark.parametrize(
    "reader", [iter_records, yaml_items], ids=["table", "streamed"]
)


def yaml_value(directory: Path, reader: Any, scalar: str) -> Any:
    """The value a YAML file's one record gives ``name`` when written ``name: scalar``."""
    data = f"- artist_id: a1\n  name: {scalar}\n".encode()
    [record] = list(reader(fixture_file(directory, "artists.yaml", data)))
    return record.values["name"]


class TestYamlCoreSchema:
    """Plain YAML scalars are typed by the YAML 1.2 core schema, not PyYAML's 1.1."""

    @pytest.mark.parametrize(
        "scalar",
        ["on", "off", "yes", "no", "Yes", "OFF", "y", "n", "1:30", "-1:30:00", "0b101",
         "1_000", "1_0.5", "+0o7", "-0x1F", "0o8", "tRue", "nUll", "="],
    )  # fmt: skip
    @YAML_READERS
    def test_a_yaml_scalar_that_yaml_1_1_would_coerce_loads_as_the_text_it_shows(
        self, tmp_path: Path, reader: Any, scalar: str
    ) -> None:
        """``on`` was true, ``1:30`` 90 (sexagesimal), ``0b101`` 5, ``1_000`` 1000, and
        ``=`` could not be built at all: each is the text the file shows."""
        assert scalar == yaml_value(tmp_path, reader, scalar)

    @pytest.mark.parametrize(
        ("scalar", "value"),
        [
            pytest.param("017", 17, id="leading-zero-is-decimal"),
            pytest.param("-12", -12, id="signed"),
            pytest.param("0o17", 15, id="octal"),
            pytest.param("0x1F", 31, id="hex"),
            pytest.param("1e3", 1000.0, id="exponent-without-point"),
            pytest.param("1.5e3", 1500.0, id="exponent-without-sign"),
            pytest.param(".5", 0.5, id="no-leading-digit"),
            pytest.param("-.INF", float("-inf"), id="infinity"),
        ],
    )
    @YAML_READERS
    def test_a_yaml_number_reads_by_the_core_schema(
        self, tmp_path: Path, reader: Any, scalar: str, value: float
    ) -> None:
        """Integers are decimal, ``0o`` octal or ``0x`` hex (1.1 read ``017`` as octal
        15); floats need no point before an exponent nor a sign in it (1.1 kept ``1e3``
        and ``1.5e3`` as text)."""
        read = yaml_value(tmp_path, reader, scalar)

        assert (value, type(value)) == (read, type(read))

    @pytest.mark.parametrize(
        ("scalar", "value"),
        [("~", None), ("null", None), ("Null", None), ("NULL", None), ("", None),
         ("true", True), ("True", True), ("TRUE", True), ("false", False),
         ("False", False), ("FALSE", False)],
    )  # fmt: skip
    @YAML_READERS
    def test_yaml_nulls_and_booleans_are_the_core_schemas_spellings(
        self, tmp_path: Path, reader: Any, scalar: str, value: bool | None
    ) -> None:
        """Null and the two booleans, in the three capitalisations the core schema has."""
        assert value is yaml_value(tmp_path, reader, scalar)

    @YAML_READERS
    def test_a_yaml_date_still_reads_as_a_date(self, tmp_path: Path, reader: Any) -> None:
        """Timestamps keep PyYAML's resolution (the core schema has none): a date column
        takes ``2024-01-01`` as before, and an impossible one stays a ``type`` refusal."""
        assert date(2024, 1, 1) == yaml_value(tmp_path, reader, "2024-01-01")

    @pytest.mark.parametrize("scalar", ["!!int 0b101", "!!int 1:30", "!!bool on", "!!float 1_0"])
    @YAML_READERS
    def test_an_explicit_tag_on_a_value_outside_the_core_schema_is_a_type_refusal(
        self, tmp_path: Path, reader: Any, scalar: str
    ) -> None:
        """``!!int 0b101`` was built as 5: a tagged value is built by the core schema's
        rules too, and one they refuse names file, line, record and column (rule type)."""
        with pytest.raises(RecordError) as caught:
            yaml_value(tmp_path, reader, scalar)

        error = caught.value
        assert ("artists.yaml", 2, 1, "name", "type") == (
            error.path,
            error.line,
            error.record,
            error.column,
            error.rule,
        )
        assert "is not a YAML 1.2" in error.message


_LINES = [f'{{"track_id": "t{i:05d}", "name": "{"x" * (i % 300)}"}}' for i in range(3000)]


class TestJsonLinesBlocks:
    """The blocks parse workers get: whole lines, numbered from the start of the file."""

    @pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
    @pytest.mark.parametrize("min_lines", [0, 1, 7, 1000, 10_000])
    def test_blocks_parsed_one_by_one_give_the_records_the_file_gives(
        self, tmp_path: Path, gzipped: bool, min_lines: int
    ) -> None:
        data = b"\xef\xbb\xbf" + "\n".join(_LINES).encode() + b"\n\n"
        file = fixture_file(tmp_path, "tracks.jsonl", data, gzipped=gzipped)
        from_blocks: list[SourceRecord] = []
        previous_end = 0
        for block, before in json_lines_blocks(file, min_lines=min_lines):
            assert previous_end == before
            previous_end = before + block.count(b"\n") + (not block.endswith(b"\n"))
            records, failure = json_lines_records(file, block, before, len(from_blocks))
            assert failure is None
            from_blocks.extend(records)

        assert list(iter_records(file)) == from_blocks
        assert 3000 == len(from_blocks)

    def test_a_bad_line_is_reported_at_its_line_with_the_records_before_it(
        self, tmp_path: Path
    ) -> None:
        lines = [*_LINES[:10], '{"track_id": ', *_LINES[10:20]]
        file = fixture_file(tmp_path, "tracks.jsonl", "\n".join(lines).encode())
        [(block, before)] = list(json_lines_blocks(file, min_lines=100))

        records, failure = json_lines_records(file, block, before)

        assert 10 == len(records)
        assert failure is not None
        assert 11 == failure.line


class TestLongIntegersInJsonLines:
    """orjson reads an integer outside the 64-bit ranges as a float (rounded) and one past
    the float range as an infinity (refused): such lines are read again, exactly."""

    @pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
    def test_an_integer_beyond_64_bits_in_json_lines_is_read_whole_not_rounded(
        self, tmp_path: Path, gzipped: bool
    ) -> None:
        data = (
            b'{"event_id": "e1", "properties": {"n": 5}}\n'
            b'{"event_id": "e2", "properties": {"a": 18446744073709551617, '
            b'"b": [-9223372036854775809, 0.5], "c": "12345678901234567890123"}}\n'
            b'{"event_id": "e3", "properties": {"d": 9223372036854775813, "e": '
            + b"1" * 400
            + b"}}\n"
        )

        records = read(tmp_path, "product_events.jsonl", data, gzipped=gzipped)

        second = {"a": 2**64 + 1, "b": [-(2**63) - 1, 0.5], "c": "12345678901234567890123"}
        assert [
            (1, 1, {"event_id": "e1", "properties": {"n": 5}}),
            (2, 2, {"event_id": "e2", "properties": second}),
            (3, 3, {"event_id": "e3", "properties": {"d": 2**63 + 5, "e": int("1" * 400)}}),
        ] == where(records)
        assert [int, float] == [type(v) for v in records[1].values["properties"]["b"]]

    def test_a_float_past_the_float_range_beside_a_long_integer_is_still_malformed_json(
        self, tmp_path: Path
    ) -> None:
        """Read again, a float past the range is refused as orjson refused it."""
        data = b'{"event_id": "e1", "properties": {"n": 18446744073709551617, "f": 1e400}}\n'

        error = read_error(tmp_path, "product_events.jsonl", data)

        assert 1 == error.line
        assert error.message.startswith("malformed JSON: number is infinity")

    def test_an_integer_too_long_for_python_in_json_lines_is_a_record_error_at_its_field(
        self, tmp_path: Path
    ) -> None:
        """Past 4,300 digits Python reads no integer: refused naming line and column."""
        data = (
            b'{"event_id": "e1"}\n{"event_id": "e2", "properties": {"n": [' + b"9" * 5000 + b"]}}\n"
        )

        with pytest.raises(RecordError) as caught:
            read(tmp_path, "product_events.jsonl", data)

        error = caught.value
        assert ("product_events.jsonl", 2, "properties", "range") == (
            error.path,
            error.line,
            error.column,
            error.rule,
        )
        assert "an integer of 5000 digits: too long to read exactly" == error.message


#: Where ijson's second read of a JSON array starts: 3 bytes (a byte order mark, if
#: any), then 64 KiB at a time.
_SECOND_READ = 3 + 65536


class TestLoneSurrogates:
    """JSON's and YAML's escapes can write half a surrogate pair alone, which no text
    holds: refused with a RecordError (rule encoding) at its record or line and field.
    ijson's C backend read one in a JSON array as '?'."""

    @pytest.mark.parametrize(
        ("name", "data", "line", "record", "column", "message"),
        [
            pytest.param(
                "artists.json",
                b'[{"artist_id": "a1"}, {"artist_id": "a2", "name": "B\\ud800b"}]',
                None,
                2,
                "name",
                "text",
                id="json-value",
            ),
            pytest.param(
                "artists.json",
                b'[{"artist_id": "a1", "name": "\\ud800\\u0041"}]',
                None,
                1,
                "name",
                "text",
                id="json-high-before-another-escape",
            ),
            pytest.param(
                "artists.json",
                b'[{"artist_id": "a1", "genres": [{"g": "x\\udc00"}]}]',
                None,
                1,
                "genres",
                "text",
                id="json-nested-low",
            ),
            pytest.param(
                "artists.json",
                b'[{"artist_id": "a1", "na\\ud800me": "x"}]',
                None,
                1,
                None,
                "a key",
                id="json-key",
            ),
            pytest.param(
                "artists.jsonl",
                b'{"artist_id": "a1"}\n{"artist_id": "a2", "name": "\\ud800"}\n',
                2,
                None,
                "name",
                "text",
                id="jsonl-value",
            ),
            pytest.param(
                "artists.jsonl",
                b'{"artist_id": "a1", "na\\udfffme": 1}\n',
                1,
                None,
                None,
                "a key",
                id="jsonl-key",
            ),
            pytest.param(
                "artists.yaml",
                b'- {artist_id: a1, "na\\ud800me": x}\n',
                None,
                1,
                None,
                "a key",
                id="yaml-key",
            ),
        ],
    )
    def test_a_lone_surrogate_is_refused_at_its_record_and_field(
        self,
        tmp_path: Path,
        name: str,
        data: bytes,
        line: int | None,
        record: int | None,
        column: str | None,
        message: str,
    ) -> None:
        with pytest.raises(RecordError) as caught:
            read(tmp_path, name, data)

        error = caught.value
        assert (name, line, record, column, "encoding") == (
            error.path,
            error.line,
            error.record,
            error.column,
            error.rule,
        )
        assert error.message.startswith(f"{message} that is not valid Unicode")

    def test_one_split_between_two_reads_of_the_parser_is_refused_at_its_record(
        self, tmp_path: Path
    ) -> None:
        """Wherever ijson's reads cut the escape, or the pair a high surrogate escape
        starts: the lone one is refused, the pair read as it is."""
        head = b'[{"artist_id": "a1", "name": "'
        for shift in range(-14, 2):
            pad = b"x" * (_SECOND_READ - len(head) + shift)
            rest = b'"},\n{"artist_id": "a2", "name": "%s"}]'
            lone = head + pad + rest % b"\\ud800\\u0041"
            with pytest.raises(RecordError) as caught:
                read(tmp_path / f"lone{shift}", "artists.json", lone)
            assert (2, "name") == (caught.value.record, caught.value.column), shift
            pair = head + pad + rest % b"\\ud83d\\ude00"
            last = read(tmp_path / f"pair{shift}", "artists.json", pair)[-1]
            assert "\U0001f600" == last.values["name"], shift

    def test_a_pair_and_an_escaped_backslash_are_read_as_they_are(self, tmp_path: Path) -> None:
        data = b'[{"artist_id": "a1", "name": "\\ud83d\\ude00 \\\\ud800"}]'

        [record] = read(tmp_path, "artists.json", data)

        assert "\U0001f600 \\ud800" == record.values["name"]
