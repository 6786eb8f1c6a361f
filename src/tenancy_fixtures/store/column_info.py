"""What a schema declares about its columns in ``Column(info=...)``, beyond their DDL.

Changing a column's info changes no DDL, so it needs no migration. Keys read here:

``{"encrypted": True}``
    A text column whose values the loader encrypts with the tenant's data key (see
    :mod:`tenancy_fixtures.tenancy.data_keys`): the table holds Fernet tokens, and a
    dropped tenant's tokens can no longer be decrypted.
``{"encrypted": "reference"}``
    A JSON credential reference (``{"encrypted": TOKEN}``, ``{"env": NAME}``...) whose
    ``encrypted`` token, given encrypted with the master key, is stored re-encrypted
    with the tenant's data key.
``{"retention": "event_time"}``
    The time of the event a row records: rows older than the tenant's
    ``retention_days`` are purged by ``cleanup --expired``.
``{"personal": True}``
    Personal data: replaced by a keyed pseudonym in a pseudonymised export, and erased
    (or pseudonymised) with the subject a row belongs to.
``{"subject": "id"}``
    The column identifying a data subject (one per schema: the person ``export
    --subject`` and ``erase --subject`` name).
``{"subject": "reference"}``
    A column holding a subject's id: the row is that person's (their events, their
    playlists), or, on a nullable column, attributes something to them.
``{"subject": "through"}``
    A foreign key: the row belongs to whoever the row it refers to belongs to (the
    tracks of a person's playlist), followed transitively.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

from sqlalchemy import Column, MetaData, Table

from tenancy_fixtures.errors import ConfigError, SettingsError

__all__ = [
    "ENCRYPTED_INFO",
    "EVENT_TIME",
    "PERSONAL_INFO",
    "RETENTION_INFO",
    "SUBJECT_INFO",
    "EncryptedKind",
    "SubjectLink",
    "check_declarations",
    "encrypted_columns",
    "event_time_column",
    "personal_columns",
    "subject_columns",
    "subject_id_column",
]

ENCRYPTED_INFO = "encrypted"
RETENTION_INFO = "retention"
EVENT_TIME = "event_time"
PERSONAL_INFO = "personal"
SUBJECT_INFO = "subject"

EncryptedKind = Literal["value", "reference"]
SubjectLink = Literal["id", "reference", "through"]
_LINKS = ("id", "reference", "through")


def _kind(column: Column[Any]) -> EncryptedKind | None:
    declared = column.info.get(ENCRYPTED_INFO)
    if declared is True:
        return "value"
    if declared == "reference":
        return "reference"
    return None


def encrypted_columns(table: Table) -> dict[int, EncryptedKind]:
    """The positions (in column order) of ``table``'s encrypted columns, with their kind."""
    found: dict[int, EncryptedKind] = {}
    for position, column in enumerate(table.columns):
        kind = _kind(column)
        if kind is not None:
            found[position] = kind
    return found


def event_time_column(table: Table) -> Column[Any] | None:
    """The column holding the time of the event each row of ``table`` records, if any."""
    for column in table.columns:
        if column.info.get(RETENTION_INFO) == EVENT_TIME:
            return column
    return None


def personal_columns(table: Table) -> list[Column[Any]]:
    """``table``'s columns declared personal."""
    return [c for c in table.columns if c.info.get(PERSONAL_INFO) is True]


def subject_columns(table: Table, link: SubjectLink) -> list[Column[Any]]:
    """``table``'s columns declared as subject ``link`` (``id``, ``reference``,
    ``through``)."""
    if link not in _LINKS:
        raise ValueError(f"unknown subject link {link!r}")
    return [c for c in table.columns if c.info.get(SUBJECT_INFO) == link]


def subject_id_column(tables: Iterable[Table]) -> Column[Any] | None:
    """The column that identifies a data subject, if the schema declares one."""
    found = [c for t in tables for c in subject_columns(t, "id")]
    if len(found) > 1:
        names = ", ".join(f"{c.table.name}.{c.name}" for c in found)
        raise ConfigError(
            f"more than one column is declared the subject's id: {names}", key=SUBJECT_INFO
        )
    return found[0] if found else None


def check_declarations(metadata: MetaData) -> None:
    """A :class:`SettingsError` naming each column whose info declares, under a key read
    here, a value nothing reads: it would be ignored without a word, and a column meant
    personal, a subject's or encrypted left out of erasures, exports or encryption (a
    ``"through"`` link must be a foreign key: its rows belong to whoever its parent row
    belongs to)."""
    problems = [
        f"{table.name}.{column.name}: {problem}"
        for table in metadata.sorted_tables
        for column in table.columns
        for problem in _declaration_problems(column)
    ]
    ids = [c for t in metadata.sorted_tables for c in subject_columns(t, "id")]
    if len(ids) > 1:
        names = ", ".join(f"{c.table.name}.{c.name}" for c in ids)
        problems.append(f'{names}: more than one column declares {{"subject": "id"}}')
    if problems:
        raise SettingsError(
            "the schema's column info declares what nothing reads (fix or remove it): "
            + "; ".join(problems)
        )


def _declaration_problems(column: Column[Any]) -> Iterator[str]:
    info = column.info
    link = info.get(SUBJECT_INFO)
    if SUBJECT_INFO in info and link not in _LINKS:
        yield f'{{"subject": {link!r}}}: the link is "id", "reference" or "through"'
    elif link == "through" and not column.foreign_keys:
        yield '{"subject": "through"} on a column that is not a foreign key'
    if PERSONAL_INFO in info and not isinstance(info[PERSONAL_INFO], bool):
        yield f'{{"personal": {info[PERSONAL_INFO]!r}}}: it is True or False'
    encrypted = info.get(ENCRYPTED_INFO)
    if ENCRYPTED_INFO in info and not isinstance(encrypted, bool) and encrypted != "reference":
        yield f'{{"encrypted": {encrypted!r}}}: it is True, False or "reference"'
    if RETENTION_INFO in info and info[RETENTION_INFO] != EVENT_TIME:
        yield f'{{"retention": {info[RETENTION_INFO]!r}}}: it is "event_time"'
