"""What the fixtures drive: one manager per pytest process (per xdist worker), the
tenants it makes for tests, and their removal.

Imported by the fixtures on first use, so that loading the plugin costs a pytest run
that never asks for a tenant nothing.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenancy_fixtures.errors import TenantNotFoundError
from tenancy_fixtures.loading.reports import LoadReport
from tenancy_fixtures.manager import FixtureManager
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.tenancy.config import TenantConfig
from tenancy_fixtures.tenancy.tenants import TenantFixture
from tenancy_fixtures.testing.portal import LoopThread

__all__ = ["LoopBoundManager", "ProvisionedTenant", "TenancyRuntime", "TenantFactory", "TenantSpec"]


@dataclass(frozen=True)
class TenantSpec:
    """What a test asks its tenant to be: tier, overrides and a fixture set to load."""

    tier: str = "free"
    features: Sequence[str] = ()
    limits: Mapping[str, Any] = field(default_factory=dict)
    fixtures: Path | None = None
    format: str | None = None
    options: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ProvisionedTenant:
    """A tenant made for one test; ``str(tenant)`` is its id."""

    tenant_id: str
    config: TenantConfig
    settings: Settings
    #: The load of the set the test named, if it named one.
    load: LoadReport | None = None

    def __str__(self) -> str:
        return self.tenant_id


class LoopBoundManager:
    """The worker's :class:`FixtureManager`, usable from any event loop.

    Each coroutine method is run on the plugin's loop (where the manager's pooled
    connections live) and awaited from the caller's; other attributes (``settings``,
    ``store``...) are the manager's own.
    """

    def __init__(self, manager: FixtureManager, loop: LoopThread) -> None:
        self._manager = manager
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._manager, name)
        if not inspect.iscoroutinefunction(value):
            return value

        @functools.wraps(value)
        async def on_plugin_loop(*args: Any, **kwargs: Any) -> Any:
            return await self._loop.run(lambda: value(*args, **kwargs))

        return on_plugin_loop

    def __repr__(self) -> str:
        return f"<LoopBoundManager {self._manager.settings.safe_database_url()}>"


class TenancyRuntime:
    """One manager on one loop thread for the whole session of a pytest process."""

    def __init__(self, settings: Settings, *, worker: str, spares: int) -> None:
        self.settings = settings
        self.spares = spares if settings.backend == "postgresql" else 0
        # A run token: two runs (or two xdist workers) on one database never collide.
        self._prefix = f"t{uuid.uuid4().hex[:6]}_{worker.replace('-', '_')}_"
        self._numbers = itertools.count(1)
        self._loop = LoopThread()
        self.manager = FixtureManager(settings)
        try:
            self._loop.call(self._start)
        except BaseException:
            self._loop.close()
            raise

    async def _start(self) -> None:
        await self.manager.store.initialize()
        # SQLite: builds the template file every tenant is copied from; PostgreSQL: the
        # spare schemas a new tenant is renamed from.
        await self.manager.store.warm_up(self.spares)

    @property
    def public_manager(self) -> LoopBoundManager:
        """The manager as the ``tenancy_manager`` fixture hands it out."""
        return LoopBoundManager(self.manager, self._loop)

    def new_tenant_id(self) -> str:
        """An id no other test, worker or concurrent run uses."""
        return f"{self._prefix}{next(self._numbers)}"

    def create(self, spec: TenantSpec) -> ProvisionedTenant:
        """Create a tenant and load ``spec.fixtures`` into it; nothing is left behind if
        either step fails."""
        tenant_id = self.new_tenant_id()
        fixture = TenantFixture(
            tenant_id=tenant_id, tier=spec.tier, features=spec.features, limits=spec.limits
        )
        config = self._loop.call(lambda: self.manager.create_tenant(fixture))
        load = None
        if spec.fixtures is not None:
            source = spec.fixtures
            try:
                load = self._loop.call(
                    lambda: self.manager.load_fixtures(
                        tenant_id, source, format=spec.format, options=spec.options
                    )
                )
            except BaseException as exc:
                try:
                    self.drop(tenant_id)
                except Exception as dropping:
                    exc.add_note(f"dropping tenant {tenant_id} afterwards failed too: {dropping}")
                raise
        return ProvisionedTenant(tenant_id, config, self.settings, load)

    def drop(self, tenant_id: str) -> None:
        """Drop a tenant the plugin made (a test that dropped it already is fine)."""
        with contextlib.suppress(TenantNotFoundError):
            self._loop.call(lambda: self.manager.drop_tenant(tenant_id))

    def close(self) -> None:
        """Remove the spare schemas this worker made, close the manager and the loop."""
        try:
            self._loop.call(self._stop)
        finally:
            self._loop.close()

    async def _stop(self) -> None:
        try:
            if self.spares:
                await self.manager.store.warm_up(0)
        finally:
            await self.manager.aclose()


class TenantFactory:
    """``tenant_factory(...)`` makes one tenant, ``tenant_factory.many(n, ...)`` several;
    every one is dropped when the test ends."""

    def __init__(self, runtime: TenancyRuntime, resolve: Callable[[Path], Path]) -> None:
        self._runtime = runtime
        self._resolve = resolve
        self.made: list[ProvisionedTenant] = []

    def __call__(
        self,
        *,
        tier: str = "free",
        features: Sequence[str] = (),
        limits: Mapping[str, Any] | None = None,
        fixtures: Path | str | None = None,
        format: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> ProvisionedTenant:
        """A new tenant of ``tier`` with ``features`` and ``limits``, loaded with the set
        at ``fixtures`` (relative to the test file's directory) when given."""
        spec = TenantSpec(
            tier=tier,
            features=features,
            limits=limits or {},
            fixtures=None if fixtures is None else self._resolve(Path(fixtures)),
            format=format,
            options=options,
        )
        made = self._runtime.create(spec)
        self.made.append(made)
        return made

    def many(self, count: int, **options: Any) -> list[ProvisionedTenant]:
        """``count`` new tenants, each as :meth:`__call__` with ``options`` makes it."""
        return [self(**options) for _ in range(count)]

    def drop_all(self) -> None:
        """Drop every tenant made, newest first; raises the first failure after trying
        them all."""
        failures: list[BaseException] = []
        while self.made:
            try:
                self._runtime.drop(self.made.pop().tenant_id)
            except Exception as exc:  # one failure must not leave the others behind
                failures.append(exc)
        if failures:
            raise failures[0]
