"""Fernet keys for ``TENANCY_SECRET_KEY``: parsing one key or several, making a new one.

Settings check the key when they are read, and credentials encrypt and decrypt with
it; both need the parsing, so it lives below both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

# cryptography is imported where a key is used: it adds about 8 MB to every process,
# parse workers included, that never touches a credential.

__all__ = ["SecretKey", "fernet_for", "generate_secret_key"]

SecretKey = str | bytes | SecretStr


def _key_text(key: SecretKey) -> str:
    if isinstance(key, SecretStr):
        return key.get_secret_value()
    return key.decode("ascii", "replace") if isinstance(key, bytes) else key


def fernet_for(key: SecretKey) -> MultiFernet:
    """The Fernet for one key, or for several separated by commas (the first encrypts,
    any decrypts: rotate by putting the new key first). Raises :class:`ValueError`
    that does not show the key."""
    from cryptography.fernet import Fernet, MultiFernet

    keys = [k.strip() for k in _key_text(key).split(",") if k.strip()]
    if not keys:
        raise ValueError("no Fernet key given")
    fernets = []
    for position, text in enumerate(keys, 1):
        try:
            fernets.append(Fernet(text.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            raise ValueError(
                f"key {position} is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with tenancy_fixtures.tenancy.credentials.generate_secret_key())"
            ) from None
    return MultiFernet(fernets)


def generate_secret_key() -> str:
    """A new random Fernet key, for ``TENANCY_SECRET_KEY``."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")
