"""Array columns (PostgreSQL ``ARRAY``): a list of values, each typed and checked as a
value of the element type is.

A record gives an array as a JSON list (in CSV, or any text, as the list's JSON text);
``null`` elements stay null. An ``ARRAY(..., dimensions=n)`` column takes lists nested
``n`` deep; without ``dimensions``, one level (PostgreSQL itself refuses ragged ones).
SQLite has no arrays: a schema with one is refused when its store starts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["array_converter"]

Converter = Callable[[Any], Any]


def array_converter(element: Converter, dimensions: int | None) -> Converter:
    """A converter of arrays of ``element``'s values, ``dimensions`` deep (default 1)."""
    depth = dimensions or 1

    def items(value: Any, level: int) -> list[Any]:
        if not isinstance(value, list):
            found = type(value).__name__
            inner = " of arrays" * (depth - level)
            raise ValueError(f"expected an array{inner} (a JSON list), found {found}")
        if level < depth:
            return [None if v is None else items(v, level + 1) for v in value]
        return [None if v is None else element(v) for v in value]

    def convert(value: Any) -> list[Any]:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (json.JSONDecodeError, RecursionError):
                raise ValueError("expected an array: a JSON list, or its JSON text") from None
        return items(value, 1)

    return convert
