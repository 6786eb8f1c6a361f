"""``tenant_template.json``: which data fixtures a new tenant of each tier gets."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import MetaData

from tenancy_fixtures.errors import TemplateError
from tenancy_fixtures.fixtures.templates import TemplateDirectory
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.loading.fixture_sets import FixtureSet, open_fixture_set
from tenancy_fixtures.loading.registry import LOADERS
from tenancy_fixtures.store.base import TENANT_SCHEMA

__all__ = ["TemplateFixture", "TenantTemplate"]


class TemplateFixture(BaseModel):
    """One named data fixture: which loader reads which set (and which of its tables)."""

    model_config = ConfigDict(extra="forbid")

    loader: str
    source: str
    tables: list[str] | None = None
    description: str = ""


class TenantTemplate(BaseModel):
    """Named data fixtures and, per tier, the names a new tenant gets."""

    model_config = ConfigDict(extra="forbid")

    version: int
    fixtures: dict[str, TemplateFixture]
    tiers: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_resolve(self) -> TenantTemplate:
        for name, fixture in self.fixtures.items():
            if fixture.loader not in LOADERS:
                raise ValueError(f"fixture {name!r} names unknown loader {fixture.loader!r}")
            tables = fixture.tables or []
            twice = next((t for i, t in enumerate(tables) if t in tables[:i]), None)
            if twice is not None:
                raise ValueError(f"fixture {name!r} names table {twice!r} twice")
        for tier, names in self.tiers.items():
            for i, name in enumerate(names):
                if name not in self.fixtures:
                    raise ValueError(f"tier {tier!r} names unknown fixture {name!r}")
                if name in names[:i]:
                    raise ValueError(f"tier {tier!r} names fixture {name!r} twice")
        return self

    @classmethod
    def load(cls, templates: TemplateDirectory) -> TenantTemplate:
        """Read and validate the tenant template of ``templates``."""
        document = templates.read_json(TemplateDirectory.TENANT_TEMPLATE)
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(map(str, error["loc"]))
            message = str(error["msg"]).removeprefix("Value error, ")
            raise TemplateError(
                f"invalid tenant template: {message}" + (f" at {where}" if where else ""),
                path=templates.resolve(TemplateDirectory.TENANT_TEMPLATE),
            ) from None

    def data_fixtures(
        self,
        tier: str,
        templates: TemplateDirectory,
        *,
        metadata: MetaData,
        batch_size: int,
    ) -> list[DataLoader]:
        """The data fixtures of ``tier`` (each fixture set is read once)."""
        if tier not in self.tiers:
            raise TemplateError(
                f"tenant template has no tier {tier!r}",
                path=templates.resolve(TemplateDirectory.TENANT_TEMPLATE),
            )
        sets: dict[str, FixtureSet] = {}
        loaders: list[DataLoader] = []
        for name in self.tiers[tier]:
            spec = self.fixtures[name]
            if spec.source not in sets:
                source = templates.resolve(
                    spec.source,
                    named_by=TemplateDirectory.TENANT_TEMPLATE,
                    what=f"fixture {name!r} source",
                )
                sets[spec.source] = open_fixture_set(source, metadata=metadata)
            loaders.append(
                LOADERS[spec.loader](
                    sets[spec.source],
                    name=name,
                    tables=spec.tables,
                    metadata=metadata,
                    batch_size=batch_size,
                )
            )
        return loaders


def sort_by_dependencies(loaders: list[DataLoader], metadata: MetaData) -> list[DataLoader]:
    """Loaders ordered so that every table loads after the tables it references.

    A loader goes after every other loader that fills a parent of one of its tables
    (two loaders may fill the same table: a table file and a source format's derived
    rows). Among loaders free to go, the one whose first table comes first goes first.
    Raises :class:`TemplateError` when no order of whole loaders achieves that (one
    loader fills a parent of a table that another fills, and the other way round).
    """
    order = {t.name: i for i, t in enumerate(metadata.sorted_tables)}
    pending = sorted(loaders, key=lambda loader: min(order[t] for t in loader.tables()))
    after = {id(loader): _parent_loaders(loader, pending, metadata) for loader in pending}
    ordered: list[DataLoader] = []
    while pending:
        placed = {id(loader) for loader in ordered}
        ready = next((x for x in pending if all(id(p) in placed for p, _, _ in after[id(x)])), None)
        if ready is None:
            child = pending[0]
            parent, name, table = next(e for e in after[id(child)] if id(e[0]) not in placed)
            raise TemplateError(
                f"fixture {child.name!r} loads {name} before fixture {parent.name!r} loads "
                f"its parent table {table}; "
                "move the tables so each fixture's parents load in earlier fixtures"
            )
        ordered.append(ready)
        pending.remove(ready)
    return ordered


def _parent_loaders(
    loader: DataLoader, loaders: list[DataLoader], metadata: MetaData
) -> list[tuple[DataLoader, str, str]]:
    """The other loaders that fill a parent of one of ``loader``'s tables, each with
    the child table and the parent table."""
    found: list[tuple[DataLoader, str, str]] = []
    for name in loader.tables():
        table = metadata.tables[f"{TENANT_SCHEMA}.{name}"]
        for constraint in table.foreign_key_constraints:
            parent = constraint.referred_table.name
            found.extend(
                (other, name, parent)
                for other in loaders
                if other is not loader and parent in other.tables()
            )
    return found
