"""AIModelLoader: the AI model configurations a tenant's agents may use.

A model config names its provider, model and version, the task it serves, parameters
validated for that task, the tiers and feature flags that enable it, and a reference
to its credential (see :mod:`tenancy_fixtures.tenancy.credentials`): never the key itself. Each
task has exactly one default model. The same checks run for ``ai_models`` table files
and for the ``ai-models`` source format (a list of configs, or ``{"models": [...]}``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import MetaData, Table, select

from tenancy_fixtures.errors import ConfigError, RecordError, SettingsError
from tenancy_fixtures.fixtures.context import LoadContext
from tenancy_fixtures.fixtures.templates import TemplateDirectory
from tenancy_fixtures.loading.data_loader import DEFAULT_BATCH_SIZE, DataLoader, TableMode
from tenancy_fixtures.loading.fixture_sets import FixtureFile, FixtureSet
from tenancy_fixtures.loading.fixture_validator import RecordChecks
from tenancy_fixtures.loading.readers import SourceRecord, iter_records
from tenancy_fixtures.loading.records import RowBuilder
from tenancy_fixtures.loading.sources import RowSink, SourceFormat
from tenancy_fixtures.settings import Settings, load_settings
from tenancy_fixtures.spotify.schema import is_spotify_table, spotify_metadata
from tenancy_fixtures.store.base import TENANT_SCHEMA, TenantSession
from tenancy_fixtures.tenancy.credentials import (
    PLAIN_TEXT,
    UNDECRYPTABLE,
    CredentialRefused,
    SecretKey,
    check_credentials,
    decrypt_credential,
    find_plain_secret,
    looks_like_secret,
)

__all__ = [
    "PARAMETERS_BY_TASK",
    "REDACTED",
    "AIModelLoader",
    "AIModelsFormat",
    "AudioAnalysisParameters",
    "ChatParameters",
    "ModelRefused",
    "ModelVocabulary",
    "PlaylistGenerationParameters",
    "RecommendationParameters",
    "check_model",
    "redact_plain_secrets",
    "scan_for_plain_secrets",
]

Task = Literal["recommendation", "playlist_generation", "audio_analysis", "chat"]
_TABLE = "ai_models"
_JSON_COLUMNS = ("parameters", "credentials", "tiers", "features")
#: Columns that name the model; checked for well-known key shapes only (a version may
#: well be a commit hash).
_NAME_COLUMNS = ("model_id", "provider", "model_name", "version")
_EMBEDDING_SIZES = Literal[
    16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096
]
_SAMPLE_RATES = Literal[8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 96000]
_Probability = Annotated[float, Field(ge=0, le=1)]
#: What a reject file shows in place of a value holding a plain key.
REDACTED = f"[redacted: {PLAIN_TEXT}]"


class _Parameters(BaseModel):
    # strict: true is not 1, "0.7" is not 0.7; forbid: an unknown parameter is a typo.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ChatParameters(_Parameters):
    """Parameters of a chat model."""

    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: _Probability | None = None
    top_k: Annotated[int, Field(ge=1, le=1000)] | None = None
    max_tokens: Annotated[int, Field(gt=0, le=1_000_000)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    stop: Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=16)] | None = None
    system_prompt: Annotated[str, Field(max_length=100_000)] | None = None


class PlaylistGenerationParameters(ChatParameters):
    """Parameters of a model that builds playlists from a prompt (a chat model that
    also knows how long a playlist may be)."""

    max_tracks: Annotated[int, Field(ge=1, le=1000)] | None = None


class RecommendationParameters(_Parameters):
    """Parameters of a recommender (embedding retrieval or matrix factorisation)."""

    top_k: Annotated[int, Field(ge=1, le=1000)] | None = None
    embedding_size: _EMBEDDING_SIZES | None = None
    diversity: _Probability | None = None
    factors: Annotated[int, Field(ge=1, le=4096)] | None = None
    regularization: Annotated[float, Field(ge=0, le=10)] | None = None
    iterations: Annotated[int, Field(ge=1, le=10_000)] | None = None
    similarity: Literal["cosine", "dot", "euclidean"] | None = None


class AudioAnalysisParameters(_Parameters):
    """Parameters of an audio model (feature extraction, embeddings)."""

    sample_rate: _SAMPLE_RATES | None = None
    window_seconds: Annotated[float, Field(gt=0, le=600)] | None = None
    hop_seconds: Annotated[float, Field(gt=0, le=600)] | None = None
    n_mels: Annotated[int, Field(ge=1, le=512)] | None = None
    embedding_size: _EMBEDDING_SIZES | None = None


PARAMETERS_BY_TASK: dict[str, type[_Parameters]] = {
    "chat": ChatParameters,
    "playlist_generation": PlaylistGenerationParameters,
    "recommendation": RecommendationParameters,
    "audio_analysis": AudioAnalysisParameters,
}


@dataclass(frozen=True)
class ModelVocabulary:
    """The tiers and feature flags a model may name (from the config template)."""

    tiers: frozenset[str]
    features: frozenset[str]

    @classmethod
    def from_templates(cls, template_dir: Path | None = None) -> ModelVocabulary:
        """The tiers and features of ``config_template.json`` (built-in by default)."""
        document = TemplateDirectory(template_dir).read_json(TemplateDirectory.CONFIG_TEMPLATE)
        return cls(
            tiers=frozenset(document.get("tiers", {})),
            features=frozenset(document.get("features", {})),
        )


class ModelRefused(ValueError):
    """A model config refused: the column and the rule broken; the message never
    contains the refused value."""

    def __init__(self, message: str, *, column: str, rule: str) -> None:
        super().__init__(message)
        self.column = column
        self.rule = rule


def _decoded(column: str, value: Any) -> Any:
    """A JSON column's value as data (CSV and some JSON files hold it as JSON text)."""
    if column in _JSON_COLUMNS and isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):  # the row's typing refuses it, naming its place
            return value
    return value


def scan_for_plain_secrets(values: Mapping[str, Any]) -> None:
    """Refuse a config holding a plain key anywhere (rule ``credentials:plain_text``).

    Runs on the values as given, before anything else reads them, so no later error
    message can repeat a key. The encrypted token is the one long random string allowed.
    """
    for column, raw in values.items():
        value = _decoded(str(column), raw)
        if column == "credentials":
            try:
                check_credentials(value)
            except CredentialRefused as exc:
                if exc.rule == PLAIN_TEXT:
                    raise ModelRefused(str(exc), column="credentials", rule=PLAIN_TEXT) from None
            continue
        if column in _NAME_COLUMNS:
            if isinstance(value, str) and looks_like_secret(value, known_shapes_only=True):
                raise ModelRefused(
                    "looks like an API key; a model config holds references to keys only",
                    column=str(column),
                    rule=PLAIN_TEXT,
                )
            continue
        where = find_plain_secret(value, at=str(column))
        if where is not None:
            raise ModelRefused(
                f"{where} holds what looks like a plain API key or token; store it in an "
                "environment variable or secret manager and reference it from credentials",
                column=str(column),
                rule=PLAIN_TEXT,
            )


def redact_plain_secrets(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with each column holding a plain key replaced by :data:`REDACTED`."""
    shown = dict(values)
    for column, value in values.items():
        try:
            scan_for_plain_secrets({column: value})
        except ModelRefused:
            shown[column] = REDACTED
    return shown


@contextmanager
def _as_record_error() -> Iterator[None]:
    """A :class:`ModelRefused` as the :class:`RecordError` of an ``ai_models`` record
    (its place said by whoever read the record)."""
    try:
        yield
    except ModelRefused as exc:
        raise RecordError(str(exc), table=_TABLE, column=exc.column, rule=exc.rule) from None


def _screen(values: Mapping[str, Any]) -> None:
    with _as_record_error():
        scan_for_plain_secrets(values)


def _pydantic_problem(error: ValidationError, task: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"parameters.{where}: unknown parameter for a {task} model"
    # msg, not input: the message never repeats the value.
    return f"parameters.{where}: {first['msg']} (for a {task} model)"


def _names(value: Any, known: frozenset[str], *, column: str, what: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ModelRefused(
            f"{column} must be a list of {what} names", column=column, rule=f"ai_models:{column}"
        )
    if not value:
        raise ModelRefused(
            f"{column} must name at least one {what}, or be null",
            column=column,
            rule=f"ai_models:{column}",
        )
    unknown = sorted(set(value) - known)
    if unknown:
        raise ModelRefused(
            f"unknown {what} {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}",
            column=column,
            rule=f"ai_models:{column}",
        )
    if len(set(value)) != len(value):
        raise ModelRefused(
            f"{column} names a {what} twice", column=column, rule=f"ai_models:{column}"
        )
    return value


def check_model(
    row: Mapping[str, Any],
    vocabulary: ModelVocabulary,
    *,
    secret_key: Callable[[], SecretKey | None],
) -> None:
    """Check one typed model row: parameters valid for its task, known tiers and
    features, a well-formed credential reference (an encrypted one must decrypt with
    ``secret_key()``), and no disabled default. Raises :class:`ModelRefused`."""
    task = str(row.get("task"))
    parameters = row.get("parameters")
    schema = PARAMETERS_BY_TASK.get(task)
    if schema is not None:
        if not isinstance(parameters, dict):
            raise ModelRefused(
                "parameters must be an object", column="parameters", rule="ai_models:parameters"
            )
        try:
            schema.model_validate(parameters)
        except ValidationError as exc:
            raise ModelRefused(
                _pydantic_problem(exc, task), column="parameters", rule="ai_models:parameters"
            ) from None
    _names(row.get("tiers"), vocabulary.tiers, column="tiers", what="tier")
    _names(row.get("features"), vocabulary.features, column="features", what="feature")
    try:
        reference = check_credentials(row.get("credentials"))
    except CredentialRefused as exc:
        raise ModelRefused(str(exc), column="credentials", rule=exc.rule) from None
    if reference is not None and reference[0] == "encrypted":
        try:
            decrypt_credential(reference[1], secret_key())
        except (ConfigError, SettingsError) as exc:
            raise ModelRefused(exc.message, column="credentials", rule=UNDECRYPTABLE) from None
    if row.get("is_default") and row.get("enabled") is False:
        raise ModelRefused(
            "a disabled model cannot be its task's default",
            column="is_default",
            rule="ai_models:default_disabled",
        )


@dataclass(frozen=True)
class _Checked:
    """A checked model row and where it came from."""

    model_id: str
    task: str
    is_default: bool
    enabled: bool
    path: str | None = None
    line: int | None = None
    record: int | None = None

    def where(self) -> str:
        if self.path is None:
            return "already loaded"
        return (
            f"{self.path}:{self.line}"
            if self.line is not None
            else f"{self.path} record {self.record}"
        )


def _conflict(first: _Checked, second: _Checked) -> str:
    return (
        f"two default models for task {second.task!r}: {first.model_id!r} ({first.where()}) "
        f"and {second.model_id!r}; a task has exactly one default"
    )


def _one_default_per_task(rows: Sequence[_Checked], existing: Sequence[_Checked]) -> None:
    """Refuse a second default for a task, among the rows and the rows already stored
    that they do not replace."""
    replaced = {r.model_id for r in rows}
    defaults: dict[str, _Checked] = {
        r.task: r for r in existing if r.is_default and r.model_id not in replaced
    }
    for row in rows:
        if not row.is_default:
            continue
        first = defaults.setdefault(row.task, row)
        if first is not row:
            raise RecordError(
                _conflict(first, row),
                path=row.path,
                table=_TABLE,
                line=row.line,
                record=row.record,
                column="is_default",
                rule="ai_models:default_per_task",
            )


class _KeyOnce:
    """The secret key, read from settings only if an encrypted credential needs it."""

    def __init__(self, settings: Settings | None) -> None:
        self._settings = settings

    def __call__(self) -> SecretKey | None:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings.secret_key


#: What the load checks over the tenant's rows after writing, said for people.
_DEFAULTS_RULE = "one default model per task among the tenant's enabled models"


class AIModelLoader(DataLoader):
    """Loads AI model configurations: provider, model, task, parameters validated for
    the task, tiers and features, credential references, one default per task."""

    loader_name = "ai_models"
    domain_tables = frozenset({_TABLE})
    #: Every ``ai_models`` file of a fixture set is checked here, whether or not the set
    #: names this loader (an export's manifest names none).
    guards_tables = True

    @classmethod
    def guards_table(cls, table: Table) -> bool:
        return super().guards_table(table) and is_spotify_table(table)

    def __init__(
        self,
        source: Path | str | FixtureSet,
        *,
        name: str | None = None,
        tables: Iterable[str] | None = None,
        metadata: MetaData | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        modes: Mapping[str, TableMode] | None = None,
        settings: Settings | None = None,
        vocabulary: ModelVocabulary | None = None,
    ) -> None:
        super().__init__(
            source,
            name=name,
            tables=tables,
            metadata=metadata if metadata is not None else spotify_metadata(),
            batch_size=batch_size,
            modes=modes,
        )
        #: Settings for the secret key and template directory (default: the run's, else
        #: the environment's).
        self.settings = settings
        self._vocabulary = vocabulary

    @property
    def vocabulary(self) -> ModelVocabulary:
        """Known tiers and features: given, or those of the settings' config template."""
        return self._vocabulary_for(self.settings)

    def _vocabulary_for(self, settings: Settings | None) -> ModelVocabulary:
        if self._vocabulary is None:
            template_dir = (settings or load_settings()).template_dir
            self._vocabulary = ModelVocabulary.from_templates(template_dir)
        return self._vocabulary

    def tenant_checks(self) -> list[str]:
        return [_DEFAULTS_RULE]

    def record_checks(self, settings: Settings | None) -> Mapping[str, RecordChecks]:
        """The checks of each model config the validator runs with the schema's (a
        lenient load sets a refused config aside, its plain keys redacted)."""
        settings = self.settings or settings
        key = _KeyOnce(settings)

        def check(row: Mapping[str, Any]) -> None:
            with _as_record_error():
                check_model(row, self._vocabulary_for(settings), secret_key=key)

        return {_TABLE: RecordChecks(_screen, check, redact_plain_secrets)}

    async def apply(self, session: TenantSession, context: LoadContext) -> Mapping[str, int]:
        """Check every model config, then write them; a task left without its one
        default is refused too, and nothing is written."""
        table = self._table(session, _TABLE)
        files = [f for f in self.files if f.table == _TABLE]
        mode = self.modes.get(_TABLE, "auto")
        if not files or (mode == "skip" and not await session.is_empty(table)):
            return await super().apply(session, context)
        rows = await asyncio.to_thread(self._check_files, files, table, context)
        existing = [] if mode == "replace" else await _stored(session, table)
        _one_default_per_task(rows, existing)
        counts = await super().apply(session, context)
        await _every_task_has_a_default(session, table, rows)
        return counts

    def _check_files(
        self, files: Sequence[FixtureFile], table: Table, context: LoadContext
    ) -> list[_Checked]:
        # The loader's own settings, else the run's (secret key, config template).
        settings = self.settings or context.settings
        vocabulary = self._vocabulary_for(settings)
        builder = RowBuilder(
            table, max_text_length=context.max_text_length, rules=context.validate_rules
        )
        key = _KeyOnce(settings)
        checked: list[_Checked] = []
        for file in files:
            # Records a lenient load set aside are neither checked nor written.
            skipped = context.skip_records.get(file.path, frozenset())
            for record in iter_records(file):
                if record.record in skipped:
                    continue
                row = self._checked_row(builder, file, record, vocabulary, key)
                checked.append(
                    _Checked(
                        str(row["model_id"]),
                        str(row["task"]),
                        bool(row["is_default"]),
                        bool(row["enabled"]),
                        file.relative,
                        record.line,
                        None if record.line is not None else record.record,
                    )
                )
        return checked

    @staticmethod
    def _checked_row(
        builder: RowBuilder,
        file: FixtureFile,
        record: SourceRecord,
        vocabulary: ModelVocabulary,
        key: _KeyOnce,
    ) -> dict[str, Any]:
        try:
            scan_for_plain_secrets(record.values)
            row = dict(zip(builder.columns, builder.build(record, path=file.relative), strict=True))
            check_model(row, vocabulary, secret_key=key)
        except ModelRefused as exc:
            raise RecordError(
                str(exc),
                path=file.relative,
                table=_TABLE,
                line=record.line,
                record=None if record.line is not None else record.record,
                column=exc.column,
                rule=exc.rule,
            ) from None
        return row


async def _stored(session: TenantSession, table: Table) -> list[_Checked]:
    found = await session.connection.execute(
        select(table.c.model_id, table.c.task, table.c.is_default, table.c.enabled)
    )
    return [_Checked(m, t, bool(d), bool(e)) for m, t, d, e in found]


async def _every_task_has_a_default(
    session: TenantSession, table: Table, loaded: Sequence[_Checked]
) -> None:
    """After the write: each task this load gave a model keeps exactly one default
    among its enabled models."""
    tasks = sorted({r.task for r in loaded})
    found = await session.connection.execute(
        select(table.c.task, table.c.is_default, table.c.enabled).where(table.c.task.in_(tasks))
    )
    enabled: set[str] = set()
    with_default: set[str] = set()
    for task, is_default, is_enabled in found:
        if is_enabled:
            enabled.add(task)
        if is_default:
            with_default.add(task)
    for task in tasks:
        if task in enabled and task not in with_default:
            first = next(r for r in loaded if r.task == task)
            raise RecordError(
                f"task {task!r} has enabled models but no default; mark exactly one "
                "of them is_default",
                path=first.path,
                table=_TABLE,
                line=first.line,
                record=first.record,
                column="is_default",
                rule="ai_models:default_missing",
            )


class AIModelsFormat(SourceFormat):
    """``ai-models``: a JSON list of model configs, or ``{"models": [...]}``, each with
    the ``ai_models`` columns (``model_id``, ``provider``, ``model_name``, ``version``,
    ``task``, ``parameters``, ``credentials``, ``tiers``, ``features``, ``enabled``,
    ``is_default``).

    Options: ``features`` / ``tiers`` (the names a config may use; default: the config
    template's). Encrypted credentials must decrypt with ``TENANCY_SECRET_KEY``.
    """

    name = "ai-models"
    option_names = frozenset({"tiers", "features"})
    loader = "ai_models"
    tables = frozenset({_TABLE})
    tenant_checks = (_DEFAULTS_RULE,)
    stream = "models.item"
    _COLUMNS: ClassVar[tuple[str, ...]] = tuple(
        str(c.name) for c in spotify_metadata().tables[f"{TENANT_SCHEMA}.{_TABLE}"].columns
    )

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._defaults: dict[str, str] = {}
        self._seen: set[str] = set()
        #: The models read, with where each came from (source file, line or document).
        self._loaded: list[_Checked] = []
        self._key: _KeyOnce | None = None
        self._vocabulary: ModelVocabulary | None = None

    @classmethod
    def sniff(cls, document: Any) -> bool:
        return (
            isinstance(document, dict)
            and {"model_id", "provider", "task"} <= document.keys()
            and isinstance(document["task"], str)
            and document["task"] in PARAMETERS_BY_TASK
        )

    async def after_load(self, session: TenantSession, files: Sequence[FixtureFile]) -> None:
        """Each task these configs name keeps exactly one default among the tenant's
        enabled models, as for table files."""
        del files
        table = session.metadata.tables[f"{TENANT_SCHEMA}.{_TABLE}"]
        await _every_task_has_a_default(session, table, self._loaded)

    def _vocabulary_now(self) -> ModelVocabulary:
        if self._vocabulary is None:
            settings = self.settings or load_settings()
            template = ModelVocabulary.from_templates(settings.template_dir)
            tiers = self.options.get("tiers")
            features = self.options.get("features")
            self._vocabulary = ModelVocabulary(
                frozenset(tiers) if tiers is not None else template.tiers,
                frozenset(features) if features is not None else template.features,
            )
        return self._vocabulary

    def record_table(self, document: Any) -> str | None:
        del document
        return _TABLE

    def shown(self, document: Any) -> Any:
        """A config with each field holding a plain key redacted."""
        return redact_plain_secrets(document) if isinstance(document, Mapping) else document

    def normalize(self, document: Any, sink: RowSink) -> None:
        row = self._row(document, sink)
        try:
            if self._key is None:
                self._key = _KeyOnce(self.settings)
            check_model(row, self._vocabulary_now(), secret_key=self._key)
        except ModelRefused as exc:
            raise sink.refuse(str(exc), column=exc.column, rule=exc.rule) from None
        self._remember(row, sink)
        sink.add(_TABLE, row)

    def _row(self, document: Any, sink: RowSink) -> dict[str, Any]:
        """The ``ai_models`` row of a config object holding no plain secret and naming its
        model and task, with the defaults of the optional columns filled in."""
        if not isinstance(document, dict):
            raise sink.refuse(
                f"expected a model config object, found {type(document).__name__}",
                rule="format:ai_model",
            )
        try:
            scan_for_plain_secrets(document)
        except ModelRefused as exc:
            raise sink.refuse(str(exc), column=exc.column, rule=exc.rule) from None
        for required in ("model_id", "provider", "model_name", "version", "task"):
            if not isinstance(document.get(required), str) or not document[required]:
                raise sink.refuse(
                    f"{required} must be a non-empty string", column=required, rule="not_null"
                )
        row = {c: _decoded(c, document.get(c)) for c in self._COLUMNS}
        row["parameters"] = row["parameters"] if row["parameters"] is not None else {}
        row["enabled"] = True if row["enabled"] is None else row["enabled"]
        row["is_default"] = False if row["is_default"] is None else row["is_default"]
        return row

    def _remember(self, row: dict[str, Any], sink: RowSink) -> None:
        """Keep the checked model and where it came from; refuse a model configured twice
        and a second default for a task (keeping nothing of it)."""
        model_id, task = row["model_id"], row["task"]
        if model_id in self._seen:
            raise sink.refuse(
                f"model {model_id!r} is configured twice",
                column="model_id",
                rule="ai_models:duplicate",
            )
        default = row["is_default"] is True
        first = self._defaults.get(task, model_id) if default else model_id
        if first != model_id:
            raise sink.refuse(
                f"two default models for task {task!r}: {first!r} and {model_id!r}; "
                "a task has exactly one default",
                column="is_default",
                rule="ai_models:default_per_task",
            )
        self._seen.add(model_id)
        sink.on_undo(partial(self._seen.discard, model_id))
        if default and task not in self._defaults:
            self._defaults[task] = model_id
            sink.on_undo(partial(self._defaults.pop, task))
        origin = sink.origin()
        self._loaded.append(
            _Checked(
                model_id,
                task,
                row["is_default"] is True,
                row["enabled"] is True,
                str(origin.path),
                origin.line,
                origin.record,
            )
        )
        sink.on_undo(self._loaded.pop)
