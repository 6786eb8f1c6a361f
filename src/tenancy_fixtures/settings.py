"""Settings: read from ``TENANCY_*`` environment variables, never at import time.

The defaults give the embedded SQLite store under ``./.tenancy/`` with an in-process
config cache, so ``FixtureManager()`` works with no configuration at all.
"""

from __future__ import annotations

import getpass
import math
import os
import re
import unicodedata
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tenancy_fixtures.errors import SettingsError
from tenancy_fixtures.secret_keys import fernet_for

__all__ = ["Backend", "Distributed", "PgSslMode", "Settings", "ValidationMode", "load_settings"]

Backend = Literal["sqlite", "postgresql"]
#: libpq's ``sslmode`` values, weakest first.
PgSslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

#: A role prefix plus the longest tenant id (48) must fit PostgreSQL's 63-byte names.
_ROLE_PREFIX = re.compile(r"[a-z][a-z0-9_]{0,14}")
#: ``auto``: tenant schemas are Citus distributed schemas where the database has the
#: ``citus`` extension; ``citus``: they must be (refused without it); ``off``: never.
Distributed = Literal["auto", "citus", "off"]
#: ``strict``: any bad record refuses the load; ``lenient``: bad records are set aside.
ValidationMode = Literal["strict", "lenient"]
#: Longest duration a ``*_SECONDS`` setting takes (30 days): finite, and within what
#: Redis accepts as a key's time to live in milliseconds.
MAX_SECONDS = 30 * 86_400
#: Longest actor: the audit log's ``actor`` column (and a token's ``created_by``).
MAX_ACTOR_LENGTH = 200


def _infinite_or_nan(value: object) -> bool:
    """Whether ``value`` parses as an infinite or NaN float (anything not a number at
    all is left for pydantic to refuse)."""
    try:
        number = float(value) if isinstance(value, str | int | float) else 0.0
    except ValueError:
        return False
    return not math.isfinite(number)


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Settings(BaseSettings):
    """Everything tenancy-fixtures can be told, with the defaults of DESIGN.md."""

    model_config = SettingsConfigDict(env_prefix="TENANCY_", extra="ignore", frozen=True)

    @model_validator(mode="wrap")
    @classmethod
    def _refuse_as_settings_error(
        cls, data: Any, handler: ModelWrapValidatorHandler[Settings]
    ) -> Settings:
        """``Settings(...)`` refuses a malformed value with :class:`SettingsError` naming
        the ``TENANCY_*`` setting, as :func:`load_settings` does, not pydantic's
        ``ValidationError`` (an error that is not a ``ValueError`` leaves pydantic as is)."""
        try:
            return handler(data)
        except ValidationError as exc:
            raise SettingsError(_problems(exc)) from None

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: Any) -> Any:
        """``TENANCY_X=`` (empty) is unset for a setting that may be unset (``None``):
        ``TENANCY_CATALOG_BUDGET=`` never warns, ``TENANCY_REDIS_URL=`` uses no Redis.
        (An absent variable takes the default, which for a budget is a number.)"""
        if not isinstance(data, dict):
            return data
        return {
            name: None
            if value == "" and name in cls.model_fields and _may_be_unset(cls, name)
            else value
            for name, value in data.items()
        }

    # repr=False: URLs may carry passwords; safe_database_url() is for display.
    database_url: str = Field(
        default="sqlite:///.tenancy",
        repr=False,
        description="SQLite: sqlite:///DATA_DIR (one file per tenant). "
        "PostgreSQL: postgresql+asyncpg://host:port/db (one schema per tenant).",
    )
    redis_url: str | None = Field(
        default=None,
        repr=False,
        description="Redis for the config cache; unset: in-process cache.",
    )
    redis_prefix: str = Field(default="tenancy", description="Prefix of every Redis key.")
    redis_ssl_ca_certs: Path | None = Field(
        default=None,
        description="rediss:// only: PEM file of the certificate authorities the Redis "
        "server's certificate must chain to (its host name is checked too); unset: the "
        "system's.",
    )
    redis_ssl_certfile: Path | None = Field(
        default=None, description="rediss:// only: client certificate (PEM) shown to Redis."
    )
    redis_ssl_keyfile: Path | None = Field(
        default=None, description="rediss:// only: private key (PEM) of redis_ssl_certfile."
    )
    redis_timeout_seconds: float = Field(
        default=0.25,
        gt=0,
        le=60,
        description="Connect and reply timeout of each Redis call; a Redis slower than "
        "this is treated as down and the database answers instead.",
    )
    redis_breaker_failures: int = Field(
        default=2,
        ge=1,
        description="Redis failures in a row after which the config cache stops calling "
        "Redis for redis_breaker_seconds.",
    )
    redis_breaker_seconds: float = Field(
        default=5.0,
        gt=0,
        le=MAX_SECONDS,
        description="How long the config cache leaves a failing Redis alone before trying "
        "it again.",
    )
    metadata: str = Field(
        default="tenancy_fixtures.spotify:builtin_metadata",
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="The tenant schema, as package.module:attribute naming a SQLAlchemy "
        "MetaData or a function returning one; unset: the built-in Spotify domain.",
    )
    migrations: str | None = Field(
        default=None,
        description="The tenant schema's Alembic revision history: a directory holding "
        "versions/, or package.module:folder inside a package; unset: the built-in "
        "history with the built-in schema, none with your own.",
    )
    migrate_concurrency: int = Field(
        default=4, ge=1, le=100, description="Tenants a fleet migration runs at once."
    )
    catalog_budget: int | None = Field(
        default=500_000,
        ge=1,
        description="PostgreSQL: relations (tables, indexes, sequences, TOAST) in the "
        "catalogue past which list, init-tenant and migrate warn; the planner and "
        "autovacuum slow down with hundreds of thousands. Unset: no warning.",
    )
    catalog_limit: int | None = Field(
        default=None,
        ge=1,
        description="PostgreSQL: relations past which new tenants are refused; unset: none.",
    )
    template_dir: Path | None = Field(
        default=None, description="Directory of the three templates; unset: the built-in ones."
    )
    pg_sslmode: PgSslMode | None = Field(
        default=None,
        description="PostgreSQL TLS, as libpq's sslmode: verify-full checks the server's "
        "certificate chain and host name; unset: the URL's sslmode, else libpq's prefer.",
    )
    pg_sslrootcert: str | None = Field(
        default=None,
        description="PEM file of the certificate authorities the PostgreSQL server's "
        "certificate must chain to, or 'system' for the system's.",
    )
    pg_sslcert: Path | None = Field(
        default=None, description="Client certificate (PEM) shown to PostgreSQL."
    )
    pg_sslkey: Path | None = Field(
        default=None, description="Private key (PEM, unencrypted) of pg_sslcert."
    )
    batch_size: int = Field(default=1000, ge=1, le=1_000_000)
    bulk_load_min_bytes: int = Field(
        default=1 << 20,
        ge=0,
        description="A load from at least this many bytes of files is a bulk load: into a "
        "never-loaded tenant it drops the tenant's keys and indexes and rebuilds them once "
        "at the end, and on PostgreSQL it stamps its writes so validation need not read "
        "them again; a smaller one does neither (each costs more than it saves). 0: every "
        "load.",
    )
    concurrency: int = Field(default=10, ge=1, le=1000)
    cache_ttl_seconds: float = Field(default=3600.0, gt=0, le=MAX_SECONDS)
    cache_revalidate_seconds: float = Field(
        default=1.0,
        ge=0,
        le=MAX_SECONDS,
        description="How long a cached config is served before its version is checked "
        "against the control plane again (0: on every read); bounds how stale a config "
        "can be when an invalidation was lost.",
    )
    validation_timeout_seconds: float = Field(default=300.0, gt=0, le=MAX_SECONDS)
    validation_mode: ValidationMode = Field(
        default="strict",
        description="strict: any bad record refuses the whole load; lenient: bad records "
        "are skipped and written to a reject file, the rest loads.",
    )
    enforce_limits: bool = Field(
        default=True,
        description="Refuse a load that would take a tenant past a hard limit of its tier "
        "or config (storage, users, workspaces...); false: past a limit only warns.",
    )
    limit_warn_ratio: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Share of a limit at which a load warns and records the warning.",
    )
    validation_max_problems: int = Field(
        default=100, ge=1, description="Problems a validation report lists (all are counted)."
    )
    max_text_length: int = Field(
        default=1 << 20, ge=1, description="Longest value (characters) of a Text column."
    )
    parse_workers: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="Worker processes that parse big JSON Lines files during a load "
        "(0: parse in-process); unset: one per CPU, at most 4, none on one CPU.",
    )
    reject_dir: Path = Field(
        default=Path("rejects"),
        description="Where lenient loads write <tenant>-<plane>-<run_id>.jsonl of refused "
        "records (plane: the database's control-plane id).",
    )
    actor: str = Field(default_factory=_default_actor, description="Who the audit log names.")
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key(s) for AI model credentials stored encrypted; several keys "
        "separated by commas: the first encrypts, any of them decrypts (key rotation).",
    )
    tenant_roles: bool = Field(
        default=False,
        description="PostgreSQL: give each tenant a NOLOGIN role with rights on its own "
        "schema only (created on provisioning, dropped with the tenant).",
    )
    distributed: Distributed = Field(
        default="auto",
        description="PostgreSQL: citus makes each new tenant schema a Citus distributed "
        "schema (placed on one worker, queried through the coordinator; the control plane "
        "stays on the coordinator); auto does so when the database has the citus "
        "extension; off keeps plain schemas.",
    )
    tenant_role_prefix: str = Field(
        default="tf_role_",
        description="Prefix of tenant role names; roles are cluster-wide, so give each "
        "database on one cluster its own.",
    )

    # The original module's feature flags: each on by default, each switchable off.
    performance_monitoring: bool = Field(
        default=True,
        description="Time each run by stage, record its throughput, CPU and memory, and "
        "count operations in the Prometheus metrics; false: none of it is recorded and "
        "each run says monitoring: off.",
    )
    data_validation: bool = Field(
        default=True,
        description="Check each loaded record against the schema's rules in Python "
        "(compiled CHECK constraints, value formats) before writing; false: the database's "
        "own constraints are the only check, and each load's run and audit record say "
        "validation: off. validate-data still checks everything on demand.",
    )
    audit_logging: bool = Field(
        default=True,
        description="Record every operation in the audit log; false: nothing is audited "
        "(refused while tenant_roles or secret_key is set).",
    )
    cache_optimization: bool = Field(
        default=True,
        description="Cache tenant configs (in-process, or Redis when redis_url is set); "
        "false: every config read goes to the control plane.",
    )

    service_upload_max_bytes: int = Field(
        default=100 << 20,
        ge=1,
        description="Service: largest fixture-set archive an upload may send (bytes); "
        "a bigger one is refused with 413 as soon as it is known.",
    )
    service_archive_max_bytes: int = Field(
        default=1 << 30,
        ge=1,
        description="Service: most bytes an uploaded archive may unpack to (counted as "
        "written, so a compression bomb stops there).",
    )
    service_archive_max_entries: int = Field(
        default=10_000, ge=1, description="Service: most files and folders an archive may hold."
    )
    service_load_root: Path | None = Field(
        default=None,
        description="Service: the directory under which a load may name a server-side "
        "fixture set; unset: loads may not name server paths.",
    )
    service_work_dir: Path | None = Field(
        default=None,
        description="Service: where uploads are received and unpacked while their load "
        "runs; unset: the system's temporary directory.",
    )
    service_snapshot_interval_seconds: float | None = Field(
        default=None,
        gt=0,
        le=MAX_SECONDS,
        description="Service: take a usage snapshot of every tenant (and refresh the "
        "forecast gauges) this often; unset: never (use `monitor snapshot` from cron).",
    )

    @field_validator(
        "redis_timeout_seconds",
        "redis_breaker_seconds",
        "cache_ttl_seconds",
        "cache_revalidate_seconds",
        "validation_timeout_seconds",
        "service_snapshot_interval_seconds",
        mode="before",
    )
    @classmethod
    def _seconds_are_finite(cls, value: object, info: ValidationInfo) -> object:
        """``nan`` and ``inf`` parse as floats, then failed a bound with a message not
        saying why ("less than or equal to 2592000"): say what a duration must be."""
        if not _infinite_or_nan(value):
            return value
        least = "0 or more" if info.field_name == "cache_revalidate_seconds" else "above 0"
        raise ValueError(f"must be a finite number of seconds, {least}, not {value!r}")

    @field_validator("limit_warn_ratio", mode="before")
    @classmethod
    def _ratio_is_finite(cls, value: object) -> object:
        """``nan`` said "less than or equal to 1": say what the ratio must be."""
        if not _infinite_or_nan(value):
            return value
        raise ValueError(f"must be a share of the limit above 0 and at most 1, not {value!r}")

    @field_validator("data_validation")
    @classmethod
    def _lenient_loading_needs_validation(cls, value: bool, info: ValidationInfo) -> bool:
        if not value and info.data.get("validation_mode") == "lenient":
            raise ValueError(
                "cannot be false while TENANCY_VALIDATION_MODE is lenient: a lenient load "
                "finds the records to set aside by validating them first"
            )
        return value

    @field_validator("audit_logging")
    @classmethod
    def _compliance_needs_the_audit_log(cls, value: bool, info: ValidationInfo) -> bool:
        if value:
            return value
        needing = [
            name
            for name, on in (
                ("TENANCY_TENANT_ROLES", info.data.get("tenant_roles")),
                ("TENANCY_SECRET_KEY", info.data.get("secret_key") is not None),
            )
            if on
        ]
        if needing:
            raise ValueError(
                f"cannot be false while {' and '.join(needing)} "
                f"{'is' if len(needing) == 1 else 'are'} set: per-tenant roles and "
                "encrypted credentials are compliance features, and their changes must be "
                "audited"
            )
        return value

    @field_validator("actor")
    @classmethod
    def _actor_fits_the_audit_log(cls, value: str) -> str:
        """Stripped; non-empty, printable, and no longer than the audit log's column."""
        value = value.strip()
        if not value:
            raise ValueError("must name someone: it is empty")
        if len(value) > MAX_ACTOR_LENGTH:
            raise ValueError(
                f"is {len(value)} characters long: the audit log keeps at most {MAX_ACTOR_LENGTH}"
            )
        if any(unicodedata.category(c) == "Cc" for c in value):
            raise ValueError("must not hold control characters (NUL, newlines, tabs...)")
        return value

    @field_validator("tenant_role_prefix")
    @classmethod
    def _role_prefix_is_a_short_identifier(cls, value: str) -> str:
        if _ROLE_PREFIX.fullmatch(value) is None:
            raise ValueError(
                "must be a lowercase letter, then up to 14 lowercase letters, digits or '_'"
            )
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key_is_fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            fernet_for(value)
        return value

    @field_validator("redis_url")
    @classmethod
    def _url_is_a_redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Parsed by the client that will use it (no connection is made); only when set,
        # so a process without Redis never imports it.
        from redis.asyncio import ConnectionPool
        from redis.exceptions import RedisError

        given = re.search(r":([0-9]+)$", urlsplit(value).netloc)
        _check_port(int(given.group(1)) if given else None)
        try:
            # A connection object too (no I/O): it refuses the parameters the URL may
            # hold that redis-py's connections take not (a misspelt one, ssl_* on redis://).
            ConnectionPool.from_url(value).make_connection()  # type: ignore[no-untyped-call]
        except (ValueError, TypeError, RedisError) as exc:
            raise ValueError(f"not a Redis URL: {_unexpected_keyword(exc)}") from None
        parts = urlsplit(value)
        database = parts.path.strip("/")
        if parts.scheme != "unix" and database and not database.isdigit():
            raise ValueError(f"the path of a Redis URL is a database number, not {database!r}")
        return value

    @field_validator("redis_ssl_ca_certs", "redis_ssl_certfile", "redis_ssl_keyfile")
    @classmethod
    def _redis_tls_needs_a_rediss_url(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        url = info.data.get("redis_url")
        if value is not None and not (url or "").lower().startswith("rediss://"):
            raise ValueError("only used with a rediss:// TENANCY_REDIS_URL")
        return value

    @field_validator("pg_sslmode", "pg_sslrootcert", "pg_sslcert", "pg_sslkey")
    @classmethod
    def _pg_tls_needs_a_postgresql_url(cls, value: object, info: ValidationInfo) -> object:
        url = info.data.get("database_url")
        if value is not None and url is not None and not url.startswith("postgresql"):
            raise ValueError("only used with a postgresql:// TENANCY_DATABASE_URL")
        return value

    @field_validator("service_work_dir", "service_load_root", "reject_dir")
    @classmethod
    def _folder_is_no_file(cls, value: Path | None) -> Path | None:
        """A folder written or read in (made when missing) cannot be an existing file:
        every upload, load or lenient load would fail on it."""
        if value is not None and value.exists() and not value.is_dir():
            raise ValueError(f"{str(value)!r} is a file: give a directory")
        return value

    @field_validator("tenant_roles", "distributed")
    @classmethod
    def _postgresql_features_need_a_postgresql_url(
        cls, value: bool | str, info: ValidationInfo
    ) -> bool | str:
        """Per-tenant roles or Citus schemas asked for (``true``, ``citus``) would do
        nothing on SQLite: refused there rather than silently left out."""
        url = info.data.get("database_url")
        demanded = value is True or value == "citus"
        if demanded and url is not None and not url.startswith("postgresql"):
            raise ValueError("only possible with a postgresql:// TENANCY_DATABASE_URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _url_is_sqlite_or_postgresql(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {exc}") from None
        _check_port(url.port)
        if url.drivername in ("postgres", "postgresql"):
            # Heroku-style postgres:// and driverless postgresql:// name the one driver
            # the library uses; say it, so that what is printed is what is used.
            return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(
                "only sqlite:///DATA_DIR and postgresql+asyncpg://host:port/db URLs are supported"
            )
        if url.get_backend_name() == "sqlite" and url.database == ":memory:":
            raise ValueError(
                "sqlite:///:memory: cannot hold tenants (one file each): give sqlite:///DATA_DIR"
            )
        if url.get_backend_name() == "postgresql" and url.get_driver_name() != "asyncpg":
            raise ValueError(
                f"the PostgreSQL driver {url.get_driver_name()!r} is not supported: "
                "write postgresql+asyncpg:// (or postgresql://)"
            )
        return value

    @property
    def url(self) -> URL:
        """The database URL with the async driver this backend uses."""
        url = make_url(self.database_url)
        if self.backend == "postgresql":
            return url.set(drivername="postgresql+asyncpg")
        return url.set(drivername="sqlite+aiosqlite")

    @property
    def pg_tls(self) -> dict[str, str]:
        """The ``pg_ssl*`` settings that are set, by their libpq parameter names."""
        given = {
            "sslmode": self.pg_sslmode,
            "sslrootcert": self.pg_sslrootcert,
            "sslcert": self.pg_sslcert,
            "sslkey": self.pg_sslkey,
        }
        return {name: str(value) for name, value in given.items() if value is not None}

    @property
    def backend(self) -> Backend:
        """``"sqlite"`` or ``"postgresql"``."""
        name = make_url(self.database_url).get_backend_name()
        return "postgresql" if name == "postgresql" else "sqlite"

    @property
    def workers_for_parsing(self) -> int:
        """``parse_workers``, or when unset one per CPU, at most 4, none on one CPU."""
        if self.parse_workers is not None:
            return self.parse_workers
        cpus = os.cpu_count() or 1
        return 0 if cpus < 2 else min(cpus, 4)

    @property
    def data_dir(self) -> Path:
        """SQLite only: the directory holding ``tenancy.db`` and one file per tenant."""
        return Path(make_url(self.database_url).database or ".tenancy")

    def safe_database_url(self) -> str:
        """The database URL with any password hidden, for logs and output: the user's,
        and query parameters naming one (``password``, libpq's ``sslpassword``)."""
        url = make_url(self.database_url)
        secret = {name: "***" for name in url.query if "password" in name.lower()}
        shown = url.update_query_dict(secret).render_as_string(hide_password=True)
        return shown.replace("=%2A%2A%2A", "=***")  # as the user's: not URL-quoted


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with ``overrides`` on top.

    Raises :class:`SettingsError` naming the offending setting, as ``Settings()`` does.
    """
    return Settings(**overrides)  # type: ignore[arg-type]


def _unexpected_keyword(exc: Exception) -> str:
    """redis-py's refusal, put as the URL's parameter when it is an unknown keyword."""
    found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
    return f"it has no parameter {found.group(1)!r}" if found else str(exc)


def _check_port(port: int | None) -> None:
    """A URL's port, when it gives one, is 1 to 65535 (the driver would fail at connect
    time, with an error that names no setting)."""
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range: give 1 to 65535")


def _problems(exc: ValidationError) -> str:
    return "invalid settings: " + "; ".join(
        f"TENANCY_{'.'.join(str(p) for p in err['loc']).upper()}: "
        f"{err['msg'].removeprefix('Value error, ')}"
        for err in exc.errors()
    )


def _may_be_unset(model: type[Settings], name: str) -> bool:
    """Whether setting ``name`` takes ``None`` (its annotation is ``X | None``)."""
    return type(None) in get_args(model.model_fields[name].annotation)
