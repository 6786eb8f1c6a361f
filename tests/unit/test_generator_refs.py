"""What generated tables refer to, recomputed from an index: albums and their tracks agree."""

from __future__ import annotations

from collections import Counter

from tenancy_fixtures.spotify.generator_refs import SetReferences

SCALE = 40


def test_every_track_belongs_to_the_album_whose_run_of_tracks_holds_it() -> None:
    """Albums cover the tracks in order without gap or overlap, and the album found
    from a track's index is the one whose run holds it."""
    refs = SetReferences(seed=3, scale=SCALE)
    albums = [refs.album(a) for a in range(refs.albums)]

    expected_first = 0
    for index, album in enumerate(albums):
        assert album.first_track == expected_first
        for track in range(album.first_track, album.first_track + album.tracks):
            assert refs.album_of_track(track) == index
        expected_first += album.tracks
    assert expected_first == refs.tracks


def test_singles_have_one_to_three_tracks_and_other_albums_four_or_more() -> None:
    refs = SetReferences(seed=3, scale=SCALE)
    albums = [refs.album(a) for a in range(refs.albums)]

    for album in albums:
        if album.album_type == "single":
            assert 1 <= album.tracks <= 3
        else:
            assert album.tracks >= 4
    types = Counter(a.album_type for a in albums)
    assert set(types) == {"single", "album", "compilation"}
    assert types["single"] > types["album"] > types["compilation"]


def test_an_album_names_its_artist_and_year_the_same_way_everywhere() -> None:
    refs = SetReferences(seed=3, scale=SCALE)

    for index in range(refs.albums):
        album = refs.album(index)
        assert album.album_id == refs.album_id(index)
        assert album.artist == refs.album_artist(index)
        assert 0 <= album.artist < refs.artists
        assert 1968 <= album.year <= 2025


def test_a_playlist_is_created_after_its_owner_signed_up() -> None:
    refs = SetReferences(seed=5, scale=SCALE)

    playlists = [refs.playlist(p) for p in range(refs.playlists)]

    assert all(p.created >= refs.user_created(p.owner) for p in playlists)
    assert all(p.playlist_id == refs.playlist_id(i) for i, p in enumerate(playlists))
    assert 0 < sum(p.collaborative for p in playlists) < len(playlists)


def test_a_workspace_is_the_same_however_often_it_is_recomputed() -> None:
    refs = SetReferences(seed=5, scale=SCALE)

    assert [refs.workspace(w) for w in range(refs.workspaces)] == [
        SetReferences(seed=5, scale=SCALE).workspace(w) for w in range(refs.workspaces)
    ]
