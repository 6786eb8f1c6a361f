"""Lone surrogate escapes found in JSON text fed in pieces, wherever the pieces are cut."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json

import pytest

from tenancy_fixtures.loading.lone_surrogates import LoneSurrogateScan

#: JSON strings (without their quotes) and where the first lone surrogate escape starts.
TEXTS = [
    pytest.param(b"plain text", None, id="plain"),
    pytest.param(b'caf\\u00e9 \\n \\" \\/', None, id="other-escapes"),
    pytest.param(b"a \\ud83d\\ude00 b \\uD83D\\uDE00", None, id="pairs"),
    pytest.param(b"B\\ud800b", 1, id="high-alone"),
    pytest.param(b"\\ud800", 0, id="high-at-the-end"),
    pytest.param(b"ok \\ud800\\u0041", 3, id="high-before-another-escape"),
    pytest.param(b"\\ud800\\ud800\\udc00", 0, id="high-before-a-pair"),
    pytest.param(b"x\\udc00", 1, id="low-alone"),
    pytest.param(b"\\ud83d\\ude00\\ude00", 12, id="low-after-a-pair"),
    pytest.param(b"\\\\ud800 text", None, id="escaped-backslash"),
    pytest.param(b"\\\\\\ud800", 2, id="escape-after-an-escaped-backslash"),
    pytest.param(b"\\\\ud800\\udc00", 7, id="low-after-text-that-reads-like-a-high"),
]


def first_lone(text: bytes, cuts: list[int]) -> int | None:
    """Where the scan finds the first lone surrogate in ``text`` fed cut at ``cuts``."""
    scan = LoneSurrogateScan()
    start = 0
    for end in [*cuts, len(text)]:
        found = scan.feed(text[start:end])
        if found is not None:
            return start + found
        start = end
    return None


@pytest.mark.parametrize(("body", "expected"), TEXTS)
def test_the_first_lone_surrogate_is_found_wherever_the_text_is_cut(
    body: bytes, expected: int | None
) -> None:
    """Cut once anywhere, or at every byte, the answer is the same; it agrees with the
    standard library's parser, which keeps a lone surrogate."""
    text = b'"' + body + b'"'
    decoded = json.loads(text)
    assert (expected is not None) == any(0xD800 <= ord(c) <= 0xDFFF for c in decoded)
    where = None if expected is None else expected + 1

    assert where == first_lone(text, [])
    for cut in range(len(text) + 1):
        assert where == first_lone(text, [cut]), cut
    assert where == first_lone(text, list(range(len(text)))), "every byte"
