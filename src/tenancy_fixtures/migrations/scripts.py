"""A tenant schema's revision history: an Alembic ``versions/`` directory.

The history is linear (one head, no merges), and its first revision creates the
schema as it was when the history began; tenants registered before any history was
kept are taken to be at that first revision. Only the revision files are read:
an ``env.py`` beside them is not run, because the runner supplies each tenant's
connection itself.
"""

from __future__ import annotations

import ast
import re
import traceback
import warnings
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from tenancy_fixtures.errors import MigrationError, SettingsError, UnknownRevisionError
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.store.control_plane import REVISION_LENGTH

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

__all__ = ["BUILTIN_MIGRATIONS", "MigrationScripts", "Step", "migration_scripts"]

#: The built-in Spotify domain's history, used with the built-in schema.
BUILTIN_MIGRATIONS = "tenancy_fixtures.spotify:migrations"
_BUILTIN_METADATA = "tenancy_fixtures.spotify:builtin_metadata"
#: ``+N``/``-N`` in ASCII digits (``\d`` takes any script's, and ``$`` a final newline).
_RELATIVE = re.compile(r"([+-])([0-9]+)")
_LOCATIONS: dict[str, MigrationScripts] = {}


@dataclass(frozen=True)
class Step:
    """One revision applied in one direction: ``revision``'s ``upgrade()`` going up,
    its ``downgrade()`` going down (to ``down_revision``)."""

    revision: str
    down_revision: str | None
    direction: Literal["upgrade", "downgrade"]
    module: ModuleType
    doc: str

    @property
    def target(self) -> str | None:
        """The revision the tenant is at after this step."""
        return self.revision if self.direction == "upgrade" else self.down_revision


def migration_scripts(
    settings: Settings, *, metadata_given: bool, location: str | Path | None = None
) -> MigrationScripts | None:
    """The history for this schema: ``location`` (a ``FixtureManager`` argument), else
    the ``migrations`` setting, else the built-in one when the schema is the built-in
    one; ``None`` for a schema of the user's without a history."""
    chosen = str(location) if location is not None else settings.migrations
    if chosen is None and not metadata_given and settings.metadata == _BUILTIN_METADATA:
        chosen = BUILTIN_MIGRATIONS
    if chosen is None:
        return None
    if chosen not in _LOCATIONS:
        try:
            _LOCATIONS[chosen] = MigrationScripts(chosen)
        except MigrationError as exc:
            if location is not None:
                raise
            # From the setting: a value to correct, as any other (exit 2, not 9).
            raise SettingsError(f"invalid settings: TENANCY_MIGRATIONS: {exc}") from None
    return _LOCATIONS[chosen]


def _directory(location: str) -> Path:
    """``package.module:folder`` inside an installed package, or a filesystem path."""
    package, sep, folder = location.partition(":")
    if sep and re.fullmatch(r"[A-Za-z_][\w.]*", package):
        try:
            root = resources.files(package)
        except ModuleNotFoundError as exc:
            raise MigrationError(f"migrations {location}: {exc}") from None
        path = Path(str(root.joinpath(folder)))
    else:
        path = Path(location)
    if not (path / "versions").is_dir():
        raise MigrationError(
            f"migrations {location}: {path} holds no versions/ directory of Alembic revisions"
        )
    return path


def _count(digits: str) -> int:
    """The steps ``+N``/``-N`` give: past either end of any history when they are more
    than nine digits (``int()`` refuses thousands of them with a ValueError)."""
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= 9 else 10**9


#: A top-level ``revision = "..."`` or ``down_revision: str | None = ...`` line.
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


def _declared(source: str) -> tuple[str, str | None] | None:
    """A revision file's id and its parent, when each is assigned once, as a literal."""
    found: dict[str, list[str]] = {"revision": [], "down_revision": []}
    for name, value in _ASSIGNMENT.findall(source):
        found[name].append(value)
    if len(found["revision"]) != 1 or len(found["down_revision"]) != 1:
        return None
    try:
        revision = ast.literal_eval(found["revision"][0])
        down = ast.literal_eval(found["down_revision"][0])
    except (ValueError, SyntaxError):
        return None
    if not isinstance(revision, str) or not (down is None or isinstance(down, str)):
        return None
    return revision, down


def _declared_chain(directory: Path, location: str) -> list[str] | None:
    """The linear chain the revision files declare with literals, or ``None`` when a
    file declares otherwise or the files do not form one chain (Alembic decides). Two
    files of one revision id, or a ``down_revision`` no file declares, is a
    :class:`MigrationError` naming the files."""
    down_of: dict[str, str | None] = {}
    file_of: dict[str, Path] = {}
    for path in sorted((directory / "versions").glob("*.py")):
        try:
            declared = _declared(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if declared is None:
            return None
        _refuse_long_id(declared[0], path, location)
        if declared[0] in file_of:
            raise MigrationError(
                f"migrations {location}: {file_of[declared[0]]} and {path} both declare "
                f"revision {declared[0]!r}; give each revision its own id"
            )
        down_of[declared[0]], file_of[declared[0]] = declared[1], path
    for revision, down in down_of.items():
        if down is not None and down not in down_of:
            raise MigrationError(
                f"migrations {location}: {file_of[revision]} (revision {revision!r}) has "
                f"down_revision {down!r}, which no revision file declares"
            )
    next_of = {down: rev for rev, down in down_of.items()}
    if len(next_of) != len(down_of) or None not in next_of:
        return None
    chain: list[str] = []
    current: str | None = None
    while current in next_of:
        current = next_of[current]
        chain.append(current)
    return chain if len(chain) == len(down_of) else None


def _refuse_long_id(revision: str, path: Path | str, location: str) -> None:
    """A :class:`MigrationError` naming the file, for a revision id longer than the
    migration ledger records (PostgreSQL refused it as each tenant was created or
    migrated, after the revision had run; SQLite kept it whole)."""
    if len(revision) > REVISION_LENGTH:
        raise MigrationError(
            f"migrations {location}: {path} declares revision {revision!r}, "
            f"{len(revision)} characters; the migration ledger records ids of at most "
            f"{REVISION_LENGTH}: give it a shorter one"
        )


def _fault(exc: Exception, directory: Path) -> str:
    """What is wrong with a history Alembic could not read, naming the revision file at
    fault when the error arose in one (a syntax error, an exception at import)."""
    versions = directory / "versions"
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}, line {exc.lineno}: {type(exc).__name__}: {exc.msg}"
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if Path(f.filename).parent == versions]
    where = f"{inside[-1].filename}, line {inside[-1].lineno}: " if inside else f"{versions}: "
    if type(exc).__module__.startswith("alembic") or isinstance(exc, UserWarning):
        return f"{where}{exc}"
    return f"{where}{type(exc).__name__}: {exc}"


class MigrationScripts:
    """The revisions of one history, read once (Alembic is imported on first use)."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.directory = _directory(location)

    @cached_property
    def _script(self) -> ScriptDirectory:
        from alembic.script import ScriptDirectory

        return ScriptDirectory(str(self.directory))

    @cached_property
    def chain(self) -> list[str]:
        """Every revision id, first to head.

        Read from the files' literal ``revision``/``down_revision`` assignments when
        they have them: creating or loading a tenant only needs the head, and that
        costs ~1 ms instead of ~150 ms for importing Alembic and every revision module.
        Alembic's own reading decides otherwise, and is checked against this one
        before anything runs.
        """
        declared = _declared_chain(self.directory, self.location)
        return declared if declared is not None else self._alembic_chain

    @cached_property
    def _alembic_chain(self) -> list[str]:
        with warnings.catch_warnings():
            # Alembic warns of a revision present twice or a down_revision missing,
            # then goes on to fail (or not) on it: either is an unusable history.
            warnings.filterwarnings("error", category=UserWarning, module=r"alembic\.")
            try:
                revisions = list(self._script.walk_revisions())
                heads = self._script.get_heads()
            except Exception as exc:  # a revision file's import may raise anything
                raise MigrationError(
                    f"migrations {self.location}: {_fault(exc, self.directory)}"
                ) from None
        if len(heads) > 1:
            raise MigrationError(
                f"migrations {self.location}: several heads ({', '.join(sorted(heads))}); "
                "tenant histories must be linear: merge them"
            )
        if not revisions:
            raise MigrationError(f"migrations {self.location}: no revisions")
        for script in revisions:
            _refuse_long_id(script.revision, script.path, self.location)
            if isinstance(script.down_revision, tuple | list):
                raise MigrationError(
                    f"migrations {self.location}: revision {script.revision} merges "
                    "branches; tenant histories must be linear"
                )
        return [r.revision for r in reversed(revisions)]

    @property
    def head(self) -> str:
        """The newest revision: what new tenants are created at."""
        return self.chain[-1]

    @property
    def base(self) -> str:
        """The first revision: the schema as it was when the history began."""
        return self.chain[0]

    def resolve(self, target: str, current: str | None = None) -> str:
        """The revision id ``target`` names: ``head``, ``base`` (the first revision), an id
        (which wins over being a prefix of others, as in Alembic) or a unique prefix of
        one, or ``+N``/``-N`` counted from ``current``."""
        chain = self.chain
        if target == "head":
            return chain[-1]
        if target == "base":
            return chain[0]
        if target in chain:
            return target
        relative = _RELATIVE.fullmatch(target)
        if relative:
            at = self._recorded(current)
            moved = at + _count(relative[2]) * (1 if relative[1] == "+" else -1)
            if not 0 <= moved < len(chain):
                shown = target if len(target) <= 24 else f"{target[:20]}..."
                raise UnknownRevisionError(
                    f"{shown} from {current or self.base} leaves the history "
                    f"({chain[0]} .. {chain[-1]})",
                    revisions=chain,
                )
            return chain[moved]
        found = [rev for rev in chain if rev.startswith(target)] if target else []
        if len(found) != 1:
            reason = "no revision" if not found else f"{len(found)} revisions"
            raise UnknownRevisionError(
                f"{reason} of {self.location} match {target!r}: give one of "
                f"{', '.join(chain)} (or a unique prefix), head, base, +N or -N",
                revisions=chain,
            )
        return found[0]

    def _recorded(self, current: str | None) -> int:
        """Where a tenant's recorded revision (``None``: the first) stands in the history;
        one the history lacks (recorded by a newer release, say) is the tenant's state,
        a :class:`MigrationError`, not the caller's input."""
        revision = current or self.base
        if revision not in self.chain:
            raise MigrationError(
                f"the recorded revision {revision!r} is not in the history of "
                f"{self.location} (head is {self.chain[-1]}): was it migrated by a newer release?"
            )
        return self.chain.index(revision)

    def check(self, target: str) -> None:
        """Refuse ``target`` before any tenant is read when it can name no revision
        whatever a tenant's current one (``+N``/``-N`` depend on it: checked per tenant)."""
        if not _RELATIVE.fullmatch(target):
            self.resolve(target)

    def steps(self, current: str | None, target: str) -> list[Step]:
        """The steps from ``current`` (``None``: the first revision) to ``target``."""
        chain = self.chain
        start = self._recorded(current)
        end = chain.index(target)
        if end >= start:
            return [self._step(rev, "upgrade") for rev in chain[start + 1 : end + 1]]
        return [self._step(rev, "downgrade") for rev in reversed(chain[end + 1 : start + 1])]

    def from_empty(self, target: str) -> list[Step]:
        """The steps that build the schema at ``target`` in an empty schema."""
        return [self._step(self.base, "upgrade"), *self.steps(self.base, target)]

    def _step(self, revision: str, direction: Literal["upgrade", "downgrade"]) -> Step:
        if self._alembic_chain != self.chain:
            raise MigrationError(
                f"migrations {self.location}: Alembic reads the history as "
                f"{' -> '.join(self._alembic_chain)}, the files' assignments as "
                f"{' -> '.join(self.chain)}"
            )
        script = self._script.get_revision(revision)
        assert script is not None
        down = script.down_revision
        return Step(
            revision,
            down if isinstance(down, str) else None,
            direction,
            script.module,
            (script.doc or "").strip(),
        )
