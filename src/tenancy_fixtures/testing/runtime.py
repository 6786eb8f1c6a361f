"""What the fixtures drive: one manager per pytest process (per xdist worker), the
tenants it makes for tests, the tenants it shares between tests, and their removal.

Imported by the fixtures on first use, so that loading the plugin costs a pytest run
that never asks for a tenant nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.util import LRUCache

from tenancy_fixtures.errors import ConfigError, TenantNotFoundError
from tenancy_fixtures.loading.reports import LoadReport
from tenancy_fixtures.manager import FixtureManager
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.tenancy.config import TenantConfig
from tenancy_fixtures.tenancy.tenants import TenantFixture
from tenancy_fixtures.testing.portal import LoopBound, LoopThread
from tenancy_fixtures.testing.rollback import RolledBackSession

__all__ = [
    "LoopBoundManager",
    "OpenSession",
    "ProvisionedTenant",
    "TenancyRuntime",
    "TenantFactory",
    "TenantSpec",
]

# Compiled statements of the tests' sessions, kept apart from the store's: they are
# compiled with the schema-less key in the translate map (as routed connections are).
_COMPILED_STATEMENTS = 500


@dataclass(frozen=True)
class TenantSpec:
    """What a test asks its tenant to be: tier, overrides and a fixture set to load."""

    tier: str = "free"
    features: Sequence[str] = ()
    limits: Mapping[str, Any] = field(default_factory=dict)
    fixtures: Path | None = None
    format: str | None = None
    options: Mapping[str, Any] | None = None

    def key(self) -> str:
        """The same for two specs that make the same tenant (a shared tenant's key)."""
        fields = [self.tier, sorted(self.features), self.limits, self.fixtures, self.format]
        return json.dumps([*fields, self.options], sort_keys=True, default=str)


@dataclass(frozen=True)
class ProvisionedTenant:
    """A tenant made for one test; ``str(tenant)`` is its id."""

    tenant_id: str
    config: TenantConfig
    settings: Settings
    #: The load of the set the test named, if it named one.
    load: LoadReport | None = None
    #: Shared by the tests of this worker that ask for the same spec (never dropped
    #: before the session ends; its tests write only in rolled-back transactions).
    shared: bool = False

    def __str__(self) -> str:
        return self.tenant_id


class LoopBoundManager(LoopBound):
    """The worker's :class:`FixtureManager`, usable from any event loop.

    Each coroutine method is run on the plugin's loop (where the manager's pooled
    connections live) and awaited from the caller's; other attributes (``settings``,
    ``store``...) are the manager's own.
    """

    def _bind(self, value: Any) -> Any:
        # acting_as() returns a view sharing the manager's pooled connections: it must
        # run on the same loop, or the caller's loop takes connections from the pool.
        if isinstance(value, FixtureManager):
            return LoopBoundManager(value, self._loop)
        return super()._bind(value)

    def __repr__(self) -> str:
        return f"<LoopBoundManager {self._target.settings.safe_database_url()}>"


@dataclass(frozen=True)
class OpenSession:
    """A test's rolled-back transaction on its tenant: ``session`` is what the test
    gets (usable from any event loop)."""

    session: LoopBound
    opened: RolledBackSession


class TenancyRuntime:
    """One manager on one loop thread for the whole session of a pytest process."""

    def __init__(self, settings: Settings, *, worker: str, spares: int) -> None:
        self.settings = settings
        self.spares = spares if settings.backend == "postgresql" else 0
        # A run token: two runs (or two xdist workers) on one database never collide.
        self._prefix = f"t{uuid.uuid4().hex[:6]}_{worker.replace('-', '_')}_"
        self._numbers = itertools.count(1)
        self._shared: dict[str, ProvisionedTenant] = {}
        self._compiled: LRUCache[Any, Any] = LRUCache(_COMPILED_STATEMENTS)
        self._spare_names: list[str] = []
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
        # spare schemas a new tenant is renamed from, added to any pool the database
        # keeps (the app's `warm-up`, other workers and runs), which stays as it is.
        self._spare_names = await self.manager.store.add_spares(self.spares)

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
        try:
            config = self._loop.call(lambda: self.manager.create_tenant(fixture))
        except Exception:
            raise  # refused: the manager made nothing
        except BaseException as exc:
            # Interrupted (Ctrl-C, a timeout) while the tenant was being made, which
            # went on to the end: no fixture will drop it.
            self._drop_after(tenant_id, exc)
            raise
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
                self._drop_after(tenant_id, exc)
                raise
        return ProvisionedTenant(tenant_id, config, self.settings, load)

    def _drop_after(self, tenant_id: str, exc: BaseException) -> None:
        """Drop a tenant whose making ended in ``exc``; a failure to drop it becomes a
        note on ``exc``."""
        try:
            self.drop(tenant_id)
        except Exception as dropping:
            exc.add_note(f"dropping tenant {tenant_id} afterwards failed too: {dropping}")

    def shared(self, spec: TenantSpec) -> ProvisionedTenant:
        """This worker's tenant for ``spec``, made and loaded by the first test that
        asks; kept until :meth:`close` (or :meth:`discard`)."""
        key = spec.key()
        made = self._shared.get(key)
        if made is None:
            made = dataclasses.replace(self.create(spec), shared=True)
            self._shared[key] = made
        return made

    def discard(self, tenant: ProvisionedTenant) -> None:
        """Drop a shared tenant a test wrote to for good; the next test that asks for its
        spec gets a new one."""
        for key, made in list(self._shared.items()):
            if made.tenant_id == tenant.tenant_id:
                del self._shared[key]
        self.drop(tenant.tenant_id)

    def open_session(self, tenant: ProvisionedTenant) -> OpenSession:
        """A transaction on ``tenant`` with an ORM session in it, for one test."""
        opened = self._loop.call(
            lambda: RolledBackSession.open(
                self.manager.store, tenant.tenant_id, compiled_cache=self._compiled
            )
        )
        return OpenSession(LoopBound(opened.session, self._loop), opened)

    def close_session(self, opened: OpenSession) -> bool:
        """Roll the test's transaction back; ``False`` if the test committed it itself
        (its rows stay in the tenant)."""
        self._loop.call(opened.opened.close)
        return not opened.opened.committed

    def drop(self, tenant_id: str) -> None:
        """Drop a tenant the plugin made (a test that dropped it already is fine)."""
        with contextlib.suppress(TenantNotFoundError):
            self._loop.call(lambda: self.manager.drop_tenant(tenant_id))

    def close(self) -> None:
        """Drop the shared tenants, remove the spare schemas this worker made that no
        tenant took, close the manager and the loop."""
        try:
            self._loop.call(self._stop)
        finally:
            self._loop.close()

    async def _stop(self) -> None:
        try:
            try:
                await self._drop_shared()
            finally:
                await self.manager.store.remove_spares(self._spare_names)
        finally:
            await self.manager.aclose()

    async def _drop_shared(self) -> None:
        """Drop every shared tenant; raises the first failure after trying them all."""
        shared, self._shared = list(self._shared.values()), {}
        failures: list[Exception] = []
        for made in shared:
            try:
                with contextlib.suppress(TenantNotFoundError):
                    await self.manager.drop_tenant(made.tenant_id)
            except Exception as exc:  # one failure must not leave the others behind
                failures.append(exc)
        if failures:
            raise failures[0]


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
        if isinstance(features, str | bytes):
            # Not read as one feature per character ("sso": 's', 's', 'o').
            raise ConfigError(
                f"tenant_factory(features=...) takes a list of feature names, not the "
                f"string {features!r}: write features=[{features!r}]",
                key="features",
            )
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
