"""The tenant config cache: in-process by default, Redis when ``TENANCY_REDIS_URL`` is set.

**Keys.** Entries are keyed by the control plane's id (a random id the control plane
stores when it is first initialized, see
:func:`tenancy_fixtures.store.control_plane.ensure_plane_id`) and the tenant id, in both
caches: Redis keys are ``<prefix>:<plane id>:config:<tenant>``. Two databases with the
same tenant id never read each other's config through one Redis, and the URL (with its
password) is never part of a key.

**Invalidation.** Every stored config has a version (the microsecond of its last change).
A change or a drop *invalidates* the tenant at a version: the entry is deleted and that
version is remembered as a floor, so a reader that fetched an older config before the
change can no longer put it back — the check and the write are one atomic step (a Lua
script in Redis).

**Lost invalidations.** An invalidation can be lost: Redis was down when the change was
made, or another process keeps its own in-process cache. The fallback is a *version
check* against the control plane (one primary-key lookup of the config's timestamp, see
:class:`VersionChecks`) rather than waiting for the TTL: a cached entry is served only
while this process has confirmed, within the last ``cache_revalidate_seconds``, that its
version is still the stored one; otherwise the read checks the version first and reloads
if it changed. So a config is never older than the last change by more than
``cache_revalidate_seconds`` (default 1 s; 0 checks on every read), instead of up to the
TTL (an hour). Why a window rather than a check on every read: the check is a database
round trip (a control-plane transaction: on SQLite a new connection to ``tenancy.db``),
which costs far more than the cached read it guards. Microseconds per cached read of one
premium tenant (best of 30 rounds of 2,000 reads, 300 when each is checked; this
2-CPU machine, shared with other work):

=============================  ========  ===============  ===============
cached read, µs                 before    window 1 s       check each read
=============================  ========  ===============  ===============
SQLite, in-process cache           4.7         6.2             1,541
SQLite, Redis cache                103          92             1,608
PostgreSQL, in-process cache       5.0         6.3               436
PostgreSQL, Redis cache             77          84               511
=============================  ========  ===============  ===============

With the window, a read costs what it did plus one check per tenant per window and
process (~1.5 ms on SQLite, ~0.4 ms on PostgreSQL, once a second).

**A hung Redis.** Each Redis call has a short timeout (``redis_timeout_seconds``, 0.25 s)
and goes through a circuit breaker, the ``purgatory`` library's (asyncio-native, typed,
no dependency of its own; ``pybreaker``'s async support needs Tornado, ``circuitbreaker``
ships no types): after
``redis_breaker_failures`` failures in a row the cache leaves Redis alone for
``redis_breaker_seconds`` and answers from the database, then lets a call through to see
whether Redis is back. The fallback is logged once per outage (a warning when it starts,
an info line when Redis answers again), not once per read.

**Off.** With ``TENANCY_CACHE_OPTIMIZATION=false`` :func:`open_config_cache` hands out a
:class:`NoConfigCache`: nothing is kept, in this process or in Redis (which is then never
connected to, even with ``TENANCY_REDIS_URL`` set), and every config read is a
control-plane query. Configs read are the same; only slower.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar

from cachetools import LRUCache, TLRUCache

from tenancy_fixtures.errors import SettingsError, StorageError
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.tenancy.redis_tls import redis_tls_options, without_tls_files

__all__ = [
    "CachedConfig",
    "ConfigCache",
    "MemoryConfigCache",
    "NoConfigCache",
    "RedisConfigCache",
    "VersionChecks",
    "now_version",
    "open_config_cache",
    "version_checks",
]

_MAX_ENTRIES = 100_000

log = get_logger("tenancy_fixtures.tenancy.config_cache")

T = TypeVar("T")

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


class CachedConfig(NamedTuple):
    """A cached config: its JSON text and the version it was stored at."""

    value: str
    version: int


class ConfigCache(Protocol):
    """Where resolved tenant configs (as JSON text) are cached, per control plane."""

    async def get(self, plane_id: str, tenant_id: str) -> CachedConfig | None:
        """The cached config, or ``None``."""
        ...

    async def set(self, plane_id: str, tenant_id: str, value: str, *, version: int) -> bool:
        """Cache ``value`` unless the tenant was invalidated at a later version."""
        ...

    async def invalidate(self, plane_id: str, tenant_id: str, *, version: int) -> bool:
        """Forget the entry; refuse later ``set`` calls of versions before ``version``.

        Returns whether the invalidation reached the cache (a Redis that is down: no).
        """
        ...

    async def forget(self, plane_id: str, tenant_id: str) -> bool:
        """Delete everything kept for ``tenant_id`` (a dropped tenant): entry and floor.

        Returns whether it reached the cache.
        """
        ...

    async def aclose(self) -> None:
        """Release what this handle holds."""
        ...


Key = tuple[str, str]


def _key(plane_id: str, tenant_id: str) -> Key:
    return (plane_id, validate_tenant_id(tenant_id))


class VersionChecks:
    """Which config versions this process confirmed as current, and when.

    Process-wide, like the control plane it mirrors: any manager's confirmation serves
    every other manager here. Bounded in size; nothing ever needs clearing.
    """

    def __init__(self) -> None:
        self._confirmed: LRUCache[Key, tuple[int, float]] = LRUCache(maxsize=_MAX_ENTRIES)

    def fresh(self, plane_id: str, tenant_id: str, version: int, *, within: float) -> bool:
        """Whether ``version`` was confirmed current less than ``within`` seconds ago."""
        confirmed = self._confirmed.get(_key(plane_id, tenant_id))
        if confirmed is None or confirmed[0] != version:
            return False
        return time.monotonic() - confirmed[1] < within

    def confirm(self, plane_id: str, tenant_id: str, version: int, *, since: float) -> None:
        """Record that ``version`` was current at ``since`` (``time.monotonic()`` taken
        before the query that said so)."""
        self._confirmed[_key(plane_id, tenant_id)] = (version, since)

    def forget(self, plane_id: str, tenant_id: str) -> None:
        """Drop what was confirmed (after a change made in this process)."""
        self._confirmed.pop(_key(plane_id, tenant_id), None)


version_checks = VersionChecks()


def _own_ttl(_key: Key, value: tuple[object, float], now: float) -> float:
    """Each entry is stored with the TTL of the settings that stored it."""
    return now + value[1]


class _MemoryState:
    """Entries and floors of the in-process cache; each entry expires by its own TTL."""

    def __init__(self) -> None:
        self.entries: TLRUCache[Key, tuple[CachedConfig, float]] = TLRUCache(
            maxsize=_MAX_ENTRIES, ttu=_own_ttl
        )
        self.floors: TLRUCache[Key, tuple[int, float]] = TLRUCache(
            maxsize=_MAX_ENTRIES, ttu=_own_ttl
        )
        self.handles = 0


class MemoryConfigCache:
    """A TTL cache in this process.

    ``MemoryConfigCache(ttl)`` has entries of its own; :func:`open_config_cache` hands
    every manager of the process a handle on one shared set, so a change made through
    one is seen by all. Closing a handle never empties what other live handles use: the
    shared entries and floors go when the last handle is closed.
    """

    def __init__(self, ttl_seconds: float, *, _shared: _MemoryState | None = None) -> None:
        self._ttl = ttl_seconds
        self._state = _shared if _shared is not None else _MemoryState()
        self._state.handles += 1
        self._closed = False

    async def get(self, plane_id: str, tenant_id: str) -> CachedConfig | None:
        found = self._state.entries.get(_key(plane_id, tenant_id))
        return found[0] if found is not None else None

    async def set(self, plane_id: str, tenant_id: str, value: str, *, version: int) -> bool:
        key = _key(plane_id, tenant_id)
        floor = self._state.floors.get(key)
        if floor is not None and version < floor[0]:
            return False
        self._state.entries[key] = (CachedConfig(value, version), self._ttl)
        return True

    async def invalidate(self, plane_id: str, tenant_id: str, *, version: int) -> bool:
        key = _key(plane_id, tenant_id)
        floor = self._state.floors.get(key)
        self._state.floors[key] = (max(version, floor[0] if floor else 0), self._ttl)
        self._state.entries.pop(key, None)
        return True

    async def forget(self, plane_id: str, tenant_id: str) -> bool:
        key = _key(plane_id, tenant_id)
        self._state.entries.pop(key, None)
        self._state.floors.pop(key, None)
        return True

    async def aclose(self) -> None:
        global _shared_memory
        if self._closed:
            return
        self._closed = True
        self._state.handles -= 1
        if self._state.handles == 0:
            self._state.entries.clear()
            self._state.floors.clear()
            if _shared_memory is self._state:
                _shared_memory = None


class NoConfigCache:
    """No cache (cache optimisation off): every read misses, nothing is stored."""

    async def get(self, plane_id: str, tenant_id: str) -> CachedConfig | None:
        del plane_id, tenant_id
        return None

    async def set(self, plane_id: str, tenant_id: str, value: str, *, version: int) -> bool:
        del plane_id, tenant_id, value, version
        return False

    async def invalidate(self, plane_id: str, tenant_id: str, *, version: int) -> bool:
        del plane_id, tenant_id, version
        return True

    async def forget(self, plane_id: str, tenant_id: str) -> bool:
        del plane_id, tenant_id
        return True

    async def aclose(self) -> None:
        return None


class RedisConfigCache:
    """A TTL cache in Redis, shared by every process that uses the same prefix.

    Redis being unreachable, slow or refusing never fails an operation: reads fall
    through to the database, and a lost invalidation is caught by the version check.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        ttl_seconds: float,
        timeout_seconds: float = 0.25,
        breaker_failures: int = 2,
        breaker_seconds: float = 5.0,
        tls: Mapping[str, Any] | None = None,
    ) -> None:
        # Imported here: a process without TENANCY_REDIS_URL never needs them.
        from purgatory import AsyncCircuitBreakerFactory
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        try:
            self._redis = Redis.from_url(
                without_tls_files(url) if tls else url,
                decode_responses=True,
                socket_timeout=timeout_seconds,
                socket_connect_timeout=timeout_seconds,
                # The breaker decides when to try again, not the client.
                retry=Retry(NoBackoff(), 0),
                **(tls or {}),
            )
        except (ValueError, TypeError) as exc:
            raise SettingsError(f"TENANCY_REDIS_URL: not a Redis URL: {exc}") from None
        self._prefix = prefix
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        # Connecting (TLS handshake included) and the reply, each within the timeout.
        self._deadline = 2 * timeout_seconds
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=breaker_failures, default_ttl=breaker_seconds
        )
        self._breaker_seconds = breaker_seconds
        self._outage_since: float | None = None
        self._set_unless_stale = self._redis.register_script(_SET_UNLESS_STALE)
        self._invalidate = self._redis.register_script(_INVALIDATE)

    def key(self, plane_id: str, tenant_id: str) -> str:
        """The Redis key holding ``tenant_id``'s config in control plane ``plane_id``."""
        return f"{self._prefix}:{plane_id}:config:{validate_tenant_id(tenant_id)}"

    def floor_key(self, plane_id: str, tenant_id: str) -> str:
        """The Redis key holding ``tenant_id``'s invalidation floor."""
        return f"{self._prefix}:{plane_id}:config-floor:{validate_tenant_id(tenant_id)}"

    async def _call(self, op: str, call: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
        """``(True, result)``, or ``(False, None)`` when Redis failed or is left alone."""
        from purgatory.domain.model import OpenedState

        try:
            breaker = await self._breakers.get_breaker("redis")
            async with breaker:
                async with asyncio.timeout(self._deadline):
                    result = await call()
        except OpenedState:
            return False, None
        except Exception as exc:  # any failure of the call is Redis failing
            self._failed(op, exc)
            return False, None
        if self._outage_since is not None:
            log.info(
                "config_cache_redis_recovered",
                down_for_seconds=round(time.monotonic() - self._outage_since, 3),
            )
            self._outage_since = None
        return True, result

    def _failed(self, op: str, exc: BaseException) -> None:
        if self._outage_since is not None:
            log.debug("config_cache_redis_failed", op=op, error=_describe(exc))
            return
        self._outage_since = time.monotonic()
        log.warning(
            "config_cache_redis_unavailable",
            op=op,
            error=_describe(exc),
            fallback="database",
            retry_after_seconds=self._breaker_seconds,
        )

    async def get(self, plane_id: str, tenant_id: str) -> CachedConfig | None:
        key = self.key(plane_id, tenant_id)
        ok, value = await self._call("get", lambda: self._redis.get(key))
        if not ok or not isinstance(value, str):
            return None
        version, _, config = value.partition(":")
        return CachedConfig(config, int(version)) if version.isdigit() else None

    async def set(self, plane_id: str, tenant_id: str, value: str, *, version: int) -> bool:
        keys = [self.key(plane_id, tenant_id), self.floor_key(plane_id, tenant_id)]
        args: list[str | int] = [f"{version}:{value}", version, self._ttl_ms]
        ok, written = await self._call("set", lambda: self._set_unless_stale(keys=keys, args=args))
        return ok and bool(written)

    async def invalidate(self, plane_id: str, tenant_id: str, *, version: int) -> bool:
        keys = [self.key(plane_id, tenant_id), self.floor_key(plane_id, tenant_id)]
        ok, _ = await self._call(
            "invalidate", lambda: self._invalidate(keys=keys, args=[version, self._ttl_ms])
        )
        return ok

    async def forget(self, plane_id: str, tenant_id: str) -> bool:
        keys = [self.key(plane_id, tenant_id), self.floor_key(plane_id, tenant_id)]
        ok, _ = await self._call("forget", lambda: self._redis.delete(*keys))
        return ok

    async def ping(self) -> None:
        """Ask Redis for a reply, past the breaker (a readiness probe wants the truth);
        :class:`StorageError` saying why when none comes within the timeout."""
        try:
            async with asyncio.timeout(self._deadline):
                await self._redis.ping()
        except Exception as exc:  # any failure of the call is Redis failing
            raise StorageError(f"Redis does not answer: {_describe(exc)}", transient=True) from None

    async def aclose(self) -> None:
        await self._redis.aclose()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_shared_memory: _MemoryState | None = None


def open_config_cache(settings: Settings) -> ConfigCache:
    """The cache ``settings`` ask for (none with ``cache_optimization`` off).

    The in-process cache is one set of entries shared by every manager of this process
    (keyed by control plane), so a change made through one is seen at once by all; other
    processes see it through Redis, or by the version check.
    """
    global _shared_memory
    if not settings.cache_optimization:
        return NoConfigCache()
    if settings.redis_url:
        return RedisConfigCache(
            settings.redis_url,
            prefix=settings.redis_prefix,
            ttl_seconds=settings.cache_ttl_seconds,
            timeout_seconds=settings.redis_timeout_seconds,
            breaker_failures=settings.redis_breaker_failures,
            breaker_seconds=settings.redis_breaker_seconds,
            tls=redis_tls_options(settings),
        )
    if _shared_memory is None:
        _shared_memory = _MemoryState()
    return MemoryConfigCache(settings.cache_ttl_seconds, _shared=_shared_memory)
