"""The tenant config cache: in-process by default, Redis when ``TENANCY_REDIS_URL`` is set.

Entries expire after ``cache_ttl_seconds`` and are deleted whenever a config changes
or a tenant is dropped, so a reader never sees a config older than the last change
made through this library.
"""

from __future__ import annotations

from typing import Protocol

from cachetools import TTLCache

from tenancy_fixtures.settings import Settings
from tenancy_fixtures.tenant_ids import validate_tenant_id

__all__ = ["ConfigCache", "MemoryConfigCache", "RedisConfigCache", "open_config_cache"]

_MAX_ENTRIES = 100_000


class ConfigCache(Protocol):
    """Where resolved tenant configs (as JSON text) are cached."""

    async def get(self, tenant_id: str) -> str | None: ...

    async def set(self, tenant_id: str, value: str) -> None: ...

    async def delete(self, tenant_id: str) -> None: ...

    async def aclose(self) -> None: ...


class MemoryConfigCache:
    """A TTL cache in this process."""

    def __init__(self, ttl_seconds: float) -> None:
        self._entries: TTLCache[str, str] = TTLCache(maxsize=_MAX_ENTRIES, ttl=ttl_seconds)

    async def get(self, tenant_id: str) -> str | None:
        return self._entries.get(validate_tenant_id(tenant_id))

    async def set(self, tenant_id: str, value: str) -> None:
        self._entries[validate_tenant_id(tenant_id)] = value

    async def delete(self, tenant_id: str) -> None:
        self._entries.pop(validate_tenant_id(tenant_id), None)

    async def aclose(self) -> None:
        self._entries.clear()


class RedisConfigCache:
    """A TTL cache in Redis, shared by every process that uses the same prefix."""

    def __init__(self, url: str, *, prefix: str, ttl_seconds: float) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url, decode_responses=True)
        self._prefix = prefix
        self._ttl_ms = max(1, int(ttl_seconds * 1000))

    def key(self, tenant_id: str) -> str:
        """The Redis key holding ``tenant_id``'s config."""
        return f"{self._prefix}:config:{validate_tenant_id(tenant_id)}"

    async def get(self, tenant_id: str) -> str | None:
        value = await self._redis.get(self.key(tenant_id))
        return value if isinstance(value, str) else None

    async def set(self, tenant_id: str, value: str) -> None:
        await self._redis.set(self.key(tenant_id), value, px=self._ttl_ms)

    async def delete(self, tenant_id: str) -> None:
        await self._redis.delete(self.key(tenant_id))

    async def aclose(self) -> None:
        await self._redis.aclose()


def open_config_cache(settings: Settings) -> ConfigCache:
    """The cache ``settings`` ask for."""
    if settings.redis_url:
        return RedisConfigCache(
            settings.redis_url, prefix=settings.redis_prefix, ttl_seconds=settings.cache_ttl_seconds
        )
    return MemoryConfigCache(settings.cache_ttl_seconds)
