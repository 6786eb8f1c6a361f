"""CollaborationLoader: shared workspaces, their members, playlists and comments.

The rules of a workspace are checked in SQL after its rows are written, inside the
load's transaction, so a refusal leaves nothing behind:

- owners, members, playlist adders and comment authors are users of the same tenant;
- every workspace keeps an owner: a member with role ``owner``, its ``owner_id`` among
  them;
- playlists are added to a workspace by its owners and editors; comments are written
  by its members, about playlists shared in it.

Each refusal is a typed error naming the first offending row, pointed at its file
and line when the row came from this load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Table, and_, exists, not_, select

from tenancy_fixtures.errors import FixtureError, IntegrityViolationError, RecordError
from tenancy_fixtures.fixtures.context import LoadContext
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.loading.fixture_sets import FixtureFile
from tenancy_fixtures.loading.readers import iter_records
from tenancy_fixtures.loading.sources import RowSink, SourceFormat
from tenancy_fixtures.spotify.schema import is_spotify_table
from tenancy_fixtures.store.base import TENANT_SCHEMA, TenantSession

__all__ = ["CollaborationLoader", "WorkspacesFormat", "check_collaboration"]

#: Columns that name a user, per table, and the workspace column beside them.
_USER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("workspaces", "owner_id"),
    ("workspace_members", "user_id"),
    ("workspace_playlists", "added_by"),
    ("comments", "author_id"),
)
_EDITING_ROLES = ("owner", "editor")


@dataclass(frozen=True)
class _Offence:
    """The first row that breaks a rule: how to say it and how to find it."""

    message: str
    table: str
    column: str
    rule: str
    key: dict[str, str]


def _table(session: TenantSession, name: str) -> Table:
    return session.metadata.tables[f"{TENANT_SCHEMA}.{name}"]


async def _first(session: TenantSession, query: Select[Any]) -> Sequence[Any] | None:
    row: Sequence[Any] | None = (await session.connection.execute(query.limit(1))).first()
    return row


async def _not_a_user(session: TenantSession) -> _Offence | None:
    users = _table(session, "users")
    for name, column in _USER_COLUMNS:
        table = _table(session, name)
        value = table.c[column]
        query = (
            select(table.c.workspace_id, value)
            .where(value.is_not(None), not_(exists().where(users.c.user_id == value)))
            .order_by(table.c.workspace_id, value)
        )
        found = await _first(session, query)
        if found is not None:
            workspace, user = found
            return _Offence(
                f"{column} {user!r} of workspace {workspace!r} is not a user of tenant "
                f"'{session.tenant_id}': workspace owners, members, playlist adders and "
                "comment authors must be users of the same tenant",
                name,
                column,
                "collaboration:not_a_user",
                {"workspace_id": str(workspace), column: str(user)},
            )
    return None


async def _without_owner(session: TenantSession) -> _Offence | None:
    workspaces = _table(session, "workspaces")
    members = _table(session, "workspace_members")
    owners = and_(members.c.workspace_id == workspaces.c.workspace_id, members.c.role == "owner")
    found = await _first(
        session,
        select(workspaces.c.workspace_id)
        .where(not_(exists().where(owners)))
        .order_by(workspaces.c.workspace_id),
    )
    if found is not None:
        return _Offence(
            f"workspace {found[0]!r} has no owner: a workspace always keeps at least one "
            "member with role 'owner'",
            "workspaces",
            "workspace_id",
            "collaboration:owner_required",
            {"workspace_id": str(found[0])},
        )
    found = await _first(
        session,
        select(workspaces.c.workspace_id, workspaces.c.owner_id)
        .where(not_(exists().where(owners, members.c.user_id == workspaces.c.owner_id)))
        .order_by(workspaces.c.workspace_id),
    )
    if found is not None:
        return _Offence(
            f"workspace {found[0]!r}: owner_id {found[1]!r} is not one of its members with "
            "role 'owner'",
            "workspaces",
            "owner_id",
            "collaboration:owner_not_member",
            {"workspace_id": str(found[0])},
        )
    return None


async def _adder_not_editor(session: TenantSession) -> _Offence | None:
    """A playlist added to a workspace by someone not among its owners and editors."""
    members = _table(session, "workspace_members")
    shared = _table(session, "workspace_playlists")
    found = await _first(
        session,
        select(shared.c.workspace_id, shared.c.playlist_id, shared.c.added_by, members.c.role)
        .outerjoin(
            members,
            and_(
                members.c.workspace_id == shared.c.workspace_id,
                members.c.user_id == shared.c.added_by,
            ),
        )
        .where(members.c.role.is_(None) | members.c.role.not_in(_EDITING_ROLES))
        .order_by(shared.c.workspace_id, shared.c.playlist_id),
    )
    if found is not None:
        workspace, playlist, user, role = found
        why = "is not a member" if role is None else f"is a {role}"
        return _Offence(
            f"playlist {playlist!r} added to workspace {workspace!r} by {user!r}, who {why} "
            "of it: only its owners and editors add playlists",
            "workspace_playlists",
            "added_by",
            "collaboration:adder_not_editor",
            {"workspace_id": str(workspace), "playlist_id": str(playlist)},
        )
    return None


async def _author_not_member(session: TenantSession) -> _Offence | None:
    """A comment written by someone not a member of its workspace."""
    members = _table(session, "workspace_members")
    comments = _table(session, "comments")
    found = await _first(
        session,
        select(comments.c.comment_id, comments.c.workspace_id, comments.c.author_id)
        .where(
            not_(
                exists().where(
                    members.c.workspace_id == comments.c.workspace_id,
                    members.c.user_id == comments.c.author_id,
                )
            )
        )
        .order_by(comments.c.comment_id),
    )
    if found is not None:
        comment, workspace, user = found
        return _Offence(
            f"comment {comment!r} in workspace {workspace!r} is by {user!r}, who is not a "
            "member of it: only members comment",
            "comments",
            "author_id",
            "collaboration:author_not_member",
            {"comment_id": str(comment)},
        )
    return None


async def _playlist_not_shared(session: TenantSession) -> _Offence | None:
    """A comment about a playlist that is not shared in the comment's workspace."""
    shared = _table(session, "workspace_playlists")
    comments = _table(session, "comments")
    found = await _first(
        session,
        select(comments.c.comment_id, comments.c.workspace_id, comments.c.playlist_id)
        .where(
            comments.c.playlist_id.is_not(None),
            not_(
                exists().where(
                    shared.c.workspace_id == comments.c.workspace_id,
                    shared.c.playlist_id == comments.c.playlist_id,
                )
            ),
        )
        .order_by(comments.c.comment_id),
    )
    if found is not None:
        comment, workspace, playlist = found
        return _Offence(
            f"comment {comment!r} is about playlist {playlist!r}, which is not shared in "
            f"workspace {workspace!r}",
            "comments",
            "playlist_id",
            "collaboration:playlist_not_shared",
            {"comment_id": str(comment)},
        )
    return None


def _locate(error: FixtureError, files: Sequence[FixtureFile], key: Mapping[str, str]) -> None:
    """Point ``error`` at the first record of its table's files with ``key``."""
    for file in files:
        if file.table != error.table:
            continue
        for record in iter_records(file):
            values = record.values
            if all(str(values.get(column)) == value for column, value in key.items()):
                error.path = file.relative
                error.line = record.line
                error.record = None if record.line is not None else record.record
                return


#: What :func:`check_collaboration` checks, said for people.
COLLABORATION_RULES = (
    "the workspace rules over the tenant's rows (an owner per workspace, members, editors)"
)


async def check_collaboration(session: TenantSession, files: Sequence[FixtureFile] = ()) -> None:
    """Check the workspace rules over the tenant's collaboration tables; raise a typed
    error naming the first offending row (located in ``files`` when it is there)."""
    for check in (
        _not_a_user,
        _without_owner,
        _adder_not_editor,
        _author_not_member,
        _playlist_not_shared,
    ):
        offence = await check(session)
        if offence is None:
            continue
        error: FixtureError
        if offence.rule == "collaboration:not_a_user":
            error = IntegrityViolationError(
                offence.message,
                constraint=f"fk_{offence.table}_{offence.column}_users",
                tenant_id=session.tenant_id,
                table=offence.table,
                key=offence.key,
            )
        else:
            error = RecordError(
                offence.message,
                tenant_id=session.tenant_id,
                table=offence.table,
                column=offence.column,
                rule=offence.rule,
            )
        if files:
            await asyncio.to_thread(_locate, error, files, offence.key)
        raise error


def _user_references(table: Table) -> dict[str, str]:
    """Foreign-key constraint name -> column, for the columns of ``table`` naming users."""
    return {
        str(fk.name): fk.column_keys[0]
        for fk in table.foreign_key_constraints
        if fk.referred_table.name == "users" and fk.name is not None
    }


class CollaborationLoader(DataLoader):
    """Loads workspaces, members with roles (owner, editor, viewer), the playlists
    shared in them with who added each, and comments; then checks the workspace rules."""

    loader_name = "collaboration"
    domain_tables = frozenset(
        {"workspaces", "workspace_members", "workspace_playlists", "comments"}
    )
    #: The workspace rules hold for these tables whichever loader was given their files.
    guards_tables = True

    @classmethod
    def guards_table(cls, table: Table) -> bool:
        return super().guards_table(table) and is_spotify_table(table)

    def tenant_checks(self) -> list[str]:
        return [COLLABORATION_RULES]

    async def apply(self, session: TenantSession, context: LoadContext) -> Mapping[str, int]:
        """Write the rows, then check the rules; a refusal rolls the load back."""
        try:
            counts = await super().apply(session, context)
        except IntegrityViolationError as exc:
            _explain_user_reference(session, exc)
            raise
        await check_collaboration(session, self.files)
        return counts


def _explain_user_reference(session: TenantSession, error: IntegrityViolationError) -> None:
    """Say, for a foreign key to ``users`` refused by the database, that the user must
    belong to the same tenant."""
    if error.table is None or error.constraint is None:
        return
    table = session.metadata.tables.get(f"{TENANT_SCHEMA}.{error.table}")
    column = _user_references(table).get(error.constraint) if table is not None else None
    if column is None:
        return
    value = (error.key or {}).get(column)
    who = f"{column} {value!r}" if value is not None else f"a {column}"
    error.message = (
        f"{who} is not a user of tenant '{session.tenant_id}': workspace owners, members, "
        f"playlist adders and comment authors must be users of the same tenant ({error.message})"
    )


_ROLES = ("owner", "editor", "viewer")
_PLAYLIST_URI = "spotify:playlist:"


def _playlist_id(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_PLAYLIST_URI):
        return value.removeprefix(_PLAYLIST_URI)
    return value


class WorkspacesFormat(SourceFormat):
    """``collaboration``: workspace documents with their members, playlists and comments
    nested (a list of them, or ``{"workspaces": [...]}``)::

        {"workspace_id": "w1", "name": "Studio", "owner_id": "u1",
         "created_at": "2026-02-01T00:00:00+00:00",
         "members": [{"user_id": "u1", "role": "owner", "joined_at": "..."}],
         "playlists": [{"playlist_id": "spotify:playlist:...", "added_by": "u1",
                        "added_at": "..."}],
         "comments": [{"comment_id": "c1", "author_id": "u1", "playlist_id": null,
                       "body": "Welcome", "created_at": "..."}]}

    The workspace rules are checked within each document (an owner member, ``owner_id``
    one of the owners, playlists added by owners and editors, comments by members about
    the workspace's playlists); missing ``joined_at``/``added_at`` default to the
    workspace's ``created_at``, a missing ``owner_id`` to its first owner.
    """

    name = "collaboration"
    loader = "collaboration"
    tables = frozenset({"workspaces", "workspace_members", "workspace_playlists", "comments"})
    stream = "workspaces.item"
    tenant_checks = (COLLABORATION_RULES,)

    @classmethod
    def sniff(cls, document: Any) -> bool:
        return (
            isinstance(document, dict)
            and "workspace_id" in document
            and isinstance(document.get("members"), list)
        )

    async def after_load(self, session: TenantSession, files: Sequence[FixtureFile]) -> None:
        """The workspace rules over the tenant's rows, as for table files."""
        await check_collaboration(session, files)

    def record_table(self, document: Any) -> str | None:
        del document
        return "workspaces"

    def normalize(self, document: Any, sink: RowSink) -> None:
        if not isinstance(document, dict):
            raise sink.refuse(
                f"expected a workspace object, found {type(document).__name__}",
                rule="format:workspace",
            )
        workspace, created = document.get("workspace_id"), document.get("created_at")
        if not isinstance(workspace, str) or not workspace:
            raise sink.refuse("workspace_id is missing", column="workspace_id", rule="not_null")
        if not isinstance(created, str) or not created:
            raise sink.refuse("created_at is missing", column="created_at", rule="not_null")
        members = self._members(document, sink, workspace)
        roles = {user: role for user, (role, _) in members.items()}
        owners = [user for user, role in roles.items() if role == "owner"]
        if not owners:
            raise sink.refuse(
                f"workspace {workspace!r} has no owner: a workspace always keeps at least "
                "one member with role 'owner'",
                column="members",
                rule="collaboration:owner_required",
            )
        owner = document.get("owner_id") or owners[0]
        if owner not in owners:
            raise sink.refuse(
                f"workspace {workspace!r}: owner_id {owner!r} is not one of its members "
                "with role 'owner'",
                column="owner_id",
                rule="collaboration:owner_not_member",
            )
        sink.add(
            "workspaces",
            {
                "workspace_id": workspace,
                "name": document.get("name") or workspace,
                "owner_id": owner,
                "created_at": created,
            },
        )
        for user, (role, joined) in members.items():
            sink.add(
                "workspace_members",
                {
                    "workspace_id": workspace,
                    "user_id": user,
                    "role": role,
                    "joined_at": joined or created,
                },
            )
        shared = self._playlists(document, sink, workspace, created, roles)
        self._comments(document, sink, workspace, roles, shared)

    def _items(self, document: dict[str, Any], key: str, sink: RowSink) -> list[dict[str, Any]]:
        items = document.get(key) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise sink.refuse(
                f"{key} must be a list of objects", column=key, rule="format:workspace"
            )
        return items

    def _members(
        self, document: dict[str, Any], sink: RowSink, workspace: str
    ) -> dict[str, tuple[str, Any]]:
        """User -> (role, joined_at as given)."""
        members: dict[str, tuple[str, Any]] = {}
        for member in self._items(document, "members", sink):
            user, role = member.get("user_id"), member.get("role")
            if not isinstance(user, str) or not user:
                raise sink.refuse(
                    "a member has no user_id", column="members", rule="format:workspace"
                )
            if role not in _ROLES:
                raise sink.refuse(
                    f"member {user!r} has role {role!r}; roles are {', '.join(_ROLES)}",
                    column="members",
                    rule="check:role",
                )
            if user in members:
                raise sink.refuse(
                    f"user {user!r} is a member of workspace {workspace!r} twice",
                    column="members",
                    rule="collaboration:duplicate_member",
                )
            members[user] = (role, member.get("joined_at"))
        return members

    def _playlists(
        self,
        document: dict[str, Any],
        sink: RowSink,
        workspace: str,
        created: str,
        roles: Mapping[str, str],
    ) -> set[str]:
        shared: set[str] = set()
        for entry in self._items(document, "playlists", sink):
            playlist, adder = _playlist_id(entry.get("playlist_id")), entry.get("added_by")
            if not isinstance(playlist, str) or not playlist:
                raise sink.refuse(
                    "a playlist has no playlist_id", column="playlists", rule="format:workspace"
                )
            if roles.get(str(adder)) not in _EDITING_ROLES:
                why = "is not a member" if adder not in roles else f"is a {roles[str(adder)]}"
                raise sink.refuse(
                    f"playlist {playlist!r} added to workspace {workspace!r} by {adder!r}, "
                    f"who {why} of it: only its owners and editors add playlists",
                    column="playlists",
                    rule="collaboration:adder_not_editor",
                )
            shared.add(playlist)
            sink.add(
                "workspace_playlists",
                {
                    "workspace_id": workspace,
                    "playlist_id": playlist,
                    "added_by": adder,
                    "added_at": entry.get("added_at") or created,
                },
            )
        return shared

    def _comments(
        self,
        document: dict[str, Any],
        sink: RowSink,
        workspace: str,
        roles: Mapping[str, str],
        shared: set[str],
    ) -> None:
        for comment in self._items(document, "comments", sink):
            comment_id, author = comment.get("comment_id"), comment.get("author_id")
            playlist = _playlist_id(comment.get("playlist_id"))
            if author not in roles:
                raise sink.refuse(
                    f"comment {comment_id!r} in workspace {workspace!r} is by {author!r}, who "
                    "is not a member of it: only members comment",
                    column="comments",
                    rule="collaboration:author_not_member",
                )
            if playlist is not None and playlist not in shared:
                raise sink.refuse(
                    f"comment {comment_id!r} is about playlist {playlist!r}, which is not "
                    f"shared in workspace {workspace!r}",
                    column="comments",
                    rule="collaboration:playlist_not_shared",
                )
            sink.add(
                "comments",
                {
                    "comment_id": comment_id,
                    "workspace_id": workspace,
                    "playlist_id": playlist,
                    "author_id": author,
                    "body": comment.get("body"),
                    "created_at": comment.get("created_at"),
                },
            )
