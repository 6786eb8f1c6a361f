"""Compiling the code the loaders generate from a schema (row builders, checks, COPY
encoders), once per process.

Each load builds its functions afresh (their namespaces hold that load's objects), but
the source text depends only on the schema: compiling it is the costly part and the
same for every tenant and every load, so the code objects are kept.
"""

from __future__ import annotations

from functools import lru_cache
from types import CodeType
from typing import Literal

__all__ = ["compiled"]


@lru_cache(maxsize=1024)
def compiled(source: str, mode: Literal["exec", "eval"] = "exec") -> CodeType:
    """``source`` compiled (generated from our own schema definitions)."""
    return compile(source, "<tenancy_fixtures generated>", mode)
