"""The ``django`` format's pieces: options and mapping files, model → table resolution,
detection, and the YAML reader that streams a dump item by item."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
)

from tenancy_fixtures.errors import FixtureFormatError, FixtureSetError
from tenancy_fixtures.loading import records
from tenancy_fixtures.loading.django_format import DjangoFormat, _typed
from tenancy_fixtures.loading.django_mapping import read_spec
from tenancy_fixtures.loading.fixture_sets import FixtureFile
from tenancy_fixtures.loading.readers import yaml_items
from tenancy_fixtures.loading.sources import detect_format, source_file
from tenancy_fixtures.spotify.schema import spotify_metadata


class TestOptions:
    def test_command_line_options_name_tables_and_natural_keys(self) -> None:
        spec = read_spec(
            {
                "models": "music.Track:tracks, auth.User:users",
                "natural_keys": "music.Artist:name+country",
            }
        )

        assert {"music.track": {"table": "tracks"}, "auth.user": {"table": "users"}} == spec.models
        assert {"music.artist": ("name", "country")} == dict(spec.natural_keys)

    def test_the_models_option_changes_a_table_and_keeps_the_files_renames(self) -> None:
        mapping = {"models": {"music.Track": {"table": "songs", "columns": {"title": "name"}}}}

        spec = read_spec({"mapping": mapping, "models": "music.Track:tracks"})

        assert {"table": "tracks", "columns": {"title": "name"}} == spec.models["music.track"]

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ("modles: {}\n", r"unknown key\(s\) \['modles'\]"),
            ("models: [\n", "does not parse"),
            ("models: {music.Track: {table: tracks, colums: {}}}\n", "unknown key"),
            ("natural_keys: {music.Artist: 3}\n", "give a list of field names"),
            ("models: {Track: tracks}\n", "not a model label"),
        ],
    )
    def test_a_bad_mapping_file_is_refused_naming_it(
        self, tmp_path: Path, content: str, message: str
    ) -> None:
        path = tmp_path / "django.yaml"
        path.write_text(content, encoding="utf-8")

        with pytest.raises(FixtureSetError, match=message) as caught:
            read_spec({"mapping": str(path)})

        assert str(path) == str(caught.value.path)

    def test_a_missing_mapping_file_is_refused_naming_it(self, tmp_path: Path) -> None:
        with pytest.raises(FixtureSetError, match="cannot read the mapping file"):
            read_spec({"mapping": str(tmp_path / "nowhere.yaml")})

    def test_a_mapping_path_holding_a_lone_surrogate_is_refused_not_a_crash(
        self, tmp_path: Path
    ) -> None:
        """A UnicodeEncodeError escaped."""
        with pytest.raises(FixtureSetError, match="its path is not a file name"):
            read_spec({"mapping": str(tmp_path / "\ud800.yaml")})

    def test_a_models_option_without_a_table_is_refused(self) -> None:
        with pytest.raises(
            FixtureSetError, match=r"expected app\.Model:value, found 'music\.Track'"
        ):
            read_spec({"models": "music.Track"})


class TestMapping:
    @pytest.mark.parametrize(
        ("label", "table"),
        [
            ("music.Artist", "artists"),
            ("spotify.users", "users"),
            ("x.listening_events", "listening_events"),
        ],
    )
    def test_an_unmapped_model_loads_into_the_table_named_for_it(
        self, label: str, table: str
    ) -> None:
        mapping = read_spec({}).bind(spotify_metadata())

        model = mapping.model(label)

        assert model is not None
        assert table == model.table.name

    def test_django_own_table_name_wins(self) -> None:
        md = MetaData()
        Table("artist", md, Column("id", Integer, primary_key=True))
        Table("music_artist", md, Column("id", Integer, primary_key=True))

        model = read_spec({}).bind(md).model("music.Artist")

        assert model is not None
        assert "music_artist" == model.table.name

    def test_a_foreign_key_field_loads_into_its_id_column(self) -> None:
        model = read_spec({}).bind(spotify_metadata()).model("music.album")

        assert model is not None
        column = model.column("artist")
        assert column is not None
        assert "artist_id" == column.name

    def test_a_through_table_whose_columns_cannot_be_told_apart_is_refused(self) -> None:
        md = MetaData()
        Table("people", md, Column("id", Integer, primary_key=True))
        Table(
            "friends",
            md,
            Column("a", ForeignKey("people.id"), primary_key=True),
            Column("b", ForeignKey("people.id"), primary_key=True),
        )
        spec = read_spec(
            {
                "mapping": {
                    "models": {
                        "app.Person": {"table": "people", "many_to_many": {"friends": "friends"}}
                    }
                }
            }
        )

        with pytest.raises(FixtureSetError, match="cannot tell the source column of friends"):
            spec.bind(md)

    def test_two_fields_renamed_to_one_column_are_refused_when_the_mapping_is_bound(
        self,
    ) -> None:
        """One of the two values was silently lost: the later field's overwrote the other."""
        columns = {"title": "name", "label": "name"}
        spec = read_spec(
            {"mapping": {"models": {"music.Track": {"table": "tracks", "columns": columns}}}}
        )

        with pytest.raises(
            FixtureSetError, match=r"fields 'title' and 'label' both map to tracks\.name"
        ) as caught:
            spec.bind(spotify_metadata())

        assert "options" == str(caught.value.path)

    @pytest.mark.parametrize(
        ("key", "expected"),
        [
            (Column("id", Integer, primary_key=True), "numbered"),
            (Column("id", Uuid, primary_key=True, default=uuid.uuid4), "its default"),
            (Column("id", String(36), primary_key=True), "refused"),
        ],
        ids=["integer", "default-function", "text"],
    )
    def test_a_through_table_with_a_key_of_its_own_is_filled_in_by_the_load(
        self, key: Column[Any], expected: str
    ) -> None:
        """Django's through table of a ManyToManyField: ``id``, ``post_id``, ``tag_id``."""
        md = MetaData()
        Table("tags", md, Column("id", Integer, primary_key=True))
        Table("posts", md, Column("id", Integer, primary_key=True))
        Table(
            "post_tags",
            md,
            key,
            Column("post_id", ForeignKey("posts.id")),
            Column("tag_id", ForeignKey("tags.id")),
        )
        models = {"blog.Post": {"table": "posts", "many_to_many": {"tags": "post_tags"}}}
        spec = read_spec({"mapping": {"models": models}})

        if expected == "refused":
            with pytest.raises(
                FixtureSetError, match=r"post_tags\.id is neither of its foreign keys"
            ):
                spec.bind(md)
            return
        model = spec.bind(md).model("blog.post")

        assert model is not None
        through = model.many_to_many["tags"]
        assert ("id", "post_id", "tag_id") == (through.key, through.source, through.target)
        assert (expected == "numbered") is through.numbered

    def test_a_natural_key_field_without_a_column_is_refused(self) -> None:
        spec = read_spec({"natural_keys": "music.Artist:nickname"})

        with pytest.raises(FixtureSetError, match="field 'nickname' has no column in artists"):
            spec.bind(spotify_metadata())


class TestNaturalKeyTyping:
    def test_natural_keys_are_typed_by_converters_built_once_when_the_mapping_is_bound(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each value was typed by ``column_value``, which built its column's converter
        anew (microseconds per value, for every key of every record)."""
        spec = read_spec({"natural_keys": {"shelf.Edition": ["serial", "issued"]}})
        model = spec.bind(_shelf()).model("shelf.edition")
        assert model is not None
        built: list[str] = []
        real = records._converter

        def counting(column: Any, max_text_length: int) -> Any:
            built.append(str(column.name))
            return real(column, max_text_length)

        monkeypatch.setattr(records, "_converter", counting)

        keys = [_typed(model, [str(n), "2024-01-02"]) for n in range(100)]

        assert (99, date(2024, 1, 2)) == keys[-1]
        assert [] == built


def _shelf() -> MetaData:
    md = MetaData()
    Table(
        "editions",
        md,
        Column("id", Integer, primary_key=True),
        Column("serial", BigInteger),
        Column("issued", Date),
    )
    return md


class TestDetection:
    def test_a_dumpdata_record_is_told_from_a_spotify_object(self) -> None:
        record = {"model": "music.artist", "pk": 1, "fields": {"name": "x"}}

        assert DjangoFormat.sniff(record)
        assert not DjangoFormat.sniff({"type": "artist", "id": "x", "name": "x"})
        assert not DjangoFormat.sniff({**record, "extra": 1})

    @pytest.mark.parametrize("name", ["dump.json", "dump.jsonl", "dump.yaml", "dump.yml"])
    def test_a_dump_in_each_container_is_detected(self, tmp_path: Path, name: str) -> None:
        line = '{"model": "music.artist", "pk": 1, "fields": {"name": "x"}}'
        text = {
            ".json": f"[{line}]",
            ".jsonl": line + "\n",
            ".yaml": "- model: music.artist\n  pk: 1\n  fields: {name: x}\n",
        }[Path(name).suffix.replace(".yml", ".yaml")]
        (tmp_path / name).write_text(text, encoding="utf-8")

        assert "django" == detect_format(source_file(tmp_path, name))


def yaml_file(tmp_path: Path, text: str) -> FixtureFile:
    path = tmp_path / "dump.yaml"
    path.write_text(text, encoding="utf-8")
    return FixtureFile("source", path, "dump.yaml", "yaml", False)


def items(tmp_path: Path, text: str) -> list[dict[str, Any]]:
    return [record.values for record in yaml_items(yaml_file(tmp_path, text))]


class TestStreamedYaml:
    def test_items_are_read_one_at_a_time(self, tmp_path: Path) -> None:
        """The second item is malformed: the first is yielded before it is parsed."""
        records = yaml_items(yaml_file(tmp_path, "- {a: 1}\n- {a: [\n"))

        assert {"a": 1} == next(records).values
        with pytest.raises(FixtureFormatError, match="malformed YAML"):
            next(records)

    def test_an_empty_file_holds_no_items(self, tmp_path: Path) -> None:
        assert [] == items(tmp_path, "")
        assert [] == items(tmp_path, "# nothing\n")

    def test_a_mapping_at_the_top_level_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(FixtureFormatError, match="must hold a list of mappings"):
            items(tmp_path, "a: 1\n")

    def test_a_repeated_key_is_refused_at_its_record_and_field(self, tmp_path: Path) -> None:
        with pytest.raises(FixtureFormatError, match="appears twice") as caught:
            items(tmp_path, "- {a: 1}\n- fields: {x: 1, x: 2}\n")

        assert (2, "fields") == (caught.value.record, caught.value.column)

    def test_aliases_that_expand_an_item_far_beyond_its_size_are_refused(
        self, tmp_path: Path
    ) -> None:
        lines = ["- a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]

        with pytest.raises(FixtureFormatError, match="aliases expand a record") as caught:
            items(tmp_path, "\n".join(lines) + "\n")

        assert 1 == caught.value.record
