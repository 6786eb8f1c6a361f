"""Top-level JSON arrays read whole: the items a streaming parser would give, and a
``None`` (stream it instead) for what is not a small, well-formed array."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import io
import json

import pytest

from tenancy_fixtures.loading import json_arrays
from tenancy_fixtures.loading.json_arrays import whole_array_items

ITEMS = [{"ts": "2026-01-01T00:00:00Z", "n": 1.5, "deep": [[{"é": "漢字"}]]}, 3, "x", None]


def test_the_items_of_an_array_are_those_json_reads() -> None:
    data = b"\xef\xbb\xbf \n" + json.dumps(ITEMS, ensure_ascii=False).encode()
    items = whole_array_items(io.BytesIO(data))
    assert items is not None
    assert ITEMS == list(items)


@pytest.mark.parametrize(
    "data",
    [b'{"a": [1]}', b"[1, 2", b"[1, NaN]", b"", b"[1] [2]", b'["\xff"]'],
    ids=["object", "truncated", "nan", "empty", "trailing", "bad-utf8"],
)
def test_what_is_not_a_well_formed_array_is_left_to_the_streaming_reader(data: bytes) -> None:
    items = whole_array_items(io.BytesIO(data))
    if items is not None:  # split, but an item no parser reads: it says so
        with pytest.raises(ValueError, match="utf-8"):
            list(items)


def test_an_array_larger_than_the_limit_is_left_to_the_streaming_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(json_arrays, "MAX_WHOLE_ARRAY_BYTES", 8)
    assert None is whole_array_items(io.BytesIO(b"[1, 2, 3, 4]"))
