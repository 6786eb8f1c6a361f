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

What counts as holding a value: a field that holds subject data (an id, reference or
personal column; a reject record's id or reference) holding it whole, whatever its
shape (:meth:`Fingerprints.holds`); elsewhere, in audit details, configs and reject
lines, only the string values of a document, never its keys or numbers (its own
structure: ``"users": 1`` in a receipt, ``"line": 3`` in a reject line), whole or as a
part of free text quoted the way error messages quote a value, or as a word of it only
when the value is :func:`distinctive` (an e-mail address, ``dan_77``): a bare word or
number (``premium``, ``2``) is prose as often as an id.
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
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tenancy_fixtures.store.column_info import (
    SUBJECT_INFO,
    personal_columns,
    subject_columns,
    subject_id_column,
)

__all__ = [
    "Fingerprints",
    "belongs_to",
    "derive_key",
    "distinctive",
    "identifying_columns",
    "reach",
    "scalar_text",
    "subject_column",
    "tokens",
    "typed_subject",
]

#: Characters that end a token inside free text (an e-mail address stays whole).
_SPLIT = re.compile(r"[\s'\"`()\[\]{}<>,;|]+")
_TRIM = ".:!?"
#: A part of free text quoted the way error messages quote a value (by its repr).
_QUOTED = re.compile(r"'([^'\n]{1,256})'|\"([^\"\n]{1,256})\"|`([^`\n]{1,256})`")
_LETTER = re.compile(r"[^\W\d_]")
_NOT_LETTER = re.compile(r"[\W\d_]")


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
    if isinstance(subject, str) and not _encodable(subject):
        raise ConfigError(
            f"subject {subject!r:.40} is not valid UTF-8 text (a byte the shell could not "
            "decode): it cannot be an id",
            key="subject",
        )
    try:
        return column_value(column, subject)
    except ValueError as exc:
        raise ConfigError(
            f"subject {subject!r:.40} is not an id of {column.table.name}.{column.name}: {exc}",
            key="subject",
        ) from None


def _encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogate, which Python makes of
    bytes a command line could not decode): no database can store or compare it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def reach(metadata: MetaData, subject: Any) -> dict[str, ColumnElement[bool]]:
    """Per table, the condition selecting the rows that reach ``subject`` (tables no
    declaration reaches are left out). Of the subject table, only the subject's own row:
    another person's row there is that person's, whoever it refers to (their inviter)."""
    id_column = subject_column(metadata)
    found: dict[str, ColumnElement[bool]] = {}
    for table in metadata.sorted_tables:  # parents first: a "through" parent is done
        terms: list[ColumnElement[bool]] = []
        if id_column.table is table:
            terms.append(id_column == subject)
        else:
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


def distinctive(text: str) -> bool:
    """Whether ``text`` cannot be a word or number of prose or of a document's own
    structure: it holds a letter and also a digit or punctuation (an e-mail address,
    ``dan_77``, a UUID). A bare word (``premium``) or number (``2``) is found only where
    it stands for a value: quoted, or in a field that holds subject ids."""
    return bool(_LETTER.search(text)) and bool(_NOT_LETTER.search(text))


def _candidates(text: str) -> Iterator[str]:
    """What in ``text`` may be a subject's value: the text whole and its words when
    :func:`distinctive`, and any part quoted as error messages quote a value."""
    for word in tokens(text):
        if distinctive(word):
            yield word
    for match in _QUOTED.finditer(text):
        yield next(g for g in match.groups() if g is not None)


def _strings(value: Any) -> Iterator[str]:
    """The string values of a JSON document (a JSON text parsed), never its keys,
    numbers or booleans: those are the document's own structure."""
    if isinstance(value, str):
        if value.startswith(("{", "[")):
            try:
                inner = json.loads(value)
            except ValueError:
                inner = None
            if isinstance(inner, dict | list):
                yield from _strings(inner)
                return
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


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
    """Keyed digests of a subject's values; ``salt`` (hex) and ``digests`` may be kept.
    ``keyed``: whether the key came from a data key (else from the salt alone), which
    a receipt records so that it can be checked again whichever way the key comes now."""

    key: bytes
    salt: str
    digests: set[str] = field(default_factory=set)
    keyed: bool = False

    @classmethod
    def new(cls, data_key: bytes | None, *, salt: str | None = None) -> Fingerprints:
        """Fingerprints under a fresh salt (or a kept one, to check values again)."""
        salt = salt or secrets.token_hex(16)
        key = derive_key(data_key, bytes.fromhex(salt), "fingerprint")
        return cls(key, salt, keyed=data_key is not None)

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

    def holds(self, value: Any) -> bool:
        """Whether ``value``, held in a field that holds subject data (an id, reference
        or personal column), is a remembered value whole, whatever its shape (a number
        id included)."""
        if value is None or isinstance(value, bool) or not self.digests:
            return False
        return self.of(value) in self.digests

    def found_in(self, document: Any) -> bool:
        """Whether a remembered value occurs among the string values of ``document`` (a
        text, a JSON document): whole, or as a word or quoted part of it (a refused
        record quoted in an error message). Keys, numbers and booleans are the
        document's structure, and a bare word or number of a message is no evidence
        (see :func:`distinctive`): erasing user ``1`` must not match ``"users": 1``."""
        if not self.digests:
            return False
        return any(
            self.of(candidate) in self.digests
            for text in _strings(document)
            for candidate in _candidates(text)
        )


def belongs_to(metadata: MetaData, subject: Any, table_name: Any, record: Any) -> bool:
    """Whether ``record`` (a record of the table named ``table_name``, as a reject file
    keeps it) is the subject's: its subject id, or a column referring to it, holds
    ``subject`` once typed as the column holds it. A record of the subject table is the
    subject's by its id alone (another person's record naming them is that person's)."""
    if not isinstance(record, Mapping) or not isinstance(table_name, str):
        return False
    table = metadata.tables.get(f"{TENANT_SCHEMA}.{table_name}")
    if table is None:
        return False
    id_column = subject_column(metadata)
    home = id_column.table is table
    for column in [id_column] if home else subject_id_columns(table, id_column):
        value = record.get(column.name)
        if value is None or isinstance(value, bool):
            continue
        try:
            if column_value(column, value) == subject:
                return True
        except (ValueError, TypeError):
            continue
    return False


def subject_id_columns(table: Table, id_column: Column[Any]) -> list[Column[Any]]:
    """Columns of ``table`` that hold a subject id: references and keys to the id."""
    found = list(subject_columns(table, "reference"))
    for column in table.columns:
        if column not in found and any(k.column is id_column for k in column.foreign_keys):
            found.append(column)
    return found


def _unique(table: Table, column: Column[Any]) -> bool:
    if column.unique or (column.primary_key and len(table.primary_key.columns) == 1):
        return True
    return any(
        isinstance(c, UniqueConstraint) and list(c.columns) == [column] for c in table.constraints
    )


def identifying_columns(table: Table, id_column: Column[Any]) -> list[Column[Any]]:
    """The columns of the subject table whose values identify a subject: the id and
    personal columns declared unique (an e-mail address). A shared value (a name
    others bear too) would find other people's rows, so it is not fingerprinted."""
    return [id_column, *(c for c in personal_columns(table) if _unique(table, c))]


def personal_values(table: Table, row: Sequence[Any], id_column: Column[Any]) -> list[Any]:
    """The values that identify the subject in their row of the subject table (see
    :func:`identifying_columns`)."""
    names = [c.name for c in table.columns]
    return [row[names.index(c.name)] for c in identifying_columns(table, id_column)]
