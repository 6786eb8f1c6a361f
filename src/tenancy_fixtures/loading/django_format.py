"""Format ``django``: the fixtures Django's ``dumpdata`` writes, loaded into tenant tables.

A team leaving ``loaddata`` loads the files it already has: JSON, JSON Lines or YAML
(optionally gzipped), each record ``{"model": "app.model", "pk": ..., "fields": {...}}``.
Records stream one at a time. Which table each model fills is the mapping's
(:mod:`~tenancy_fixtures.loading.django_mapping`, given by the options ``mapping``,
``models``, ``natural_keys``).

- ``pk`` goes to the table's primary-key column. A table with a composite key takes
  its key from ``fields`` (a ``pk`` that cannot fill it is refused); without ``pk``
  (``dumpdata --natural-primary``) the fields must carry the key.
- Each field goes to the column of its name, the mapping's rename, or ``<field>_id``
  (where Django keeps a foreign key). A foreign key holds the referenced pk, or with
  ``--natural-foreign`` a natural key (a list), found through ``natural_keys`` among
  the records of the same load (before or after) or the tenant's rows.
- A many-to-many field (a list of pks or natural keys) becomes rows of the through
  table the mapping names for it. A through table with a key of its own (the ``id``
  Django gives a ``ManyToManyField``'s) gets, for a link the tenant holds, that row's
  key (loading again changes nothing), else the next integer past the table's highest
  (or the column's default function's value); a link given twice is one row. As
  ``loaddata`` sets the field, a record loaded keeps the links its list names alone: the
  tenant's others of its pk are deleted after the load (:mod:`.listed_links`).

Natural keys are matched as the values their columns hold (``"1.50"`` finds a
``NUMERIC`` 1.5, ``"2024-01-02"`` a ``DATE``). A record of a model no table fits,
without ``pk``, with a field the table lacks, a many-to-many field without a through
table, or a natural key that no value of its columns can be (``2**63`` for a
``BIGINT``), that finds no row or that finds more than one (two records of the load,
two rows of the tenant), or two fields that load into one column, is a
:class:`~tenancy_fixtures.errors.RecordError` naming the file, the record (the line in
JSON Lines) and the field (``model``, ``pk``, ``fields.<name>``); nothing is written
(a lenient load sets the record aside and loads the rest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, MetaData, Table, func, select

from tenancy_fixtures.loading.data_loader import TableMode
from tenancy_fixtures.loading.django_mapping import (
    DjangoMapping,
    MappingSpec,
    ModelMapping,
    Through,
    read_spec,
)
from tenancy_fixtures.loading.listed_links import ListedLinks
from tenancy_fixtures.loading.sources import (
    Origin,
    RowSink,
    SourceFile,
    SourceFormat,
    iter_documents,
)
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TENANT_SCHEMA, TenantSession

__all__ = ["DjangoFormat"]

_RULE = "format:django"
_RECORD_KEYS = frozenset({"model", "pk", "fields"})
#: Natural keys looked up in the tenant's table per query.
_LOOKUP_BATCH = 500

Key = tuple[Any, ...]


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def _typed(model: ModelMapping, key: Sequence[Any]) -> Key:
    """Natural key ``key`` typed as the loader types the model's natural-key columns
    (``None`` kept); a ``ValueError`` naming the field no value of its column can be."""
    if len(key) != len(model.natural_key):
        raise ValueError(
            f"{len(key)} value(s), and the natural key of {model.label} has "
            f"{len(model.natural_key)} ({', '.join(model.natural_key)})"
        )
    typed = []
    for name, convert, value in zip(model.natural_key, model.key_types, key, strict=True):
        if value is not None and convert is not None:
            try:
                value = convert(value)
            except ValueError as exc:
                raise ValueError(f"field {name!r}: {exc}") from None
            except TypeError:
                pass  # a value the converter cannot take: matched as given, as before
        typed.append(_hashable(value))
    return tuple(typed)


def _referenced(column: Column[Any]) -> Table | None:
    """The table a single-column foreign key refers to."""
    keys = list(column.foreign_keys)
    return keys[0].column.table if len(keys) == 1 else None


_UNTYPED = object()


def _as_held(convert: Callable[[Any], Any] | None, value: Any) -> Any:
    """``value`` typed by ``convert`` and hashable, as a column holds it; ``_UNTYPED``
    when it cannot be one (its row is refused when it is loaded)."""
    if value is None or isinstance(value, list | dict):
        return _UNTYPED
    if convert is not None:
        try:
            value = convert(value)
        except (ValueError, TypeError):
            return _UNTYPED
    return _hashable(value)


def _pair(through: Through, source: Any, target: Any) -> Key | None:
    """A link as its through table holds it, to match the tenant's rows; ``None`` when
    either value cannot be one."""
    pair = (_as_held(through.pair_types[0], source), _as_held(through.pair_types[1], target))
    return None if _UNTYPED in pair else pair


def _no_through(model: ModelMapping, name: str) -> str:
    """Why list field ``name`` of ``model`` is refused, and how to map it."""
    django = f"{model.label.replace('.', '_')}_{name}"
    return (
        f"{name!r} looks like a many-to-many field of {model.label}, and no through table "
        f"is mapped for it, nor has the schema Django's own ({django}) linking "
        f"{model.table.name} to one other table: add many_to_many: {{{name}: <table>}} "
        f"under {model.label} in the mapping file"
    )


def _stored_pair(pair: tuple[Any, Any]) -> Key:
    """A through table's stored (source, target), as a listed link is held."""
    return (_hashable(pair[0]), _hashable(pair[1]))


def _link_sources(
    model: ModelMapping, record: Mapping[str, Any], sources: dict[str, set[Any]]
) -> None:
    """Add the record's pk, typed, to ``sources`` of each through table with a key of
    its own that one of its many-to-many fields fills."""
    fields = record["fields"]
    for name, through in model.many_to_many.items():
        if through.key is None or not fields.get(name) or len(model.primary_key) != 1:
            continue
        pk = record.get("pk")
        held = _as_held(
            through.pair_types[0], fields.get(model.primary_key[0]) if pk is None else pk
        )
        if held is not _UNTYPED:
            sources.setdefault(through.table.name, set()).add(held)


class DjangoFormat(SourceFormat):
    """``dumpdata`` records into the tables a model → table mapping names."""

    name = "django"
    loader = "django"
    tables = frozenset[str]()
    option_names = frozenset({"mapping", "models", "natural_keys"})
    path_options = frozenset({"mapping"})

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.spec: MappingSpec = read_spec(self.options)
        self._mapping: DjangoMapping | None = None
        #: pk by natural key, by table: the load's records and the tenant's rows found.
        self.keys: dict[str, dict[Key, Any]] = {}
        #: The pks of natural keys more than one record or row holds, by table.
        self._ambiguous: dict[str, dict[Key, set[Any]]] = {}
        #: ``fields.<name>`` each column was filled from, by table (for errors).
        self._fields: dict[str, dict[str, str]] = {}
        #: ``fields.<name>`` each column of the current record's row was filled from.
        self._filled: dict[str, str] = {}
        #: The key of each link (typed source, target) of a through table with a key of
        #: its own, by table: the tenant's rows, then this load's.
        self._links: dict[str, dict[Key, Any]] = {}
        #: The links this load has written, by through table (a repeated one is dropped).
        self._linked: dict[str, set[Key]] = {}
        #: The highest key of each numbered through table: the tenant's, then this load's.
        self._last: dict[str, int] = {}
        #: The links each record lists: the tenant's others of that record go after the load.
        self.links = ListedLinks()

    @classmethod
    def sniff(cls, document: Any) -> bool:
        return (
            isinstance(document, dict)
            and isinstance(document.get("model"), str)
            and isinstance(document.get("fields"), dict)
            and set(document) <= _RECORD_KEYS
        )

    def mapping(self, metadata: MetaData) -> DjangoMapping:
        """The mapping bound to the tenant schema (once)."""
        if self._mapping is None:
            self._mapping = self.spec.bind(metadata)
        return self._mapping

    def declared_tables(self, metadata: MetaData) -> frozenset[str]:
        return self.mapping(metadata).declared_tables()

    def fingerprint(self) -> str:
        return self.spec.fingerprint

    def source_field(self, table: str, column: str) -> str | None:
        return self._fields.get(table, {}).get(column)

    def tenant_lookups(self) -> str:
        if not self.spec.natural_keys:
            return ""
        return "its natural keys resolve against the tenant's rows too, which only a load reads"

    async def prepare(self, files: Sequence[SourceFile], session: TenantSession | None) -> None:
        """Index the natural keys of every record first (a key may point forward), then
        look up in the tenant's tables the keys no record of the load holds, and the
        links through tables with a key of their own hold for the load's records."""
        if session is None:
            return
        mapping = self.mapping(session.metadata)
        throughs = mapping.keyed_throughs()
        if not self.spec.natural_keys and not throughs:
            return
        wanted, sources = await asyncio.to_thread(self._scan, files, mapping)
        for table_name, keys in wanted.items():
            missing = [k for k in keys if k not in self.keys.get(table_name, {})]
            if missing:
                await self._look_up(session, mapping.keyed[table_name], missing)
        for through in throughs:
            await self._look_up_links(session, through, sources.get(through.table.name, set()))

    def _scan(
        self, files: Sequence[SourceFile], mapping: DjangoMapping
    ) -> tuple[dict[str, set[Key]], dict[str, set[Any]]]:
        """Remember the natural key of every record that has one; the natural keys the
        records refer to, and the (typed) pks of records with links through a table
        with a key of its own, by table. Malformed records are left to ``normalize``."""
        wanted: dict[str, set[Key]] = {}
        sources: dict[str, set[Any]] = {}
        for file in files:
            for document in iter_documents(file):
                value = document.value
                if not self.sniff(value):
                    continue
                model = mapping.model(value["model"])
                if model is None:
                    continue
                self._remember(model, value.get("pk"), value["fields"])
                _link_sources(model, value, sources)
                for table, key in self._references(mapping, model, value["fields"]):
                    try:
                        typed = _typed(mapping.keyed[table], key)
                    except ValueError:
                        continue  # refused when the record is read
                    wanted.setdefault(table, set()).add(typed)
        return wanted, sources

    @staticmethod
    def _references(
        mapping: DjangoMapping, model: ModelMapping, fields: Mapping[str, Any]
    ) -> Iterator[tuple[str, list[Any]]]:
        """The natural keys a record's foreign keys and many-to-many fields hold."""
        for name, value in fields.items():
            if not isinstance(value, list):
                continue
            column = model.column(name)
            if column is not None:
                target = _referenced(column)
                if target is not None and target.name in mapping.keyed:
                    yield target.name, value
            elif name in model.many_to_many:
                target = model.many_to_many[name].target_table
                if target.name in mapping.keyed:
                    yield from ((target.name, v) for v in value if isinstance(v, list))

    def _remember(self, model: ModelMapping, pk: Any, fields: Mapping[str, Any]) -> None:
        if not model.natural_key or model.table.primary_key is None:
            return
        if pk is None:
            pk = fields.get(model.primary_key[0])
        if pk is None or isinstance(pk, list | dict):
            return
        try:
            key = _typed(model, [fields.get(name) for name in model.natural_key])
        except ValueError:
            return  # the record itself is refused
        self._index(model.table.name, key, pk)

    def _index(self, table: str, key: Key, pk: Any) -> None:
        """Index ``pk`` under natural ``key``; a second pk makes the key ambiguous."""
        first = self.keys.setdefault(table, {}).setdefault(key, pk)
        if first != pk:
            self._ambiguous.setdefault(table, {}).setdefault(key, {first}).add(pk)

    async def _look_up(self, session: TenantSession, model: ModelMapping, keys: list[Key]) -> None:
        """Find the pks of ``keys`` among the tenant's rows of the model's table."""
        table = session.metadata.tables[f"{TENANT_SCHEMA}.{model.table.name}"]
        columns = [
            table.c[c.name] for name in model.natural_key if (c := model.column(name)) is not None
        ]
        pk = table.c[model.primary_key[0]]
        first = columns[0]
        # The keys are typed as their columns hold them (see _typed).
        firsts = sorted({k[0] for k in keys if k[0] is not None}, key=repr)
        wanted = set(keys)
        for start in range(0, len(firsts), _LOOKUP_BATCH):
            batch = firsts[start : start + _LOOKUP_BATCH]
            query = select(pk, *columns).where(session.stored_in(first, batch))
            for row in await session.connection.execute(query):
                key = tuple(_hashable(v) for v in row[1:])
                if key in wanted:
                    self._index(model.table.name, key, row[0])

    async def _look_up_links(
        self, session: TenantSession, through: Through, sources: set[Any]
    ) -> None:
        """The keys of the links the tenant's through table holds for ``sources``, and
        (for a numbered key) its highest key."""
        assert through.key is not None
        table = session.metadata.tables[f"{TENANT_SCHEMA}.{through.table.name}"]
        key, source, target = (table.c[n] for n in (through.key, through.source, through.target))
        links = self._links.setdefault(through.table.name, {})
        ordered = sorted(sources, key=repr)
        for start in range(0, len(ordered), _LOOKUP_BATCH):
            batch = ordered[start : start + _LOOKUP_BATCH]
            query = select(key, source, target).where(session.stored_in(source, batch))
            for row in await session.connection.execute(query):
                links.setdefault((_hashable(row[1]), _hashable(row[2])), row[0])
        if through.numbered:
            highest = (await session.connection.execute(select(func.max(key)))).scalar()
            self._last[through.table.name] = int(highest or 0)

    def _link(
        self, through: Through, source: Any, target: Any
    ) -> tuple[dict[str, Any], bool] | None:
        """The through row linking ``source`` to ``target`` and whether this load
        numbered its key; ``None`` for a link this load already made. A key of the
        table's own is the tenant's row's for a link it holds (loading again changes
        nothing), else the next past the table's highest (for an integer; otherwise the
        column's default function makes it)."""
        row = {through.source: source, through.target: target}
        if through.key is None:
            return row, False
        name = through.table.name
        pair = _pair(through, source, target)
        if pair is not None:
            linked = self._linked.setdefault(name, set())
            if pair in linked:
                return None
            linked.add(pair)
            found = self._links.get(name, {}).get(pair)
            if found is not None:
                row[through.key] = found
                return row, False
        if not through.numbered:
            return row, False
        self._last[name] = row[through.key] = self._last.get(name, 0) + 1
        return row, True

    def derived_mode(self, table: str) -> TableMode | None:
        """A through table's links whose key this load numbered are staged apart and
        written by a plain insert: a row another writer gave that key meanwhile (the
        app, from the table's sequence; another load) fails the load loudly instead of
        being overwritten."""
        mapping = self._mapping
        if mapping is not None and any(
            t.table.name == table and t.numbered for t in mapping.keyed_throughs()
        ):
            return "insert"
        return super().derived_mode(table)

    def record_table(self, document: Any) -> str | None:
        """The table the record's model maps to, if it names one."""
        label = document.get("model") if isinstance(document, dict) else None
        if self._mapping is None or not isinstance(label, str):
            return None
        model = self._mapping.model(label)
        return None if model is None else model.table.name

    def normalize(self, document: Any, sink: RowSink) -> None:
        mapping = self.mapping(sink.metadata)
        if not isinstance(document, dict):
            raise sink.refuse("expected a dumpdata record object", rule=_RULE)
        model = self._model(mapping, document, sink)
        fields = document.get("fields")
        if not isinstance(fields, dict):
            raise sink.refuse("'fields' must be an object", column="fields", rule=_RULE)
        row: dict[str, Any] = {}
        links: list[tuple[Through, Any]] = []
        self._filled.clear()
        for name, value in fields.items():
            if not isinstance(name, str):
                raise sink.refuse("field names must be strings", column="fields", rule=_RULE)
            self._field(mapping, model, name, value, row, links, sink)
        pk = self._primary_key(model, document, row, sink)
        if document.get("pk") is not None and len(model.primary_key) == 1:
            self._name_field(model.table.name, model.primary_key[0], "pk")
        self._remember(model, pk, fields)
        sink.add(model.table.name, row)
        for through, target in links:
            link = self._link(through, pk, target)
            if link is not None:
                row_of_link, numbered = link
                sink.add(through.table.name, row_of_link, authoritative=not numbered)
        self._list_links(model, fields, pk, links, sink)

    def _list_links(
        self,
        model: ModelMapping,
        fields: Mapping[str, Any],
        pk: Any,
        links: list[tuple[Through, Any]],
        sink: RowSink,
    ) -> None:
        """Note the links of each many-to-many field the record holds (an empty list
        too): after the load, the record keeps those alone (see :meth:`after_load`)."""
        if pk is None:
            return
        for name, through in model.many_to_many.items():
            if name not in fields or model.column(name) is not None:
                continue
            source = _as_held(through.pair_types[0], pk)
            pairs = [_pair(through, pk, target) for used, target in links if used is through]
            if source is _UNTYPED or None in pairs:
                continue  # refused when its rows are loaded
            targets = (pair[1] for pair in pairs if pair is not None)
            sink.on_undo(self.links.list(through.table.name, source, targets, sink.origin()))

    def rows_refused(self, origins: Collection[Origin]) -> None:
        self.links.forget(origins)

    async def after_load(self, session: TenantSession, files: Sequence[Any]) -> None:
        """Delete the links of the load's records that their lists no longer name, as
        ``loaddata`` sets a many-to-many field to its list (:mod:`.listed_links`)."""
        del files
        if self._mapping is not None:
            throughs = [
                (t.table.name, t.source, t.target, _stored_pair) for t in self._mapping.throughs()
            ]
            await self.links.prune(session, throughs)

    def removed(self) -> list[control_plane.TableChecksum]:
        return self.links.purged

    def _name_field(self, table: str, column: str, field: str) -> None:
        """Remember that ``column`` of ``table`` came from ``field`` (``pk``,
        ``fields.<name>``): errors found in the staged rows name the field, not the column."""
        self._fields.setdefault(table, {}).setdefault(column, field)

    @staticmethod
    def _model(mapping: DjangoMapping, document: Mapping[str, Any], sink: RowSink) -> ModelMapping:
        label = document.get("model")
        if not isinstance(label, str) or "." not in label:
            raise sink.refuse(
                f"'model' must be an app_label.ModelName label, found {label!r:.60}",
                column="model",
                rule=_RULE,
            )
        extra = sorted(set(document) - _RECORD_KEYS, key=str)
        if extra:
            raise sink.refuse(
                f"not a dumpdata record: unexpected key {extra[0]!r:.60}",
                column=str(extra[0]),
                rule=_RULE,
            )
        model = mapping.model(label)
        if model is None:
            raise sink.refuse(
                f"model {label!r:.80} maps to no table: name its table with "
                f"-o models={label}:<table> or in the mapping file's 'models'",
                column="model",
                rule=_RULE,
            )
        return model

    def _field(
        self,
        mapping: DjangoMapping,
        model: ModelMapping,
        name: str,
        value: Any,
        row: dict[str, Any],
        links: list[tuple[Through, Any]],
        sink: RowSink,
    ) -> None:
        """Put field ``name`` into ``row``, or its many-to-many links into ``links``."""
        column = model.column(name)
        where = f"fields.{name}"
        if column is not None:
            target = _referenced(column)
            if isinstance(value, list) and target is not None:
                value = self._resolve(mapping, target, value, where, sink)
            other = self._filled.setdefault(str(column.name), where)
            if other != where:
                first = other.removeprefix("fields.")
                raise sink.refuse(
                    f"fields {first!r:.60} and {name!r:.60} both load into column "
                    f"{column.name} of {model.table.name}: rename one with "
                    f"columns: {{<field>: <column>}} under {model.label} in the mapping file",
                    column=where,
                    rule=_RULE,
                )
            row[str(column.name)] = value
            self._name_field(model.table.name, str(column.name), where)
            return
        through = model.many_to_many.get(name)
        if through is not None:
            if not isinstance(value, list):
                raise sink.refuse(
                    f"a many-to-many field holds a list, found {type(value).__name__}",
                    column=where,
                    rule=_RULE,
                )
            self._name_field(through.table.name, through.source, "pk")
            self._name_field(through.table.name, through.target, where)
            target = through.target_table
            for item in value:
                if isinstance(item, list):
                    item = self._resolve(mapping, target, item, where, sink)
                links.append((through, item))
            return
        if isinstance(value, list):
            raise sink.refuse(_no_through(model, name), column=where, rule=_RULE)
        raise sink.refuse(
            f"{model.label} loads into {model.table.name}, which has no column for field "
            f"{name!r}: rename it with columns: {{{name}: <column>}} in the mapping file",
            column=where,
            rule=_RULE,
        )

    def _resolve(
        self, mapping: DjangoMapping, target: Table, key: list[Any], where: str, sink: RowSink
    ) -> Any:
        """The pk a natural key names in ``target``'s rows."""
        keyed = mapping.keyed.get(target.name)
        if keyed is None:
            raise sink.refuse(
                f"holds a natural key {key!r:.80} for table {target.name}, and no natural_keys "
                "entry names a model of that table: give -o natural_keys=app.Model:field, "
                "or natural_keys: {app.Model: [field, ...]} in the mapping file",
                column=where,
                rule=_RULE,
            )
        try:
            typed = _typed(keyed, key)
        except ValueError as exc:
            raise sink.refuse(
                f"natural key {key!r:.80} of {keyed.label} can match no row: {exc}",
                column=where,
                rule=_RULE,
            ) from None
        pks = self._ambiguous.get(target.name, {}).get(typed)
        if pks:
            listed = ", ".join(sorted(map(repr, pks)))
            raise sink.refuse(
                f"natural key {key!r:.80} of {keyed.label} matches more than one row "
                f"(pks {listed:.80}) of this load's records or the tenant's table "
                f"{target.name}: it must name one",
                column=where,
                rule=_RULE,
            )
        found = self.keys.get(target.name, {}).get(typed)
        if found is None:
            raise sink.refuse(
                f"natural key {key!r:.80} of {keyed.label} matches no record of this load "
                f"nor any row of the tenant's table {target.name}",
                column=where,
                rule=_RULE,
            )
        return found

    @staticmethod
    def _primary_key(
        model: ModelMapping, document: Mapping[str, Any], row: dict[str, Any], sink: RowSink
    ) -> Any:
        """Put the record's ``pk`` into ``row``'s key column; the key (``None`` for a
        composite one)."""
        pk = document.get("pk")
        keys = model.primary_key
        if len(keys) != 1:
            if all(row.get(k) is not None for k in keys):
                return None
            raise sink.refuse(
                f"table {model.table.name} has a composite primary key ({', '.join(keys)}), "
                "which a single pk cannot fill: the record's fields must carry its columns",
                column="pk",
                rule=_RULE,
            )
        if pk is None:
            if row.get(keys[0]) is not None:
                return row[keys[0]]
            raise sink.refuse(
                f"missing 'pk' (and fields carry no {keys[0]!r})", column="pk", rule=_RULE
            )
        if isinstance(pk, list | dict | bool):
            raise sink.refuse(
                f"'pk' must be a number or a string, found {type(pk).__name__}",
                column="pk",
                rule=_RULE,
            )
        if row.get(keys[0]) is not None and row[keys[0]] != pk:
            raise sink.refuse(
                f"'pk' {pk!r:.40} differs from the field for {keys[0]!r}", column="pk", rule=_RULE
            )
        row[keys[0]] = pk
        return pk
