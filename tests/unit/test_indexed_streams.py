"""Values derived from (seed, stream name, index): deterministic, well-formed, unique ids."""

from __future__ import annotations

import uuid

import pytest

from tenancy_fixtures.spotify.indexed_streams import UNIQUE_INDEXES, IndexedStream
from tenancy_fixtures.spotify.spotify_ids import is_spotify_id

# Both ends of the range and a run in the middle.
INDEXES = [*range(50_000), *range(UNIQUE_INDEXES - 50_000, UNIQUE_INDEXES), 1 << 30]


def test_the_same_seed_name_and_index_give_the_same_values() -> None:
    first, again = IndexedStream(7, "track"), IndexedStream(7, "track")

    assert [first.bits(i) for i in range(100)] == [again.bits(i) for i in range(100)]
    assert first.base62(12) == again.base62(12)
    assert first.uuid4(12) == again.uuid4(12)


@pytest.mark.parametrize("other", [IndexedStream(8, "track"), IndexedStream(7, "album")])
def test_another_seed_or_name_gives_other_values(other: IndexedStream) -> None:
    stream = IndexedStream(7, "track")

    assert all(stream.bits(i) != other.bits(i) for i in range(100))
    assert stream.base62(3) != other.base62(3)


def test_base62_ids_are_spotify_ids_distinct_for_distinct_indexes() -> None:
    stream = IndexedStream(1, "track")

    ids = [stream.base62(i) for i in INDEXES]

    assert all(is_spotify_id(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_shorter_base62_ids_keep_their_length_and_stay_distinct() -> None:
    stream = IndexedStream(1, "workspace")

    ids = [stream.base62(i, 16) for i in INDEXES]

    assert {len(i) for i in ids} == {16}
    assert all(i.isascii() and i.isalnum() for i in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("length", [6, 23])
def test_a_base62_length_the_unique_part_does_not_fit_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="length"):
        IndexedStream(1, "track").base62(0, length)


def test_uuids_are_version_4_and_distinct_for_distinct_indexes() -> None:
    stream = IndexedStream(1, "user")

    ids = [stream.uuid4(i) for i in [*INDEXES, (1 << 62) - 1]]

    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in parsed)
    assert [str(u) for u in parsed] == ids
    assert len(set(ids)) == len(ids)
