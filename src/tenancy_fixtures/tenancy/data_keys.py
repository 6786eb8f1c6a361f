"""Per-tenant data keys: crypto-shredding for credentials and encrypted columns.

Each tenant gets its own Fernet key, made when the tenant is created (or, for a tenant
made before data keys or without a master key, the first time one is needed) and stored
in the control plane wrapped (encrypted) by the master key, ``TENANCY_SECRET_KEY``.
Values declared encrypted in the schema (see :mod:`tenancy_fixtures.store.column_info`)
and AI model credentials are stored encrypted with the tenant's key. Dropping a tenant
deletes its key first, in a transaction of its own: a backup or dump taken before the
drop holds tokens nothing can decrypt any more, even with the master key.

Rotating the master key: put the new key first in ``TENANCY_SECRET_KEY`` (the old ones
after it), run ``tenancy-fixtures keys rewrap``, then drop the old keys (see
:mod:`tenancy_fixtures.tenancy.key_rotation`).

Tokens encrypted with the master key itself (credentials stored before data keys, or
loaded while no master key was set) keep decrypting: a tenant's cipher falls back to the
master keys (lazily, on read). Loading them again, or ``keys rewrap``, stores them under
the tenant's key; until then a backup of them is only as safe as the master key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update

from tenancy_fixtures.errors import ConfigError, SettingsError
from tenancy_fixtures.secret_keys import SecretKey, fernet_for
from tenancy_fixtures.store.column_info import EncryptedKind, encrypted_columns
from tenancy_fixtures.store.control_plane import data_keys_table, utcnow

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet
    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "TenantCipher",
    "data_key_tenants",
    "destroy_data_key",
    "ensure_data_key",
    "has_data_key",
    "master_fernet",
    "rewrap_data_key",
    "row_encrypter",
    "store_data_key",
    "stored_cipher",
    "tenant_cipher",
]


def master_fernet(key: SecretKey | None) -> MultiFernet:
    """The Fernet of the master keys; :class:`SettingsError` when none is set."""
    if key is None:
        raise SettingsError(
            "TENANCY_SECRET_KEY is not set: it wraps each tenant's data key, so it is "
            "needed to encrypt or decrypt tenant data"
        )
    return fernet_for(key)


class TenantCipher:
    """Encrypts with one tenant's data key; decrypts with it, or with the master keys
    (tokens made before the tenant had a key of its own)."""

    def __init__(self, tenant_id: str, data_key: bytes, master: MultiFernet) -> None:
        from cryptography.fernet import Fernet

        self.tenant_id = tenant_id
        #: The tenant's data key (for keys derived from it, fingerprints say).
        self.data_key = data_key
        self._own = Fernet(data_key)
        self._master = master

    def encrypt(self, value: str) -> str:
        """``value`` as a Fernet token of the tenant's key."""
        return self._own.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The value of a token of the tenant's key (or of the master key); raises
        :class:`ConfigError` for any other token."""
        from cryptography.fernet import InvalidToken

        for fernet in (self._own, self._master):
            try:
                return fernet.decrypt(token.encode("ascii")).decode("utf-8")
            except (InvalidToken, UnicodeError):
                continue
        raise ConfigError(
            f"tenant '{self.tenant_id}': the token does not decrypt with its data key "
            "(a token of another tenant, a destroyed key, or a damaged token)",
            key="encrypted",
        )

    def is_own(self, token: str) -> bool:
        """Whether ``token`` is encrypted with the tenant's own key already."""
        from cryptography.fernet import InvalidToken

        try:
            self._own.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True

    def reencrypt(self, token: str) -> str:
        """A token of the tenant's key for the value of ``token`` (of either key)."""
        return token if self.is_own(token) else self.encrypt(self.decrypt(token))

    def value(self, kind: EncryptedKind, value: Any) -> Any:
        """A value of an encrypted column of ``kind`` as it is stored."""
        if value is None:
            return None
        if kind == "value":
            return self.encrypt(value if isinstance(value, str) else str(value))
        if isinstance(value, dict) and isinstance(value.get("encrypted"), str):
            return {**value, "encrypted": self.reencrypt(value["encrypted"])}
        return value


async def ensure_data_key(
    conn: AsyncConnection, tenant_id: str, master_key: SecretKey | None
) -> bytes:
    """The tenant's data key, made and stored (wrapped by the master key) if it has none."""
    from cryptography.fernet import Fernet

    master = master_fernet(master_key)
    found = await conn.execute(
        select(data_keys_table.c.wrapped_key).where(data_keys_table.c.tenant_id == tenant_id)
    )
    wrapped = found.scalar_one_or_none()
    if wrapped is not None:
        return _unwrap(master, tenant_id, wrapped)
    key = Fernet.generate_key()
    await _insert(conn, tenant_id, master, key)
    return key


async def _insert(conn: AsyncConnection, tenant_id: str, master: MultiFernet, key: bytes) -> None:
    now = utcnow()
    await conn.execute(
        insert(data_keys_table).values(
            tenant_id=tenant_id,
            wrapped_key=master.encrypt(key).decode("ascii"),
            created_at=now,
            wrapped_at=now,
        )
    )


def _unwrap(master: MultiFernet, tenant_id: str, wrapped: str) -> bytes:
    from cryptography.fernet import InvalidToken

    try:
        return master.decrypt(wrapped.encode("ascii"))
    except InvalidToken:
        raise SettingsError(
            f"tenant '{tenant_id}': its data key does not unwrap with TENANCY_SECRET_KEY "
            "(keep the old master key after the new one until `keys rewrap` has run)"
        ) from None


async def tenant_cipher(
    conn: AsyncConnection, tenant_id: str, master_key: SecretKey | None
) -> TenantCipher:
    """The cipher of ``tenant_id`` (its data key made now if it has none)."""
    key = await ensure_data_key(conn, tenant_id, master_key)
    return TenantCipher(tenant_id, key, master_fernet(master_key))


async def has_data_key(conn: AsyncConnection, tenant_id: str) -> bool:
    """Whether ``tenant_id`` has a data key (no master key needed to tell)."""
    found = await conn.execute(
        select(data_keys_table.c.tenant_id).where(data_keys_table.c.tenant_id == tenant_id)
    )
    return found.first() is not None


async def destroy_data_key(conn: AsyncConnection, tenant_id: str) -> bool:
    """Delete the tenant's data key; whether it had one. Commit this before removing
    the tenant's storage: from then on its encrypted values are noise."""
    # Looked up first, so a tenant without a key needs no DELETE privilege on the table.
    if not await has_data_key(conn, tenant_id):
        return False
    result = await conn.execute(
        delete(data_keys_table).where(data_keys_table.c.tenant_id == tenant_id)
    )
    return bool(result.rowcount)


async def data_key_tenants(conn: AsyncConnection) -> list[str]:
    """The tenants that have a data key."""
    found = await conn.execute(select(data_keys_table.c.tenant_id))
    return [str(tenant_id) for tenant_id in found.scalars()]


async def stored_cipher(
    conn: AsyncConnection, tenant_id: str, master_key: SecretKey | None
) -> TenantCipher:
    """The tenant's cipher, writing nothing: of its stored data key or, for a tenant
    without one, of a new key that is not stored (see :func:`store_data_key`), which
    decrypts only master-key tokens until it is."""
    from cryptography.fernet import Fernet

    master = master_fernet(master_key)
    found = await conn.execute(
        select(data_keys_table.c.wrapped_key).where(data_keys_table.c.tenant_id == tenant_id)
    )
    wrapped = found.scalar_one_or_none()
    key = Fernet.generate_key() if wrapped is None else _unwrap(master, tenant_id, wrapped)
    return TenantCipher(tenant_id, key, master)


async def rewrap_data_key(
    conn: AsyncConnection, tenant_id: str, master_key: SecretKey | None
) -> TenantCipher:
    """Re-wrap the tenant's data key with the first master key (after a rotation);
    returns its cipher (:func:`stored_cipher`: a key not stored for a tenant without
    one, which only a tenant with tokens to re-encrypt needs)."""
    cipher = await stored_cipher(conn, tenant_id, master_key)
    wrapped = master_fernet(master_key).encrypt(cipher.data_key).decode("ascii")
    await conn.execute(
        update(data_keys_table)
        .where(data_keys_table.c.tenant_id == tenant_id)
        .values(wrapped_key=wrapped, wrapped_at=utcnow())
    )
    return cipher


async def store_data_key(
    conn: AsyncConnection, cipher: TenantCipher, master_key: SecretKey | None
) -> None:
    """Store the data key of ``cipher``, from :func:`rewrap_data_key` for a tenant that
    had none, wrapped by the first master key (a key stored meanwhile makes the insert,
    and so the transaction, fail: nothing is left under a key that is not kept)."""
    await _insert(conn, cipher.tenant_id, master_fernet(master_key), cipher.data_key)


def row_encrypter(
    table: Table, cipher: TenantCipher
) -> Callable[[Sequence[tuple[Any, ...]]], Sequence[tuple[Any, ...]]] | None:
    """A function that encrypts the encrypted columns of a batch of ``table``'s rows;
    ``None`` when the table declares none."""
    positions = encrypted_columns(table)
    if not positions:
        return None

    def encrypt(rows: Sequence[tuple[Any, ...]]) -> Sequence[tuple[Any, ...]]:
        out = []
        for row in rows:
            values = list(row)
            for position, kind in positions.items():
                values[position] = cipher.value(kind, values[position])
            out.append(tuple(values))
        return out

    return encrypt
