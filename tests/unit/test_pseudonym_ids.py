"""Pseudonyms of integer ids: distinct ids stay distinct and keep their sign."""

from __future__ import annotations

import pytest
from sqlalchemy import BigInteger, Column, ForeignKey, Integer, MetaData, SmallInteger, Table

from tenancy_fixtures.compliance.pseudonyms import Pseudonymiser
from tenancy_fixtures.errors import ConfigError

KEY = b"k" * 32


def test_every_smallint_id_gets_its_own_pseudonym_of_its_sign() -> None:
    """A keyed permutation: over all 65,536 SMALLINT values no two ids share a
    pseudonym (a reduction modulo the range collided), and the sign is kept."""
    column = Column("customer_id", SmallInteger)
    pseudonyms = Pseudonymiser(KEY)

    images = {value: pseudonyms.value(column, value) for value in range(-(2**15), 2**15)}

    assert 2**16 == len(set(images.values()))
    assert all((image >= 0) == (value >= 0) for value, image in images.items())


def test_integer_and_bigint_pseudonyms_fit_their_column_and_depend_on_the_key() -> None:
    for column, bits in ((Column("i", Integer), 32), (Column("b", BigInteger), 64)):
        mine = [Pseudonymiser(KEY).value(column, value) for value in (1, 2, 2**20)]
        theirs = [Pseudonymiser(b"o" * 32).value(column, value) for value in (1, 2, 2**20)]

        assert all(0 <= image < 2 ** (bits - 1) for image in mine)
        assert len(set(mine)) == 3
        assert mine != theirs


def test_a_key_and_the_columns_referring_to_it_share_one_pseudonym_whatever_their_width() -> None:
    """The referenced key's width decides: an ``Integer`` key and a ``BigInteger``
    foreign key to it gave two pseudonyms, breaking joins in a pseudonymised export."""
    metadata = MetaData()
    people = Table("people", metadata, Column("person_id", Integer, primary_key=True))
    Table(
        "visits",
        metadata,
        Column("visit_id", Integer, primary_key=True),
        Column("person_id", BigInteger, ForeignKey("people.person_id")),
    )
    pseudonyms = Pseudonymiser(KEY)

    key = pseudonyms.value(people.c.person_id, 5)
    reference = pseudonyms.value(metadata.tables["visits"].c.person_id, 5)

    assert key == reference
    assert 0 <= key < 2**31


def test_an_id_outside_its_columns_range_is_refused_not_walked_forever() -> None:
    """SQLite keeps any integer in a SMALLINT column; its pseudonym cannot be one."""
    with pytest.raises(ConfigError, match="outside a 16-bit integer id"):
        Pseudonymiser(KEY).value(Column("small", SmallInteger), 40000)
