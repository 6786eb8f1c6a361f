"""Which rows reach a data subject, and how to recognise their values without keeping them.

The schema declares it (see :mod:`tenancy_fixtures.store.column_info`): the column that
identifies a subject (``{"subject": "id"}``), the columns holding a subject's id
(``"reference"``), and the foreign keys through which a row belongs to whoever its
parent belongs to (``"through"``, followed transitively). Nothing here names a table.

A :class:`Fingerprints` set recognises a subject's identifying values (their id and the
unique personal values of their own row, an e-mail address) by keyed digest: an
erasure receipt keeps the digests and the salt, never the values, so ``erase --verify``
can still find a value that came back. A value others may share (a name) is not
fingerprinted: it would find other people. The key is derived from the tenant's data
key when there is a master key (so it dies with the tenant), or else from the salt
alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, MetaData, Table, UniqueConstraint, false, or_, select
from sqlalchemy.sql.elements import ColumnElement

from tenancy_fixtures.errors import ConfigError
from tenancy_fixtures.loading.records import column_value
from tenancy_fixtures.store.column_info import (
    SUBJECT_INFO,
    personal_columns,
    subject_columns,
    subject_id_column,
)

__all__ = [
    "Fingerprints",
    "derive_key",
    "reach",
    "scalar_text",
    "subject_column",
    "tokens",
    "typed_subject",
]

#: Characters that end a token inside free text (an e-mail address stays whole).
_SPLIT = re.compile(r"[\s'\"`()\[\]{}<>,;|]+")
_TRIM = ".:!?"


def subject_column(metadata: MetaData) -> Column[Any]:
    """The schema's subject id column; a :class:`ConfigError` when it declares none."""
    column = subject_id_column(metadata.sorted_tables)
    if column is None:
        raise ConfigError(
            "the schema declares no data subject: mark the column that identifies a "
            'person with info={"subject": "id"}',
            key=SUBJECT_INFO,
        )
    return column


def typed_subject(metadata: MetaData, subject: Any) -> Any:
    """``subject`` (an id as text, from a command line) as the schema's subject id
    column holds it (an integer, a UUID...); a :class:`ConfigError` naming the column
    when it cannot be one."""
    column = subject_column(metadata)
    try:
        return column_value(column, subject)
    except ValueError as exc:
        raise ConfigError(
            f"subject {subject!r:.40} is not an id of {column.table.name}.{column.name}: {exc}",
            key="subject",
        ) from None


def reach(metadata: MetaData, subject: Any) -> dict[str, ColumnElement[bool]]:
    """Per table, the condition selecting the rows that reach ``subject`` (tables no
    declaration reaches are left out)."""
    id_column = subject_column(metadata)
    found: dict[str, ColumnElement[bool]] = {}
    for table in metadata.sorted_tables:  # parents first: a "through" parent is done
        terms: list[ColumnElement[bool]] = []
        if id_column.table is table:
            terms.append(id_column == subject)
        terms += [c == subject for c in subject_columns(table, "reference")]
        for column in subject_columns(table, "through"):
            for key in column.foreign_keys:
                parent = key.column.table
                if parent.name in found:
                    terms.append(column.in_(select(key.column).where(found[parent.name])))
        if terms:
            found[table.name] = or_(*terms) if len(terms) > 1 else terms[0]
    return found


def no_rows() -> ColumnElement[bool]:
    """A condition no row meets."""
    return false()


def derive_key(data_key: bytes | None, salt: bytes, purpose: str) -> bytes:
    """An HMAC key for ``purpose``: from the tenant's data key and ``salt``, or from the
    salt alone without a data key."""
    return hmac.new(data_key or b"", salt + b"/" + purpose.encode(), hashlib.sha256).digest()


def tokens(value: str) -> Iterator[str]:
    """``value`` whole and the words of it, trimmed: what a value quoted in free text
    (an error message) could be."""
    yield value
    for word in _SPLIT.split(value):
        word = word.strip(_TRIM)
        if word and word != value:
            yield word


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def scalar_text(value: Any) -> str:
    """A value as text: a string as it is, a JSON document by its canonical text, any
    other value (a number, a UUID) as ``str`` gives it."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


@dataclass
class Fingerprints:
    """Keyed digests of a subject's values; ``salt`` (hex) and ``digests`` may be kept."""

    key: bytes
    salt: str
    digests: set[str] = field(default_factory=set)

    @classmethod
    def new(cls, data_key: bytes | None, *, salt: str | None = None) -> Fingerprints:
        """Fingerprints under a fresh salt (or a kept one, to check values again)."""
        salt = salt or secrets.token_hex(16)
        return cls(derive_key(data_key, bytes.fromhex(salt), "fingerprint"), salt)

    def of(self, value: Any) -> str:
        """The digest of one value (by its :func:`scalar_text`)."""
        return hmac.new(self.key, scalar_text(value).encode(), hashlib.sha256).hexdigest()

    def add(self, values: Iterable[Any]) -> None:
        """Remember these values (strings and JSON documents, by their text)."""
        for value in values:
            if value is None or isinstance(value, bool):
                continue
            text = scalar_text(value)
            if text.strip():
                self.digests.add(self.of(text))

    def found_in(self, document: Any) -> bool:
        """Whether any remembered value occurs in ``document`` (a value, or any string
        inside a JSON document, whole or as a word of it)."""
        if not self.digests:
            return False
        for leaf in _leaves(document):
            if any(self.of(t) in self.digests for t in tokens(leaf)):
                return True
            if not isinstance(document, str) and leaf.startswith(("{", "[")):
                try:
                    inner = json.loads(leaf)
                except ValueError:
                    continue
                if isinstance(inner, dict | list) and self.found_in(inner):
                    return True
        return False


def _unique(table: Table, column: Column[Any]) -> bool:
    if column.unique or (column.primary_key and len(table.primary_key.columns) == 1):
        return True
    return any(
        isinstance(c, UniqueConstraint) and list(c.columns) == [column] for c in table.constraints
    )


def personal_values(table: Table, row: Sequence[Any], id_column: Column[Any]) -> list[Any]:
    """The values that identify the subject in their row of the subject table: the id
    and personal columns declared unique (an e-mail address). A shared value (a name
    others bear too) would find other people's rows, so it is not fingerprinted."""
    names = [c.name for c in table.columns]
    wanted = [id_column, *(c for c in personal_columns(table) if _unique(table, c))]
    return [row[names.index(c.name)] for c in wanted]
