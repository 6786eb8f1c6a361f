"""Rows into ``COPY ... FROM STDIN`` text, by a function compiled from one expression
per column.

:mod:`~tenancy_fixtures.loading.copy_text` chooses the expressions from a table's
column types; this module only compiles them, and imports no SQLAlchemy, so a parse
worker can build a table's encoder from expressions it was sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from tenancy_fixtures.loading.generated_code import compiled

__all__ = ["ESCAPES", "RowEncoder", "encoder_from"]

#: Encodes a batch of rows (in column order) into ``COPY`` text bytes.
RowEncoder = Callable[[Sequence[Sequence[Any]]], bytes]

#: What ``COPY`` text escapes in a value.
ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _escaped(value: str) -> str:
    return value.translate(ESCAPES)


def _json_text(value: Any) -> str:
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, which json writes whole
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.translate(ESCAPES)


def encoder_from(expressions: Sequence[str]) -> RowEncoder:
    """The encoder whose column ``i`` is written as ``expressions[i]``, a Python
    expression turning a non-NULL value ``v`` into its text (it may use ``T``/``F``
    for booleans, ``E`` to escape text and ``J`` to write JSON); ``NULL`` is ``\\N``."""
    parts = [
        f"{{N if (v := r[{i}]) is None else {expression}}}"
        for i, expression in enumerate(expressions)
    ]
    line = "\\t".join(parts) + "\\n"
    source = f"def encode(rows):\n    return ''.join([f'{line}' for r in rows]).encode()\n"
    namespace: dict[str, Any] = {"N": "\\N", "T": "t", "F": "f", "E": _escaped, "J": _json_text}
    exec(compiled(source), namespace)  # noqa: S102 - generated from our own schema
    encode: RowEncoder = namespace["encode"]
    return encode
