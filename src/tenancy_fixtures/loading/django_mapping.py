"""Which tenant table each Django model of a ``dumpdata`` fixture loads into.

A mapping comes from the ``django`` format's options: ``mapping`` (the path of a small
YAML or JSON file, or the same content inline), ``models`` (``app.Model:table,...``)
and ``natural_keys`` (``app.Model:field+field,...``); the options win over the file,
model by model (``models`` changes a model's table, keeping its renames). The file::

    models:
      music.Artist: artists                 # the table alone
      music.Track:
        table: tracks
        columns: {title: name}              # Django field -> column, where they differ
        many_to_many:
          genres: track_genres              # the through table (its columns inferred;
                                            # an ``id`` key of its own is filled in)
          tags: {table: track_tags, source: track_id, target: tag_id}
    natural_keys:
      music.Artist: [name]                  # the fields of the model's natural key

A model the mapping does not name loads into the table Django itself would have made
(``app_model``), else the table named for the model (``model``, then ``models``). A
many-to-many field the mapping does not name fills the through table Django would have
made (``app_model_field``, or ``<table>_field``), when the schema has it.
Model labels are matched without regard to case, as ``dumpdata`` writes them lowercased.
:func:`read_spec` reads the options (refusing a bad file with a
:class:`~tenancy_fixtures.errors.FixtureSetError` naming it); :meth:`MappingSpec.bind`
checks them against the tenant schema.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, Integer, MetaData, Table

from tenancy_fixtures.errors import FixtureSetError
from tenancy_fixtures.loading.records import column_converter, default_function

__all__ = ["DjangoMapping", "MappingSpec", "ModelMapping", "Through", "read_spec"]

#: A mapping file larger than this is refused (it names models, not rows).
MAX_MAPPING_BYTES = 1 << 20
_FILE_KEYS = frozenset({"models", "natural_keys"})
_MODEL_KEYS = frozenset({"table", "columns", "many_to_many"})
_THROUGH_KEYS = frozenset({"table", "source", "target"})


@dataclass(frozen=True)
class MappingSpec:
    """The mapping as given: model entries and natural keys by lowercased label."""

    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    natural_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Where the mapping came from, for errors (the file's path, or ``options``).
    source: str = "options"
    #: A digest of the mapping, for the load's checksum.
    fingerprint: str = ""

    def bind(self, metadata: MetaData) -> DjangoMapping:
        """The mapping checked against ``metadata``; raises :class:`FixtureSetError`."""
        return DjangoMapping(self, metadata)


@dataclass(frozen=True)
class Through:
    """A many-to-many field's through table: ``source`` refers to the model's row,
    ``target`` to the row the field names."""

    table: Table
    source: str
    target: str
    #: The table's own primary-key column when it is neither of the two (the ``id``
    #: Django gives the through table of a ``ManyToManyField``): the load fills it in.
    key: str | None = None
    #: What types a ``source`` and a ``target`` value as the loader types their columns
    #: (``None``: matched as given), to match a link with the tenant's rows.
    pair_types: tuple[Callable[[Any], Any] | None, Callable[[Any], Any] | None] = (None, None)

    @property
    def numbered(self) -> bool:
        """Whether the load numbers ``key`` itself (an integer column), rather than
        leaving it to the column's default function."""
        return self.key is not None and isinstance(self.table.c[self.key].type, Integer)

    @property
    def target_table(self) -> Table:
        """The table ``target`` refers to."""
        return next(iter(self.table.c[self.target].foreign_keys)).column.table


@dataclass(frozen=True)
class ModelMapping:
    """One Django model and the table it loads into."""

    label: str
    table: Table
    columns: Mapping[str, str]
    many_to_many: Mapping[str, Through]
    natural_key: tuple[str, ...] = ()
    #: For each natural-key field, what types a value as the loader types its column
    #: (``None``: a JSON column, or a type the loader does not convert: matched as given).
    key_types: tuple[Callable[[Any], Any] | None, ...] = ()

    @property
    def primary_key(self) -> tuple[str, ...]:
        """The table's primary-key columns."""
        return tuple(str(c.name) for c in self.table.primary_key.columns)

    def column(self, name: str) -> Column[Any] | None:
        """The column Django field ``name`` loads into: the mapping's rename, the column
        of that name, or ``<name>_id`` (Django's column of a foreign key)."""
        if name in self.columns:
            return self.table.c[self.columns[name]]
        for candidate in (name, f"{name}_id"):
            if candidate in self.table.c:
                return self.table.c[candidate]
        return None


def _refuse(spec: MappingSpec, message: str) -> FixtureSetError:
    return FixtureSetError(f"django mapping: {message}", path=spec.source)


class DjangoMapping:
    """A :class:`MappingSpec` bound to a tenant schema: models resolved to tables."""

    def __init__(self, spec: MappingSpec, metadata: MetaData) -> None:
        self.spec = spec
        self._tables = {t.name: t for t in metadata.sorted_tables}
        self._models: dict[str, ModelMapping | None] = {}
        for label in spec.models:
            self._models[label] = self._explicit(label)
        for label in spec.natural_keys:
            if self.model(label) is None:
                raise _refuse(spec, f"natural_keys names {label!r}, which maps to no table")
        #: The model whose natural key finds rows of a table, by table name.
        self.keyed: dict[str, ModelMapping] = {}
        for label in spec.natural_keys:
            model = self.model(label)
            assert model is not None
            self._check_natural_key(model)
            self.keyed.setdefault(model.table.name, model)

    def declared_tables(self) -> frozenset[str]:
        """The tables the mapping names (every table when it names no model: any model
        may then load into the table named after it)."""
        if not self.spec.models:
            return frozenset(self._tables)
        names = set()
        for model in self._models.values():
            if model is not None:
                names.add(model.table.name)
                names.update(t.table.name for t in model.many_to_many.values())
        return frozenset(names)

    def throughs(self) -> list[Through]:
        """The through tables of the models mapped so far, once each."""
        found = {
            through.table.name: through
            for model in self._models.values()
            if model is not None
            for through in model.many_to_many.values()
        }
        return list(found.values())

    def keyed_throughs(self) -> list[Through]:
        """The through tables with a key of their own (:attr:`Through.key`), once each."""
        return [through for through in self.throughs() if through.key is not None]

    def model(self, label: str) -> ModelMapping | None:
        """The mapping of model ``label`` (any case), ``None`` when no table fits it."""
        label = label.lower()
        if label not in self._models:
            app, _, name = label.rpartition(".")
            candidates = (f"{app}_{name}", name, f"{name}s") if app else (name, f"{name}s")
            table = next((self._tables[c] for c in candidates if c in self._tables), None)
            self._models[label] = None if table is None else self._made(label, table, {}, {})
        return self._models[label]

    def _explicit(self, label: str) -> ModelMapping:
        entry = self.spec.models[label]
        table = self._tables.get(entry["table"])
        if table is None:
            raise _refuse(
                self.spec, f"{label!r} maps to table {entry['table']!r}, which the schema lacks"
            )
        columns: dict[str, str] = dict(entry.get("columns") or {})
        taken: dict[str, str] = {}
        for name, column in columns.items():
            if column not in table.c:
                raise _refuse(
                    self.spec,
                    f"{label!r}: field {name!r} maps to {table.name}.{column}, "
                    "which does not exist",
                )
            if column in taken:
                raise _refuse(
                    self.spec,
                    f"{label!r}: fields {taken[column]!r} and {name!r} both map to "
                    f"{table.name}.{column}; a column holds one field",
                )
            taken[column] = name
        throughs = {
            name: self._through(label, table, name, value)
            for name, value in dict(entry.get("many_to_many") or {}).items()
        }
        return self._made(label, table, columns, throughs)

    def _made(
        self,
        label: str,
        table: Table,
        columns: Mapping[str, str],
        throughs: Mapping[str, Through],
    ) -> ModelMapping:
        throughs = {**self._django_throughs(label, table, throughs), **throughs}
        key = self.spec.natural_keys.get(label, ())
        model = ModelMapping(label, table, columns, throughs, key)
        if not key:
            return model
        # Built once here: typing each key with a converter built for it cost microseconds.
        types = tuple(_key_type(model.column(name)) for name in key)
        return ModelMapping(label, table, columns, throughs, key, types)

    def _django_throughs(
        self, label: str, table: Table, named: Mapping[str, Through]
    ) -> dict[str, Through]:
        """The through tables Django itself makes for the model's many-to-many fields
        that the mapping does not name: ``<app>_<model>_<field>`` (its table's name and
        the field's), or ``<table>_<field>``, where such a table links the model's table
        to one other by a foreign key each."""
        app, _, name = label.rpartition(".")
        found: dict[str, Through] = {}
        for candidate in self._tables.values():
            for prefix in (f"{app}_{name}_", f"{table.name}_"):
                field = candidate.name.removeprefix(prefix)
                if field == candidate.name or not field or field in named or field in found:
                    continue
                try:
                    found[field] = self._through(label, table, field, candidate.name)
                except FixtureSetError:
                    continue  # not a through table of the model
        return found

    def _through(self, label: str, table: Table, name: str, value: Any) -> Through:
        """The through table of many-to-many field ``name``; columns not given are the
        table's foreign keys to the model's table (source) and to another (target)."""
        entry: dict[str, Any] = {"table": value} if isinstance(value, str) else dict(value)
        where = f"{label!r}: many-to-many field {name!r}"
        through = self._tables.get(entry["table"])
        if through is None:
            raise _refuse(self.spec, f"{where} names table {entry['table']!r}, which is missing")
        refs = {
            str(c.name): str(next(iter(c.foreign_keys)).column.table.name)
            for c in through.columns
            if len(c.foreign_keys) == 1
        }
        source = entry.get("source") or _only(c for c, t in refs.items() if t == table.name)
        if source is None and entry.get("target") is None:
            # A field linking the model to itself: Django names the two from_/to_<model>_id.
            model = label.rpartition(".")[2]
            pair = (f"from_{model}_id", f"to_{model}_id")
            if all(refs.get(c) == table.name for c in pair):
                source, entry["target"] = pair
        target = entry.get("target") or _only(c for c, t in refs.items() if c != source)
        for role, column in (("source", source), ("target", target)):
            if column is None or column not in refs:
                raise _refuse(
                    self.spec,
                    f"{where}: cannot tell the {role} column of {through.name}; give "
                    f"{{table: {through.name}, source: <column>, target: <column>}} "
                    "(each a single-column foreign key)",
                )
        assert source is not None
        assert target is not None
        types = (_key_type(through.c[source]), _key_type(through.c[target]))
        return Through(
            through, source, target, self._surrogate(where, through, source, target), types
        )

    def _surrogate(self, where: str, through: Table, source: str, target: str) -> str | None:
        """The through table's own key column (see :attr:`Through.key`), if it has one; a
        key the load can fill in neither by numbering (an integer) nor by the column's
        default function is refused."""
        keys = [str(c.name) for c in through.primary_key.columns]
        if len(keys) != 1 or keys[0] in (source, target):
            return None
        column = through.c[keys[0]]
        if isinstance(column.type, Integer) or _made_by_default(column):
            return keys[0]
        raise _refuse(
            self.spec,
            f"{where}: the primary key {through.name}.{keys[0]} is neither of its foreign "
            "keys, and a load can fill it in only when it is an integer (numbered past the "
            "table's highest) or has a default function (default=uuid.uuid4)",
        )

    def _check_natural_key(self, model: ModelMapping) -> None:
        if len(model.primary_key) != 1:
            raise _refuse(
                self.spec,
                f"natural_keys for {model.label!r}: table {model.table.name} has a composite "
                "primary key, which a foreign key of a Django model cannot name",
            )
        for name in model.natural_key:
            if model.column(name) is None:
                raise _refuse(
                    self.spec,
                    f"natural_keys for {model.label!r}: field {name!r} has no column in "
                    f"{model.table.name}",
                )


def _made_by_default(column: Column[Any]) -> bool:
    """Whether ``column``'s default function gives a value to a row that leaves it out."""
    try:
        return default_function(column) is not None
    except TypeError:
        return False  # it takes the statement's context, which a load lacks


def _key_type(column: Column[Any] | None) -> Callable[[Any], Any] | None:
    """What types a value of ``column`` as the loader types it, to match the tenant's
    rows (``None``: a JSON column, or a type the loader does not convert)."""
    if column is None or isinstance(column.type, JSON):
        return None
    try:
        return column_converter(column)
    except TypeError:
        return None


def _only(names: Any) -> str | None:
    found = list(names)
    return found[0] if len(found) == 1 else None


def read_spec(options: Mapping[str, Any]) -> MappingSpec:
    """The mapping the ``django`` format's options give (see the module docstring)."""
    given = options.get("mapping")
    source = "options"
    document: dict[str, Any] = {}
    if isinstance(given, str):
        source = given
        document = _read_file(Path(given))
    elif isinstance(given, Mapping):
        document = dict(given)
    elif given is not None:
        raise FixtureSetError("django mapping: 'mapping' must be a file path or a mapping")
    spec = MappingSpec(source=source)
    unknown = set(document) - _FILE_KEYS
    if unknown:
        raise _refuse(spec, f"unknown key(s) {sorted(unknown)}; known: {sorted(_FILE_KEYS)}")
    models = _models(spec, document.get("models", {}))
    for label, entry in _models(spec, _pairs(spec, options.get("models"), "models")).items():
        models[label] = {**models.get(label, {}), **entry}
    keys = _natural_keys(spec, document.get("natural_keys", {}))
    keys.update(_natural_keys(spec, _pairs(spec, options.get("natural_keys"), "natural_keys")))
    canonical = json.dumps([models, keys], sort_keys=True, default=str)
    return MappingSpec(models, keys, source, hashlib.sha256(canonical.encode()).hexdigest())


def _read_file(path: Path) -> dict[str, Any]:
    import yaml

    spec = MappingSpec(source=str(path))
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_MAPPING_BYTES + 1)
    except OSError as exc:
        raise _refuse(spec, f"cannot read the mapping file: {exc.strerror or exc}") from None
    except UnicodeEncodeError:  # a lone surrogate in the path names no file
        raise _refuse(spec, "cannot read the mapping file: its path is not a file name") from None
    if len(data) > MAX_MAPPING_BYTES:
        raise _refuse(spec, f"a mapping file larger than {MAX_MAPPING_BYTES} bytes")
    try:
        loaded = json.loads(data) if path.suffix == ".json" else yaml.safe_load(data)
    except (ValueError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())
        raise _refuse(spec, f"the mapping file does not parse: {reason}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise _refuse(spec, "the mapping file must hold a mapping with 'models', 'natural_keys'")
    return loaded


def _pairs(spec: MappingSpec, value: Any, option: str) -> Mapping[str, Any]:
    """An option given as ``label:value,label:value`` (a string, from the command line)
    or as a mapping; a ``+`` in a value separates natural-key fields."""
    if value is None or isinstance(value, Mapping):
        return value or {}
    if not isinstance(value, str):
        raise _refuse(spec, f"option {option!r} must be 'app.Model:value,...' or a mapping")
    pairs: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        label, colon, target = item.partition(":")
        if not colon or not label.strip() or not target.strip():
            raise _refuse(spec, f"option {option!r}: expected app.Model:value, found {item!r}")
        fields = target.strip().split("+")
        pairs[label.strip()] = fields if option == "natural_keys" else target.strip()
    return pairs


def _label(spec: MappingSpec, label: Any) -> str:
    if not isinstance(label, str) or "." not in label.strip(". "):
        raise _refuse(spec, f"{label!r} is not a model label (app_label.ModelName)")
    return label.lower()


def _models(spec: MappingSpec, given: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(given, Mapping):
        raise _refuse(spec, "'models' must map app.Model labels to tables")
    models: dict[str, dict[str, Any]] = {}
    for label, entry in given.items():
        where = _label(spec, label)
        value: Any = {"table": entry} if isinstance(entry, str) else entry
        if not isinstance(value, Mapping) or not isinstance(value.get("table"), str):
            raise _refuse(spec, f"{label!r}: give a table name, or a mapping with 'table'")
        unknown = set(value) - _MODEL_KEYS
        if unknown:
            raise _refuse(spec, f"{label!r}: unknown key(s) {sorted(unknown)}")
        _check_names(spec, label, value.get("columns") or {}, "columns")
        throughs = value.get("many_to_many") or {}
        if not isinstance(throughs, Mapping):
            raise _refuse(spec, f"{label!r}: 'many_to_many' must map field names to tables")
        for name, through in throughs.items():
            if not isinstance(through, str) and not (
                isinstance(through, Mapping)
                and isinstance(through.get("table"), str)
                and set(through) <= _THROUGH_KEYS
                and all(isinstance(through.get(k) or "", str) for k in ("source", "target"))
            ):
                raise _refuse(
                    spec,
                    f"{label!r}: many_to_many {name!r} must be a table name or "
                    "{table, source, target}",
                )
        models[where] = dict(value)
    return models


def _check_names(spec: MappingSpec, label: str, value: Any, key: str) -> None:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _refuse(spec, f"{label!r}: {key!r} must map field names to column names")


def _natural_keys(spec: MappingSpec, given: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(given, Mapping):
        raise _refuse(spec, "'natural_keys' must map app.Model labels to lists of fields")
    keys: dict[str, tuple[str, ...]] = {}
    for label, fields in given.items():
        if isinstance(fields, str):
            fields = [fields]
        if (
            not isinstance(fields, list)
            or not fields
            or not all(isinstance(f, str) and f for f in fields)
        ):
            raise _refuse(spec, f"natural_keys for {label!r}: give a list of field names")
        keys[_label(spec, label)] = tuple(fields)
    return keys
