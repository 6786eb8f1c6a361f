"""Tenant configuration: tiers, feature flags and limits, resolved and stored per tenant.

A tenant's config is the template's defaults, overlaid by its tier, overlaid by the
tenant's own overrides (:func:`resolve_config`), validated by pydantic models. It is
stored in the control plane and read through a TTL cache that every change
invalidates; a cached copy is checked against the stored version at least every
``cache_revalidate_seconds`` (see :mod:`tenancy_fixtures.tenancy.config_cache`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.types import AllowInfNan
from sqlalchemy import select

from tenancy_fixtures.errors import (
    ConfigError,
    StorageError,
    TemplateError,
    TenantNotFoundError,
)
from tenancy_fixtures.fixtures.base import BaseFixture
from tenancy_fixtures.fixtures.context import LoadContext
from tenancy_fixtures.fixtures.schema import RevisionHistory, SchemaFixture, tenant_metadata
from tenancy_fixtures.fixtures.templates import TemplateDirectory
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.migrations.scripts import migration_scripts
from tenancy_fixtures.monitoring.limits import check_lowered_limits
from tenancy_fixtures.settings import Settings, load_settings
from tenancy_fixtures.store import TenantSession, TenantStore, control_plane, open_store
from tenancy_fixtures.tenancy.audit import audited
from tenancy_fixtures.tenancy.config_cache import (
    CachedConfig,
    ConfigCache,
    now_version,
    open_config_cache,
    version_checks,
)
from tenancy_fixtures.tenancy.merging import deep_merge
from tenancy_fixtures.tenancy.sizes import format_size, parse_size
from tenancy_fixtures.tenancy.tenants import (
    TenantFixture,
    create_tenant,
    get_tenant,
    update_tenant,
)

__all__ = [
    "NULLABLE_SETTINGS",
    "TIERS",
    "ConfigFixture",
    "ConfigTemplate",
    "LimitsCheck",
    "TenantConfig",
    "TenantLimits",
    "overrides_of",
    "own_overrides",
    "resolve_config",
]

log = get_logger("tenancy_fixtures.tenancy.config")

Tier = Literal["free", "premium", "enterprise"]
TIERS: tuple[Tier, ...] = ("free", "premium", "enterprise")
#: A setting's value: JSON has no NaN or infinity, so neither does a setting. ``None``
#: only for a setting of :data:`NULLABLE_SETTINGS`.
SettingValue = str | int | Annotated[float, AllowInfNan(False)] | bool | None
#: The settings whose ``None`` (JSON ``null``) means something, and what: it overrides
#: the tier's value like any other (so a new tier keeps it).
NULLABLE_SETTINGS: Mapping[str, str] = {"retention_days": "events are kept forever"}
#: The largest limit: what a signed 64-bit integer (a BIGINT) holds.
MAX_LIMIT = 2**63 - 1
#: Strict, so ``True`` is not taken for 1; at most :data:`MAX_LIMIT` (storage: bytes).
Count = Annotated[int, Field(ge=0, le=MAX_LIMIT, strict=True)]
#: What no database stores in text: NUL, and a lone surrogate (no UTF-8 encodes one).
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _shown(name: object) -> str:
    """``name`` fit for a message or an error's ``key``: NUL and surrogates as
    ``\\uXXXX`` escapes (a problem document could not be encoded otherwise)."""
    return _UNSTORABLE.sub(lambda found: f"\\u{ord(found[0]):04x}", str(name))


def _unstorable(text: object) -> str | None:
    """What in ``text`` (if a string) no database stores, or ``None``."""
    found = _UNSTORABLE.search(text) if isinstance(text, str) else None
    if found is None:
        return None
    return "a NUL character" if found[0] == "\x00" else "a lone surrogate"


class TenantLimits(BaseModel):
    """What a tenant may use. ``storage`` is in bytes (given as ``"100GB"`` or an int)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_calls: Count
    storage: Count
    users: Count
    workspaces: Count
    ai_requests_per_day: Count
    rate_limit_per_minute: Count

    @field_validator("storage", mode="before")
    @classmethod
    def _storage_size(cls, value: Any) -> int:
        return parse_size(value)


class TenantConfig(BaseModel):
    """A tenant's resolved configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    tier: Tier
    features: tuple[str, ...]
    limits: TenantLimits
    settings: dict[str, SettingValue] = Field(default_factory=dict)

    def has_feature(self, feature: str) -> bool:
        """Whether the feature flag is on for this tenant."""
        return feature in self.features

    def checksum(self) -> str:
        """A digest of the config, stable across processes."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def describe_limits(self) -> dict[str, str | int]:
        """Limits for people: storage as ``"100GB"``."""
        limits: dict[str, str | int] = dict(self.limits.model_dump())
        limits["storage"] = format_size(self.limits.storage)
        return limits


class _Layer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    features: list[str] = Field(default_factory=list)
    limits: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, SettingValue] = Field(default_factory=dict)


class ConfigTemplate(BaseModel):
    """``config_template.json``: known feature flags, defaults and tier presets."""

    model_config = ConfigDict(extra="forbid")

    version: int
    features: dict[str, str]
    defaults: _Layer
    tiers: dict[Tier, _Layer]

    @classmethod
    def load(cls, templates: TemplateDirectory) -> ConfigTemplate:
        """Read and validate the config template of ``templates``."""
        document = templates.read_json(TemplateDirectory.CONFIG_TEMPLATE)
        try:
            template = cls.model_validate(document)
        except ValidationError as exc:
            raise TemplateError(
                f"invalid config template: {exc.errors()[0]['msg']} at "
                f"{'.'.join(map(str, exc.errors()[0]['loc']))}",
                path=templates.resolve(TemplateDirectory.CONFIG_TEMPLATE),
            ) from None
        missing = set(TIERS) - set(template.tiers)
        if missing:
            raise TemplateError(
                f"config template lacks tiers {sorted(missing)}",
                path=templates.resolve(TemplateDirectory.CONFIG_TEMPLATE),
            )
        template.check_tiers(templates.resolve(TemplateDirectory.CONFIG_TEMPLATE))
        return template

    def settings_named(self) -> set[str]:
        """The settings a tenant may have: those the defaults or a tier give."""
        return {name for layer in (self.defaults, *self.tiers.values()) for name in layer.settings}

    def check_tiers(self, path: Path) -> None:
        """Resolve each tier with no overrides: a flag, limit or setting the template
        itself gets wrong is a :class:`TemplateError` naming ``path`` and the tier, not
        a :class:`ConfigError` blamed on the first tenant created."""
        probe = "config_template"
        for tier in self.tiers:
            try:
                resolve_config(self, TenantFixture(tenant_id=probe, tier=tier))
            except ConfigError as exc:
                detail = exc.message.removeprefix(f"tenant '{probe}': ")
                raise TemplateError(
                    f"invalid config template: tier {tier!r}: {detail}", path=path
                ) from None


def resolve_config(template: ConfigTemplate, tenant: TenantFixture) -> TenantConfig:
    """Defaults, then the tier, then the tenant's overrides; validated."""
    for key in ("limits", "settings"):
        if not isinstance(getattr(tenant, key), Mapping):
            raise ConfigError(
                f"{key} must map names to values, not {type(getattr(tenant, key)).__name__}",
                tenant_id=tenant.tenant_id,
                key=key,
            )
    if tenant.tier not in template.tiers:
        raise ConfigError(
            f"unknown tier {tenant.tier!r}; choose one of {', '.join(TIERS)}",
            tenant_id=tenant.tenant_id,
            key="tier",
        )
    tier = template.tiers[tenant.tier]
    features = [*template.defaults.features, *tier.features, *tenant.features]
    for feature in features:
        if feature not in template.features:
            raise ConfigError(
                f"unknown feature flag {feature!r}; the flags are "
                f"{', '.join(sorted(template.features))}",
                tenant_id=tenant.tenant_id,
                key=f"features.{_shown(feature)}",
            )
    limits = deep_merge(template.defaults.limits, tier.limits, tenant.limits)
    parsed_limits = _parse_limits(tenant.tenant_id, limits)
    settings = deep_merge(template.defaults.settings, tier.settings, tenant.settings)
    for name, value in settings.items():
        _check_setting(tenant.tenant_id, name, value)
        _check_known_setting(template, tenant.tenant_id, name)
    retention_days(tenant.tenant_id, settings)
    try:
        return TenantConfig(
            tenant_id=tenant.tenant_id,
            tier=tenant.tier,
            features=tuple(sorted(set(features))),
            limits=parsed_limits,
            settings=settings,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(map(_shown, error["loc"]))
        raise ConfigError(f"{key}: {error['msg']}", tenant_id=tenant.tenant_id, key=key) from None


def _parse_limits(tenant_id: str, limits: Mapping[str, Any]) -> TenantLimits:
    """``limits`` validated, or a :class:`ConfigError` naming ``limits.<name>``."""
    for name in limits:
        if name not in TenantLimits.model_fields:
            key = f"limits.{_shown(name)}"
            raise ConfigError(
                f"{key}: unknown limit; the limits are {', '.join(TenantLimits.model_fields)}",
                tenant_id=tenant_id,
                key=key,
            )
    try:
        return TenantLimits.model_validate(limits)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = "limits." + ".".join(map(_shown, error["loc"]))
        message = str(error.get("ctx", {}).get("error") or error["msg"])
        raise ConfigError(
            f"{key}: {message} (value {error.get('input')!r})", tenant_id=tenant_id, key=key
        ) from None


#: The longest text a setting may hold: settings are codes and names (a locale, a
#: region), and every config read carries them (the cache, each service answer).
MAX_SETTING_LENGTH = 1_000


def _check_setting(tenant_id: str, name: object, value: object) -> None:
    """A :class:`ConfigError` naming ``settings.<name>`` for a value no store keeps: a
    NaN or infinity (JSON has none), NUL or a lone surrogate in the name or the value,
    ``None`` but for a setting of :data:`NULLABLE_SETTINGS`, text past
    :data:`MAX_SETTING_LENGTH` characters."""
    key = f"settings.{_shown(name)}"
    if value is None and name not in NULLABLE_SETTINGS:
        nullable = ", ".join(f"{k} (null: {v})" for k, v in NULLABLE_SETTINGS.items())
        raise ConfigError(
            f"{key}: must be a string, number or boolean, not null (null is for {nullable})",
            tenant_id=tenant_id,
            key=key,
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"{key}: must be a finite number, not {value!r} (JSON has none)",
            tenant_id=tenant_id,
            key=key,
        )
    if isinstance(value, str) and len(value) > MAX_SETTING_LENGTH:
        raise ConfigError(
            f"{key}: at most {MAX_SETTING_LENGTH:,} characters, not {len(value):,}",
            tenant_id=tenant_id,
            key=key,
        )
    for part, text in (("name", name), ("value", value)):
        found = _unstorable(text)
        if found is not None:
            raise ConfigError(
                f"{key}: the {part} holds {found}, which no database stores as text",
                tenant_id=tenant_id,
                key=key,
            )


def _check_known_setting(template: ConfigTemplate, tenant_id: str, name: str) -> None:
    """A :class:`ConfigError` naming ``settings.<name>`` for a setting the config
    template does not name (in its defaults or a tier): a typo, kept and never read."""
    known = template.settings_named()
    if name not in known:
        key = f"settings.{_shown(name)}"
        raise ConfigError(
            f"{key}: unknown setting; the settings are {', '.join(sorted(known))}",
            tenant_id=tenant_id,
            key=key,
        )


#: The longest retention a tenant may set (a century): a cutoff further back than the
#: first year a date holds would fail every purge, of every tenant.
MAX_RETENTION_DAYS = 36_500


def retention_days(tenant_id: str, settings: Mapping[str, Any]) -> int | None:
    """The ``retention_days`` setting of a tenant's config: whole days from 1 to
    :data:`MAX_RETENTION_DAYS`, or ``None`` (absent or null: events are kept); a
    :class:`ConfigError` naming the key otherwise."""
    value = settings.get("retention_days")
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_RETENTION_DAYS
    ):
        raise ConfigError(
            f"tenant '{tenant_id}': retention_days must be a whole number of days from 1 "
            f"to {MAX_RETENTION_DAYS}, or null to keep events forever (value {value!r})",
            tenant_id=tenant_id,
            key="settings.retention_days",
        )
    return value


def overrides_of(template: ConfigTemplate, config: TenantConfig) -> TenantFixture:
    """The tenant's own overrides: what ``config`` holds beyond its tier's defaults, so
    that ``resolve_config(template, overrides_of(template, config)) == config``."""
    base = resolve_config(template, TenantFixture(tenant_id=config.tenant_id, tier=config.tier))
    limits = config.limits.model_dump()
    base_limits = base.limits.model_dump()
    return TenantFixture(
        tenant_id=config.tenant_id,
        tier=config.tier,
        features=[f for f in config.features if f not in base.features],
        limits={k: v for k, v in limits.items() if base_limits.get(k) != v},
        settings={k: v for k, v in config.settings.items() if base.settings.get(k) != v},
    )


def own_overrides(tenant: TenantFixture, config: TenantConfig) -> dict[str, Any]:
    """``tenant``'s own overrides as stored beside ``config``, its resolution: features
    sorted, limits and settings as resolved (storage in bytes)."""
    limits = config.limits.model_dump()
    return {
        "features": sorted(set(tenant.features)),
        "limits": {name: limits[name] for name in tenant.limits},
        "settings": {name: config.settings[name] for name in tenant.settings},
    }


def stored_tenant(
    template: ConfigTemplate, document: Mapping[str, Any], overrides: Mapping[str, Any] | None
) -> TenantFixture:
    """The tenant a stored config was resolved from: its tier and stored ``overrides``
    (a config stored without them: :func:`overrides_of`, what differs from its tier).

    A setting the config template does not know (taken by releases that did not check
    settings; never read) is left out, with a warning: kept, it would refuse every
    change of the tenant's config."""
    config = TenantConfig.model_validate(document)
    tenant = (
        overrides_of(template, config)
        if overrides is None
        else TenantFixture(
            tenant_id=config.tenant_id,
            tier=config.tier,
            features=list(overrides.get("features") or ()),
            limits=dict(overrides.get("limits") or {}),
            settings=dict(overrides.get("settings") or {}),
        )
    )
    known = template.settings_named()
    unknown = sorted(name for name in tenant.settings if name not in known)
    if not unknown:
        return tenant
    log.warning("unknown_settings_dropped", tenant_id=tenant.tenant_id, settings=unknown)
    settings = {k: v for k, v in tenant.settings.items() if k in known}
    return replace(tenant, settings=settings)


#: Refuses a config change that lowers limits (name: new value) below what the tenant
#: holds, in the change's transaction; the third argument: whether limits are enforced
#: (:func:`tenancy_fixtures.monitoring.limits.check_lowered_limits`, which the manager
#: gives: what a tenant holds is the monitoring's to measure).
LimitsCheck = Callable[[TenantSession, Mapping[str, int], bool], Awaitable[None]]


@dataclass(frozen=True)
class ConfigPatch:
    """Part of a tenant's config to change (``None``: keep what is stored)."""

    tier: str | None = None
    features: Sequence[str] | None = None
    limits: Mapping[str, Any] | None = None
    settings: Mapping[str, Any] | None = None

    def applied_to(self, current: TenantFixture) -> TenantFixture:
        """``current`` with this change: features replaced, limits and settings merged
        key by key, its overrides kept on a new tier."""
        return TenantFixture(
            tenant_id=current.tenant_id,
            tier=self.tier if self.tier is not None else current.tier,
            features=self.features if self.features is not None else current.features,
            limits={**current.limits, **(self.limits or {})},
            settings={**current.settings, **(self.settings or {})},
        )


class ConfigFixture(BaseFixture):
    """Applies a tenant's resolved config to the control plane and reads it back cached.

    ``ConfigFixture()`` with no arguments uses the settings from the environment and
    the built-in templates; ``apply_tenant_config`` creates the tenant if needed.
    ``limits_check`` refuses a change lowering a limit below what the tenant holds
    (default: :func:`~tenancy_fixtures.monitoring.limits.check_lowered_limits`).
    """

    kind = "structural"

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tenant: TenantFixture | None = None,
        templates: TemplateDirectory | None = None,
        store: TenantStore | None = None,
        cache: ConfigCache | None = None,
        history: RevisionHistory | None = None,
        limits_check: LimitsCheck | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.limits_check: LimitsCheck = limits_check or check_lowered_limits
        #: The schema's migration history: tenants this fixture creates start at its head
        #: (``None`` with a ``store``: the one the store holds, as a manager's does).
        self.history = history
        if history is None and store is None:
            self.history = migration_scripts(self.settings, metadata_given=False)
        self.templates = templates or TemplateDirectory(self.settings.template_dir)
        self.tenant = tenant
        #: The cache version of the config this fixture last stored.
        self.saved_version: int | None = None
        self._template: ConfigTemplate | None = None
        self._store = store
        self._owns_store = store is None
        self._cache = cache
        self._owns_cache = cache is None
        self._plane_id: str | None = None

    @property
    def name(self) -> str:
        return "config"

    @property
    def template(self) -> ConfigTemplate:
        """The validated config template (read once)."""
        if self._template is None:
            self._template = ConfigTemplate.load(self.templates)
        return self._template

    @property
    def store(self) -> TenantStore:
        """The store configs are kept in."""
        if self._store is None:
            self._store = open_store(self.settings, tenant_metadata(self.settings))
        return self._store

    @property
    def cache(self) -> ConfigCache:
        """The config cache."""
        if self._cache is None:
            self._cache = open_config_cache(self.settings)
        return self._cache

    def for_tenant(self, tenant: TenantFixture) -> ConfigFixture:
        """This fixture bound to one tenant's overrides, sharing store, cache and template."""
        bound = ConfigFixture(
            self.settings,
            tenant=tenant,
            templates=self.templates,
            store=self.store,
            cache=self.cache,
            limits_check=self.limits_check,
        )
        bound._template = self.template  # read and validated once, here
        bound._plane_id = self._plane_id
        return bound

    def resolve(self, tenant: TenantFixture) -> TenantConfig:
        """The config ``tenant`` gets (nothing is stored)."""
        return resolve_config(self.template, tenant)

    def _bound(self, tenant_id: str) -> TenantConfig:
        tenant = self.tenant if self.tenant is not None else TenantFixture(tenant_id=tenant_id)
        if tenant.tenant_id != tenant_id:
            raise ConfigError(
                f"config fixture is bound to tenant '{tenant.tenant_id}'", tenant_id=tenant_id
            )
        return self.resolve(tenant)

    def checksum(self) -> str:
        if self.tenant is None:
            raise ConfigError("an unbound ConfigFixture has no checksum; use for_tenant()")
        config = self._bound(self.tenant.tenant_id)
        own = own_overrides(self.tenant, config)
        if own == own_overrides(overrides_of(self.template, config), config):
            return config.checksum()  # the overrides follow from the config, as before
        # Overrides that the config alone does not tell (one equal to its tier's value).
        canonical = json.dumps([config.checksum(), own], sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    async def apply(self, session: TenantSession, context: LoadContext) -> Mapping[str, int]:
        del context
        config = self._bound(session.tenant_id)
        await self._check_lowered_limits(session, config)
        tenant = self.tenant or TenantFixture(tenant_id=session.tenant_id)
        self.saved_version = await control_plane.save_config(
            session.connection,
            session.tenant_id,
            config.model_dump(mode="json"),
            config.checksum(),
            overrides=own_overrides(tenant, config),
        )
        await control_plane.set_tier(session.connection, session.tenant_id, config.tier)
        return {}

    async def _check_lowered_limits(self, session: TenantSession, config: TenantConfig) -> None:
        """Limits ``config`` lowers from the stored config's, checked against what the
        tenant holds (accepted, such a change was refused only by the next load)."""
        stored = await control_plane.load_config(session.connection, session.tenant_id)
        before = (stored or {}).get("limits") or {}
        lowered = {
            name: value
            for name, value in config.limits.model_dump().items()
            if isinstance(before.get(name), int) and value < before[name]
        }
        if lowered:
            await self.limits_check(session, lowered, self.settings.enforce_limits)

    async def verify(self, session: TenantSession) -> list[str]:
        stored = await session.connection.execute(
            select(control_plane.configs_table.c.checksum).where(
                control_plane.configs_table.c.tenant_id == session.tenant_id
            )
        )
        checksum = stored.scalar_one_or_none()
        if checksum is None:
            return ["no config stored"]
        if checksum != self._bound(session.tenant_id).checksum():
            return ["stored config differs from the template and overrides"]
        return []

    async def resolve_audited(self, tenant: TenantFixture, *, action: str) -> TenantConfig:
        """:meth:`resolve`, recording a refusal in the audit log as ``action``."""
        async with audited(
            self.store, actor=self.settings.actor, action=action, tenant_id=tenant.tenant_id
        ):
            return self.resolve(tenant)

    async def apply_tenant_config(
        self, tenant: TenantFixture, *, create: bool = True
    ) -> TenantConfig:
        """Resolve, validate and store ``tenant``'s config.

        A :class:`TenantFixture` describes the whole tenant, and applying a fixture makes
        it so: a tenant that does not exist yet is created with the fixture's tier (the
        DESIGN's standalone ``ConfigFixture().apply_tenant_config(...)``). With
        ``create=False`` an unknown tenant is a :class:`TenantNotFoundError` instead, as
        for :meth:`FixtureManager.apply_tenant_config`.
        """
        bound = self.for_tenant(tenant)
        await self.store.initialize()
        async with self.store.control(readonly=True) as conn:
            exists = await control_plane.get_tenant(conn, tenant.tenant_id) is not None
        if not exists and not create:
            raise TenantNotFoundError(tenant.tenant_id)
        config = await bound.resolve_audited(tenant, action="config.apply")
        if exists:
            await update_tenant(self.store, tenant.tenant_id, [bound], actor=self.settings.actor)
        else:
            # Given a manager's store, the history it holds: without one, the tenant
            # went unrecorded, read as at the first revision, and refused loads.
            history = self.history if self.history is not None else self.store.history
            await create_tenant(
                self.store,
                tenant.tenant_id,
                tier=tenant.tier,
                structural=[SchemaFixture(self.store.metadata, history=history), bound],
                actor=self.settings.actor,
            )
        await self.invalidate(tenant.tenant_id, version=bound.saved_version)
        return config

    async def update_tenant_config(
        self,
        tenant_id: str,
        *,
        tier: str | None = None,
        features: Sequence[str] | None = None,
        limits: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> TenantConfig:
        """Change part of an existing tenant's config: its own overrides are kept and
        those given replace them (``features``: the extra flags beyond the tier's;
        ``limits`` and ``settings``: merged key by key). A new ``tier`` brings that
        tier's defaults, with the tenant's overrides on top.

        The change is applied to the stored config, read with its row locked in the
        transaction that writes it (never to a cached copy): concurrent changes by
        other processes are all kept.
        """
        patch = ConfigPatch(tier, features, limits, settings)
        await get_tenant(self.store, tenant_id)  # an unknown tenant: refused, not audited
        patched: list[tuple[ConfigFixture, TenantConfig]] = []

        async def locked_patch(session: TenantSession) -> list[BaseFixture]:
            """Lock the tenant and its stored config, and bind the patched config."""
            conn = session.connection
            if not await control_plane.lock_tenant(conn, tenant_id):
                raise TenantNotFoundError(tenant_id)
            stored = await control_plane.lock_config(conn, tenant_id)
            if stored is None:
                raise TenantNotFoundError(tenant_id)
            changed = patch.applied_to(stored_tenant(self.template, *stored))
            bound = self.for_tenant(changed)
            patched[:] = [(bound, bound.resolve(changed))]
            return [bound]

        await update_tenant(self.store, tenant_id, locked_patch, actor=self.settings.actor)
        bound, config = patched[0]
        await self.invalidate(tenant_id, version=bound.saved_version)
        return config

    async def plane_id(self) -> str:
        """The id of the control plane configs are kept in (what cache keys name)."""
        if self._plane_id is None:
            await self.store.initialize()
            async with self.store.control(readonly=True) as conn:
                found = await control_plane.plane_id(conn)
            if found is None:
                raise StorageError("the control plane has no id; initialize it with a writer")
            self._plane_id = found
        return self._plane_id

    async def _invalidate_stored(self, tenant_id: str) -> None:
        async with self.store.control(readonly=True) as conn:
            stored = await control_plane.load_versioned_config(conn, tenant_id)
        await self._invalidate(tenant_id, stored[1] if stored is not None else now_version())

    async def _invalidate(self, tenant_id: str, version: int) -> None:
        plane = await self.plane_id()
        version_checks.forget(plane, tenant_id)
        if not await self.cache.invalidate(plane, tenant_id, version=version):
            # Other processes find out by their version check.
            log.info(
                "config_cache_invalidation_failed",
                tenant_id=tenant_id,
                stale_for_at_most_seconds=self.settings.cache_revalidate_seconds,
            )

    async def forget(self, tenant_id: str) -> None:
        """Delete what the cache holds of a dropped tenant (its entry and floor keys)."""
        plane = await self.plane_id()
        version_checks.forget(plane, tenant_id)
        if not await self.cache.forget(plane, tenant_id):
            log.warning(
                "config_cache_forget_failed",
                tenant_id=tenant_id,
                left_for_at_most_seconds=self.settings.cache_ttl_seconds,
            )

    async def get_tenant_config(self, tenant_id: str) -> TenantConfig:
        """A tenant's stored config, through the cache.

        A cached copy is served while its version was confirmed current within
        ``cache_revalidate_seconds``; otherwise its version is checked first.
        """
        validate_tenant_id(tenant_id)
        plane = await self.plane_id()
        cached = await self.cache.get(plane, tenant_id)
        if cached is not None and await self._current(plane, tenant_id, cached):
            return TenantConfig.model_validate_json(cached.value)
        await self.store.initialize()
        checked_at = time.monotonic()
        async with self.store.control(readonly=True) as conn:
            stored = await control_plane.load_versioned_config(conn, tenant_id)
        if stored is None:
            raise TenantNotFoundError(tenant_id)
        document, version = stored
        version_checks.confirm(plane, tenant_id, version, since=checked_at)
        config = TenantConfig.model_validate(document)
        await self.cache.set(plane, tenant_id, config.model_dump_json(), version=version)
        return config

    async def _current(self, plane: str, tenant_id: str, cached: CachedConfig) -> bool:
        """Whether ``cached`` is the stored version; a stale copy is invalidated."""
        window = self.settings.cache_revalidate_seconds
        if version_checks.fresh(plane, tenant_id, cached.version, within=window):
            return True
        await self.store.initialize()
        checked_at = time.monotonic()
        async with self.store.control(readonly=True) as conn:
            version = await control_plane.current_config_version(conn, tenant_id)
        if version == cached.version:
            version_checks.confirm(plane, tenant_id, version, since=checked_at)
            return True
        # An invalidation was lost: changed (or dropped) since the copy was cached.
        log.info("config_cache_stale_entry", tenant_id=tenant_id)
        await self.cache.invalidate(
            plane, tenant_id, version=version if version is not None else now_version()
        )
        return False

    async def invalidate(self, tenant_id: str, *, version: int | None = None) -> None:
        """Forget the cached config of ``tenant_id`` after a change (a dropped tenant:
        :meth:`forget`).

        ``version``: the version just stored, if known (saves reading it back).
        """
        if version is not None:
            await self._invalidate(tenant_id, version)
        else:
            await self._invalidate_stored(tenant_id)

    async def aclose(self) -> None:
        """Close the store and cache this fixture opened itself."""
        if self._owns_cache and self._cache is not None:
            await self._cache.aclose()
        if self._owns_store and self._store is not None:
            await self._store.dispose()

    async def __aenter__(self) -> ConfigFixture:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
