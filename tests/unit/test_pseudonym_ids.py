"""Pseudonyms of integer ids: distinct ids stay distinct and keep their sign."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, SmallInteger

from tenancy_fixtures.compliance.pseudonyms import Pseudonymiser

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
