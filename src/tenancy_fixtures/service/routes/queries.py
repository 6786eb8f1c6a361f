"""Query parameters that several routes share: paging, the tenant filters, and the
pattern every text filter matches (:data:`NO_NUL`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

__all__ = ["NO_NUL", "IdPrefix", "Limit", "Offset", "Tier"]

#: Any text but a NUL character, which PostgreSQL's text cannot hold (a filter holding
#: one failed there as a 503 and matched nothing on SQLite): a 422 on both.
NO_NUL = r"^[^\x00]*$"

Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip.")]
IdPrefix = Annotated[
    str | None, Query(max_length=64, pattern=NO_NUL, description="Ids starting with.")
]
Tier = Annotated[str | None, Query(max_length=32, pattern=NO_NUL)]
