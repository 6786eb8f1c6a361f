"""The exception hierarchy: every error the library raises on purpose.

::

    TenancyFixturesError
    ├── SettingsError                 bad TENANCY_* settings
    ├── InvalidTenantIdError          an id that may not become a schema, file or key
    ├── TenantError
    │   ├── TenantAlreadyExistsError
    │   ├── TenantNotFoundError
    │   │   └── TenantStorageMissingError  registered, but its file or schema is gone
    │   └── SchemaOutdatedError       the tenant's schema is behind the code's: migrate it
    ├── ConfigError                   config, tier, feature or limit refused
    │   └── FeatureDisabledError      the tenant's tier or config lacks the feature
    ├── LimitExceededError            a load would take a tenant past a hard limit
    │   └── LimitBelowUsageError      a config change would set a limit below usage
    ├── RetentionIncompleteError      a retention purge of many tenants failed for some
    ├── TemplateError                 a template missing, malformed or outside its directory
    ├── MigrationError                migration scripts unusable, or tenants failed to migrate
    │   └── UnknownRevisionError      a target that names no revision of the history
    ├── TokenNotFoundError            no live service token has that id
    ├── SubjectNotFoundError          no data of a tenant holds that subject id
    ├── DestinationExistsError        an export's destination is there already
    ├── FixtureError
    │   ├── FixtureSetError           a fixture set that cannot be read as a whole
    │   ├── FixtureFormatError        a file that is not what its name says
    │   ├── RecordError               one record refused (file, line, column, rule)
    │   │   └── RecordsRefusedError   a strict load refused: every bad record (also a
    │   │                             ValidationFailedError)
    │   └── IntegrityViolationError   the database refused rows (constraint, table)
    ├── ValidationFailedError         a validator found problems
    │   ├── RecordsRefusedError
    │   └── ValidationTimeoutError    it ran out of time
    └── StorageError                  the backend failed for a reason that is not the input's
        ├── PermissionDeniedError     the database user lacks a privilege (which, on what)
        └── CatalogFullError          a new tenant or spare would pass TENANCY_CATALOG_LIMIT

Each error keeps its context as attributes (``tenant_id``, ``path``, ``line``,
``table``, ``column``...) so callers need not parse messages; the CLI prints
``str(error)`` and exits non-zero, never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "CatalogFullError",
    "ConfigError",
    "DestinationExistsError",
    "FeatureDisabledError",
    "FixtureError",
    "FixtureFormatError",
    "FixtureSetError",
    "IntegrityViolationError",
    "InvalidTenantIdError",
    "LimitBelowUsageError",
    "LimitExceededError",
    "MigrationError",
    "PermissionDeniedError",
    "RecordError",
    "RecordsRefusedError",
    "RetentionIncompleteError",
    "SchemaOutdatedError",
    "SettingsError",
    "StorageError",
    "SubjectNotFoundError",
    "TemplateError",
    "TenancyFixturesError",
    "TenantAlreadyExistsError",
    "TenantError",
    "TenantNotFoundError",
    "TenantStorageMissingError",
    "TokenNotFoundError",
    "UnknownRevisionError",
    "ValidationFailedError",
    "ValidationTimeoutError",
]


class TenancyFixturesError(Exception):
    """Base of every error raised by tenancy-fixtures."""

    exit_code: int = 1

    def __init__(self, message: str, *, tenant_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tenant_id = tenant_id

    def __str__(self) -> str:
        if self.tenant_id and f"'{self.tenant_id}'" not in self.message:
            return f"tenant '{self.tenant_id}': {self.message}"
        return self.message


class SettingsError(TenancyFixturesError):
    """A ``TENANCY_*`` setting is missing or malformed."""

    exit_code = 2


class InvalidTenantIdError(TenancyFixturesError):
    """A tenant id that is not safe to turn into a schema, file, role or key."""

    exit_code = 2

    def __init__(self, tenant_id: object, reason: str) -> None:
        shown = repr(tenant_id)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"invalid tenant id {shown}: {reason}")
        self.rejected_id = tenant_id
        self.reason = reason


class TenantError(TenancyFixturesError):
    """A tenant is not in the state the operation needs."""


class TenantAlreadyExistsError(TenantError):
    """``create_tenant`` for an id that is already registered or stored."""

    exit_code = 3

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant '{tenant_id}' already exists", tenant_id=tenant_id)


class TenantNotFoundError(TenantError):
    """An operation on a tenant that is not registered."""

    exit_code = 4

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant '{tenant_id}' does not exist", tenant_id=tenant_id)


class TenantStorageMissingError(TenantNotFoundError):
    """A registered tenant whose storage (its SQLite file, its PostgreSQL schema) is
    missing: nothing of it can be read, and ``cleanup TENANT`` removes the registration.
    A storage failure (exit 7); ``problem`` is the message without the tenant in front."""

    exit_code = 7

    def __init__(self, tenant_id: str, storage: str) -> None:
        self.problem = (
            f"registered, but its storage {storage} is missing; "
            f"cleanup {tenant_id} removes the registration"
        )
        TenantError.__init__(self, f"tenant '{tenant_id}' is {self.problem}", tenant_id=tenant_id)
        self.storage = storage


class SchemaOutdatedError(TenantError):
    """The tenant's schema is at another revision than the code's: loading or reading
    its tables would fail on the difference. ``tenancy-fixtures migrate`` fixes it, unless
    the revision is ``unknown`` to the code's history (a newer release's, say)."""

    exit_code = 8

    def __init__(
        self, tenant_id: str, *, revision: str | None, head: str, unknown: bool = False
    ) -> None:
        remedy = f"run `tenancy-fixtures migrate -t {tenant_id}` first"
        if unknown:
            remedy = (
                "that revision is not in this code's history: was it migrated by a newer "
                "release? Use that release, or move the tenant back with its scripts "
                f"(TENANCY_MIGRATIONS set to its history: "
                f"`tenancy-fixtures migrate -t {tenant_id} --to {head}`)"
            )
        super().__init__(
            f"tenant '{tenant_id}' has schema revision {revision or 'unknown'} and the code "
            f"expects {head}: {remedy}",
            tenant_id=tenant_id,
        )
        self.revision = revision
        self.head = head
        self.unknown = unknown


class MigrationError(TenancyFixturesError):
    """Migration scripts that cannot be used (missing, several heads, an unknown
    revision), or a fleet run in which tenants failed (``failed`` names them)."""

    exit_code = 9

    def __init__(
        self, message: str, *, tenant_id: str | None = None, failed: Sequence[str] = ()
    ) -> None:
        super().__init__(message, tenant_id=tenant_id)
        self.failed = list(failed)


class UnknownRevisionError(MigrationError):
    """A migration target that names no revision (or several, or a step past either end
    of the history): the caller's input, refused before any tenant is touched."""

    exit_code = 2

    def __init__(self, message: str, *, revisions: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.revisions = list(revisions)


class TokenNotFoundError(TenancyFixturesError):
    """A service token id that names no live token (never issued, or revoked)."""

    exit_code = 4

    def __init__(self, token_id: str) -> None:
        super().__init__(f"no live token has id {token_id!r}")
        self.token_id = token_id


class SubjectNotFoundError(TenancyFixturesError):
    """A data subject id that nothing of the tenant holds (a typo, another letter case):
    an erasure or export of it would prove nothing. ``column`` is the subject id column
    (``users.user_id``). The id is not quoted: refusals are audited."""

    exit_code = 4

    def __init__(self, message: str, *, tenant_id: str, column: str) -> None:
        super().__init__(message, tenant_id=tenant_id)
        self.column = column


class DestinationExistsError(TenancyFixturesError):
    """An export's destination exists already (a file, an archive, a directory that is not
    empty), or lies in the SQLite store's data directory (where the store would take it
    for a tenant's storage): nothing of the user's is overwritten. Exit 2, as for any
    other argument to change."""

    exit_code = 2

    def __init__(self, message: str, *, tenant_id: str | None = None, path: Path) -> None:
        super().__init__(f"{path}: {message}", tenant_id=tenant_id)
        self.path = path


class ConfigError(TenancyFixturesError):
    """A configuration, tier, feature flag or limit was refused."""

    exit_code = 2

    def __init__(
        self, message: str, *, tenant_id: str | None = None, key: str | None = None
    ) -> None:
        super().__init__(message, tenant_id=tenant_id)
        self.key = key


class FeatureDisabledError(ConfigError):
    """An operation the tenant's features do not include (``data_export`` for an
    export): its tier or config must enable ``feature`` first."""

    def __init__(self, tenant_id: str, feature: str, operation: str) -> None:
        super().__init__(
            f"{operation} needs the {feature!r} feature, which the tenant's tier and "
            "config do not enable",
            tenant_id=tenant_id,
            key=f"features.{feature}",
        )
        self.feature = feature
        self.operation = operation


class LimitExceededError(TenancyFixturesError):
    """A load would take a tenant past a hard limit of its tier or config; nothing of
    it was kept. ``limit`` names the limit (``users``, ``storage``...), ``value`` is
    what the tenant would hold, ``maximum`` what it may; ``table`` is the table the
    limit counts (``None`` for storage)."""

    exit_code = 10

    def __init__(
        self,
        *,
        limit: str,
        value: int,
        maximum: int,
        tenant_id: str,
        table: str | None = None,
        unit: str = "",
    ) -> None:
        counted = f" (rows of {table})" if table else ""
        super().__init__(
            self._describe(limit, value, maximum, f"{unit}{counted}", unit), tenant_id=tenant_id
        )
        self.limit = limit
        self.value = value
        self.maximum = maximum
        self.table = table
        #: The rule error analysis groups this refusal under.
        self.rule = f"limit:{limit}"

    @staticmethod
    def _describe(limit: str, value: int, maximum: int, counted: str, unit: str) -> str:
        return (
            f"limit {limit!r} exceeded: the load would bring it to {value:,}{counted}, "
            f"past the tenant's maximum of {maximum:,}{unit} (its tier's, or its own limit); "
            "nothing was loaded"
        )


class LimitBelowUsageError(LimitExceededError):
    """A config change (a lower tier, a lower limit of the tenant's own) would set a
    limit below what the tenant holds already, so that no load could pass it again;
    refused, nothing changed. ``maximum`` is the new limit, ``value`` the tenant's
    current usage; the exit code is a refused load's."""

    @staticmethod
    def _describe(limit: str, value: int, maximum: int, counted: str, unit: str) -> str:
        return (
            f"limit {limit!r} cannot be lowered to {maximum:,}{unit}: the tenant holds "
            f"{value:,}{counted} already, past that maximum; the config was not changed "
            "(reduce its data first)"
        )


class RetentionIncompleteError(TenancyFixturesError):
    """A retention purge (or count) of many tenants that failed for some of them; the
    others were purged. ``reports`` holds the others' retention reports, ``failures``
    each failed tenant's error; the exit code is the failures' when they share one."""

    def __init__(
        self, reports: Sequence[Any], failures: Mapping[str, TenancyFixturesError], *, verb: str
    ) -> None:
        detail = "; ".join(str(e) for e in list(failures.values())[:5])
        super().__init__(
            f"{len(failures)} tenant(s) not {verb} ({', '.join(failures)}): {detail}"
            + ("; ..." if len(failures) > 5 else "")
        )
        self.reports = list(reports)
        self.failures = dict(failures)
        codes = {e.exit_code for e in self.failures.values()}
        self.exit_code = codes.pop() if len(codes) == 1 else 1


class TemplateError(TenancyFixturesError):
    """A template is missing, malformed, or resolves outside its directory."""

    exit_code = 2

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:
        text = super().__str__()
        if self.path is None or str(self.path) in self.message:
            return text
        if self.tenant_id and text != self.message:
            return f"tenant '{self.tenant_id}', {self.path}: {self.message}"
        return f"{self.path}: {self.message}"


class FixtureError(TenancyFixturesError):
    """Base for errors about fixture data; carries where the data came from."""

    exit_code = 5

    def __init__(
        self,
        message: str,
        *,
        tenant_id: str | None = None,
        path: Path | str | None = None,
        table: str | None = None,
        line: int | None = None,
        record: int | None = None,
        column: str | None = None,
        rule: str | None = None,
    ) -> None:
        super().__init__(message, tenant_id=tenant_id)
        self.path = path
        self.table = table
        self.line = line
        self.record = record
        self.column = column
        #: The rule the data broke (``type``, ``not_null``, ``check:duration_ms``,
        #: ``format:spotify_id``...), where one is known.
        self.rule = rule

    def __str__(self) -> str:
        where: list[str] = []
        if self.tenant_id:
            where.append(f"tenant '{self.tenant_id}'")
        if self.path is not None:
            where.append(str(self.path) + (f":{self.line}" if self.line is not None else ""))
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.table and self.path is None:
            where.append(f"table {self.table}")
        if self.column:
            where.append(f"column {self.column}")
        prefix = ", ".join(where)
        text = f"{prefix}: {self.message}" if prefix else self.message
        return f"{text} [{self.rule}]" if self.rule else text


class FixtureSetError(FixtureError):
    """A fixture set that cannot be used as a whole (missing, bad manifest, escaping path)."""


class FixtureFormatError(FixtureError):
    """A file that cannot be parsed as the format its name says."""


class RecordError(FixtureError):
    """One record was refused: wrong type, missing value, unknown column, broken CHECK or
    format; ``rule`` names which."""


class IntegrityViolationError(FixtureError):
    """The database refused rows: a foreign key, unique key, NOT NULL or CHECK constraint."""

    def __init__(
        self,
        message: str,
        *,
        constraint: str | None = None,
        tenant_id: str | None = None,
        path: Path | str | None = None,
        table: str | None = None,
        line: int | None = None,
        record: int | None = None,
        key: dict[str, str] | None = None,
        key_columns: Sequence[str] = (),
    ) -> None:
        super().__init__(
            message, tenant_id=tenant_id, path=path, table=table, line=line, record=record
        )
        self.constraint = constraint
        #: The refused row's key as the database printed it, when it said.
        self.key = key
        #: A duplicate key: the columns of the table's primary or (full) unique key the
        #: refused row repeats, so the load can find the repeating record in its files.
        self.key_columns = tuple(key_columns)


class ValidationFailedError(TenancyFixturesError):
    """A validator found problems; ``problems`` lists them, each already contextual.

    When the problems are about fixture data, ``errors`` holds them as typed errors (each
    with its file, line or record, column and rule), ``rules`` counts the records that
    broke each rule (complete even when the list is capped at ``total`` > shown), and
    the location attributes (``path``, ``line``, ``record``, ``table``, ``column``,
    ``rule``) are those of the first problem.
    """

    exit_code = 6

    def __init__(
        self,
        problems: Sequence[str],
        *,
        tenant_id: str | None = None,
        errors: Sequence[FixtureError] = (),
        rules: Mapping[str, int] | None = None,
        total: int | None = None,
    ) -> None:
        self.total = max(total or 0, len(problems))
        head = f"{self.total} problem(s) found"
        detail = "; ".join(problems[:5]) + ("; ..." if self.total > 5 else "")
        super().__init__(f"{head}: {detail}", tenant_id=tenant_id)
        self.problems = list(problems)
        self.errors = list(errors)
        self.rules = dict(rules or {})
        first = self.errors[0] if self.errors else None
        self.path = first.path if first else None
        self.line = first.line if first else None
        self.record = first.record if first else None
        self.table = first.table if first else None
        self.column = first.column if first else None
        self.rule = first.rule if first else None


class RecordsRefusedError(RecordError, ValidationFailedError):
    """A strict load refused its fixtures: ``problems``/``errors`` list every bad record
    of them, ``rules`` counts them per rule, and the error stands where the first one is
    (``path``, ``line``, ``record``, ``column``, ``rule``).

    It is a :class:`RecordError` (code that catches a refused record keeps working) and
    a :class:`ValidationFailedError` (the whole list); the exit code is fixture data's.
    """

    exit_code = FixtureError.exit_code

    def __init__(
        self,
        problems: Sequence[str],
        *,
        errors: Sequence[FixtureError],
        tenant_id: str | None = None,
        rules: Mapping[str, int] | None = None,
        total: int | None = None,
    ) -> None:
        ValidationFailedError.__init__(
            self, problems, tenant_id=tenant_id, errors=errors, rules=rules, total=total
        )

    def __str__(self) -> str:
        # The message lists the problems, each with its place: no place in front.
        return TenancyFixturesError.__str__(self)


class ValidationTimeoutError(ValidationFailedError):
    """Validation ran past ``validation_timeout_seconds``; what it found so far is kept."""

    def __init__(
        self,
        seconds: float,
        problems: Sequence[str],
        *,
        records: int,
        errors: Sequence[FixtureError] = (),
        rules: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(
            [f"validation stopped after {seconds:g}s ({records} records checked)", *problems],
            errors=errors,
            rules=rules,
        )
        self.seconds = seconds
        self.records = records


class StorageError(TenancyFixturesError):
    """The backend failed for a reason that is not the input's.

    ``transient`` says whether trying the same work again may succeed (a dropped
    connection, a deadlock, a locked file); such errors are retried before they
    reach the caller.
    """

    exit_code = 7

    def __init__(self, message: str, *, tenant_id: str | None = None, transient: bool = False):
        super().__init__(message, tenant_id=tenant_id)
        self.transient = transient


class PermissionDeniedError(StorageError):
    """The database user lacks a privilege the operation needs.

    ``privilege`` names it (``CREATE``, ``INSERT``, ``membership``...), ``on`` what it is
    needed on (``database 'app'``, ``table tenancy.runs``...), ``user`` who lacks it;
    each is ``None`` where the database did not say.
    """

    def __init__(
        self,
        message: str,
        *,
        privilege: str | None = None,
        on: str | None = None,
        user: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        super().__init__(message, tenant_id=tenant_id)
        self.privilege = privilege
        self.on = on
        self.user = user


class CatalogFullError(StorageError):
    """A new tenant (or spare schema) would take the database's catalogue past
    ``catalog_limit`` relations: PostgreSQL's planning and autovacuum slow down for
    every tenant. ``spares``: (made, asked for) when warm-up stopped at the limit."""

    def __init__(
        self,
        *,
        relations: int,
        adding: int,
        limit: int,
        tenant_id: str | None = None,
        spares: tuple[int, int] | None = None,
    ) -> None:
        made = "" if spares is None else f"warm-up made {spares[0]} of {spares[1]} spare schemas: "
        what = "a new tenant" if tenant_id is not None else "a spare schema"
        super().__init__(
            f"{made}the catalogue holds {relations:,} relations and {what} adds "
            f"{adding:,}, past TENANCY_CATALOG_LIMIT={limit:,}: drop unused tenants, move "
            "some to another database, or raise the limit",
            tenant_id=tenant_id,
        )
        self.relations = relations
        self.adding = adding
        self.limit = limit
        self.spares = spares
