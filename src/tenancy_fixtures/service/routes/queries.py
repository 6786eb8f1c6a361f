"""Query parameters that several routes share: paging and the tenant filters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

__all__ = ["IdPrefix", "Limit", "Offset", "Tier"]

Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip.")]
IdPrefix = Annotated[str | None, Query(max_length=64, description="Ids starting with.")]
Tier = Annotated[str | None, Query(max_length=32)]
