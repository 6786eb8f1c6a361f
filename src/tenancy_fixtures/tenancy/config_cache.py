"""The tenant config cache: in-process by default, Redis when ``TENANCY_REDIS_URL`` is set.

Entries expire after ``cache_ttl_seconds``. Every stored config has a version (the
microsecond of its last change). A change or a drop *invalidates* the tenant at a
version: the entry is deleted and that version is remembered as a floor, so a reader
that fetched an older config before the change can no longer put it back — the
check and the write are one atomic step (a Lua script in Redis). A reader therefore
never sees a config older than the last change made through this library.
"""

from __future__ import annotations

import time
from typing import Protocol

from cachetools import TTLCache

from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.settings import Settings

__all__ = [
    "ConfigCache",
    "MemoryConfigCache",
    "RedisConfigCache",
    "now_version",
    "open_config_cache",
]

_MAX_ENTRIES = 100_000

log = get_logger("tenancy_fixtures.tenancy.config_cache")

# KEYS: entry, floor. ARGV: value, version, ttl in ms. Writes unless invalidated later.
_SET_UNLESS_STALE = """
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) < floor then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""
# KEYS: entry, floor. ARGV: version, ttl in ms. Raises the floor, deletes the entry.
_INVALIDATE = """
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) > floor then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end
redis.call('DEL', KEYS[1])
return 1
"""


def now_version() -> int:
    """A version later than every config stored so far (microseconds since the epoch)."""
    return time.time_ns() // 1000


class ConfigCache(Protocol):
    """Where resolved tenant configs (as JSON text) are cached."""

    async def get(self, tenant_id: str) -> str | None:
        """The cached config, or ``None``."""
        ...

    async def set(self, tenant_id: str, value: str, *, version: int) -> bool:
        """Cache ``value`` unless the tenant was invalidated at a later version."""
        ...

    async def invalidate(self, tenant_id: str, *, version: int) -> None:
        """Forget the entry; refuse later ``set`` calls of versions before ``version``."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryConfigCache:
    """A TTL cache in this process (each process and manager has its own)."""

    def __init__(self, ttl_seconds: float) -> None:
        self._entries: TTLCache[str, str] = TTLCache(maxsize=_MAX_ENTRIES, ttl=ttl_seconds)
        self._floors: TTLCache[str, int] = TTLCache(maxsize=_MAX_ENTRIES, ttl=ttl_seconds)

    async def get(self, tenant_id: str) -> str | None:
        return self._entries.get(validate_tenant_id(tenant_id))

    async def set(self, tenant_id: str, value: str, *, version: int) -> bool:
        key = validate_tenant_id(tenant_id)
        if version < self._floors.get(key, 0):
            return False
        self._entries[key] = value
        return True

    async def invalidate(self, tenant_id: str, *, version: int) -> None:
        key = validate_tenant_id(tenant_id)
        self._floors[key] = max(version, self._floors.get(key, 0))
        self._entries.pop(key, None)

    async def aclose(self) -> None:
        self._entries.clear()
        self._floors.clear()


class RedisConfigCache:
    """A TTL cache in Redis, shared by every process that uses the same prefix.

    Redis being unreachable never fails an operation: reads fall through to the
    database, and a failed invalidation is logged as an error.
    """

    def __init__(self, url: str, *, prefix: str, ttl_seconds: float) -> None:
        # Imported here: a process without TENANCY_REDIS_URL never needs redis.
        from redis.asyncio import Redis
        from redis.exceptions import RedisError

        self._errors: type[Exception] = RedisError
        self._redis = Redis.from_url(url, decode_responses=True)
        self._prefix = prefix
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._set_unless_stale = self._redis.register_script(_SET_UNLESS_STALE)
        self._invalidate = self._redis.register_script(_INVALIDATE)

    def key(self, tenant_id: str) -> str:
        """The Redis key holding ``tenant_id``'s config."""
        return f"{self._prefix}:config:{validate_tenant_id(tenant_id)}"

    def _floor_key(self, tenant_id: str) -> str:
        return f"{self._prefix}:config-floor:{validate_tenant_id(tenant_id)}"

    async def get(self, tenant_id: str) -> str | None:
        key = self.key(tenant_id)
        try:
            value = await self._redis.get(key)
        except self._errors as exc:
            log.warning("config_cache_unavailable", op="get", tenant_id=tenant_id, error=str(exc))
            return None
        return value if isinstance(value, str) else None

    async def set(self, tenant_id: str, value: str, *, version: int) -> bool:
        keys = [self.key(tenant_id), self._floor_key(tenant_id)]
        try:
            written = await self._set_unless_stale(keys=keys, args=[value, version, self._ttl_ms])
        except self._errors as exc:
            log.warning("config_cache_unavailable", op="set", tenant_id=tenant_id, error=str(exc))
            return False
        return bool(written)

    async def invalidate(self, tenant_id: str, *, version: int) -> None:
        keys = [self.key(tenant_id), self._floor_key(tenant_id)]
        try:
            await self._invalidate(keys=keys, args=[version, self._ttl_ms])
        except self._errors as exc:
            # The change is committed; a cached copy may outlive it until its TTL.
            log.error(
                "config_cache_invalidation_failed",
                tenant_id=tenant_id,
                error=str(exc),
                stale_for_at_most_seconds=self._ttl_ms / 1000,
            )

    async def aclose(self) -> None:
        await self._redis.aclose()


_shared_memory_caches: dict[tuple[str, float], MemoryConfigCache] = {}


def open_config_cache(settings: Settings) -> ConfigCache:
    """The cache ``settings`` ask for.

    The in-process cache is shared by everything in this process that uses the same
    database, so a change made through one manager invalidates every reader here;
    other processes see it only through Redis (or after the TTL).
    """
    if settings.redis_url:
        return RedisConfigCache(
            settings.redis_url, prefix=settings.redis_prefix, ttl_seconds=settings.cache_ttl_seconds
        )
    key = (settings.database_url, settings.cache_ttl_seconds)
    cache = _shared_memory_caches.get(key)
    if cache is None:
        cache = _shared_memory_caches[key] = MemoryConfigCache(settings.cache_ttl_seconds)
    return cache
