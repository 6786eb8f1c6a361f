"""A user's schema declaring in its column info what nothing reads is refused when the
manager is made, naming each column: the declaration was ignored without a word, so a
column meant personal, a person's or encrypted was left out of erasures, exports and
encryption (a misspelt link, a "through" link on a column that is no foreign key,
``"personal": "yes"``, ``"encrypted": "value"``...)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, MetaData, String, Table

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.errors import SettingsError


def _schema(info: dict[str, Any], *, refers: bool = False) -> MetaData:
    """People, and their notes with one column declared ``info``."""
    metadata = MetaData()
    key = [ForeignKey("people.id")] if refers else []
    Table(
        "people",
        metadata,
        Column("id", String(20), primary_key=True, info={"subject": "id"}),
        Column("name", String(40), info={"personal": True}),
    )
    Table(
        "notes",
        metadata,
        Column("note_id", String(20), primary_key=True),
        Column("owner", String(20), *key, info=info),
    )
    return metadata


@pytest.mark.parametrize(
    ("info", "said"),
    [
        ({"subject": "references"}, "{\"subject\": 'references'}: the link is"),
        ({"subject": "through"}, '{"subject": "through"} on a column that is not a foreign'),
        ({"personal": "yes"}, "{\"personal\": 'yes'}: it is True or False"),
        ({"personal": 1}, '{"personal": 1}: it is True or False'),
        ({"encrypted": "value"}, '{"encrypted": \'value\'}: it is True, False or "reference"'),
        ({"retention": "event-time"}, '{"retention": \'event-time\'}: it is "event_time"'),
        ({"subject": "id"}, 'more than one column declares {"subject": "id"}'),
    ],
)
def test_column_info_nothing_reads_refuses_the_schema_naming_the_column(
    settings: Settings, info: dict[str, Any], said: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        FixtureManager(settings, metadata=_schema(info))

    assert 2 == refused.value.exit_code
    assert said in str(refused.value)
    assert "notes.owner" in str(refused.value)


@pytest.mark.parametrize(
    "info",
    [
        {"subject": "through"},
        {"subject": "reference", "personal": False},
        {"encrypted": False},
        {"encrypted": "reference"},
    ],
)
async def test_declarations_the_library_reads_are_taken(
    settings: Settings, info: dict[str, Any]
) -> None:
    async with FixtureManager(settings, metadata=_schema(info, refers=True)) as manager:
        assert {"people", "notes"} == {t.name for t in manager.store.metadata.sorted_tables}
