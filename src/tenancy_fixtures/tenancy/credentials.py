"""AI model credentials: fixtures hold references to secrets, never the secrets.

A model config's ``credentials`` is one of::

    {"env": "OPENAI_API_KEY"}        an environment variable of the application
    {"secret": "prod/openai/api"}    a name in the application's secret manager
    {"encrypted": "gAAAAAB..."}      the key encrypted with TENANCY_SECRET_KEY (Fernet);
                                     stored re-encrypted with the tenant's data key

Anything else that could carry a key (a bare string, ``{"api_key": ...}``, a
parameter that looks like a key) is refused by :func:`check_credentials` and
:func:`find_plain_secret`, and no message here ever repeats the value it refused.
:func:`resolve_credential` turns a reference back into the key, for the application.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from tenancy_fixtures.errors import ConfigError, SettingsError
from tenancy_fixtures.secret_keys import SecretKey, fernet_for, generate_secret_key
from tenancy_fixtures.settings import Settings

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

    from tenancy_fixtures.tenancy.data_keys import TenantCipher

__all__ = [
    "CredentialKind",
    "CredentialRefused",
    "SecretKey",
    "check_credentials",
    "decrypt_credential",
    "encrypt_credential",
    "fernet_for",
    "find_plain_secret",
    "generate_secret_key",
    "looks_like_secret",
    "resolve_credential",
]

CredentialKind = Literal["env", "secret", "encrypted"]

#: Rules a refused credential breaks (``RecordError.rule``).
PLAIN_TEXT = "credentials:plain_text"
MALFORMED = "credentials:reference"
UNDECRYPTABLE = "credentials:undecryptable"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@:-]{1,512}")
_FERNET_TOKEN = re.compile(r"[A-Za-z0-9_-]+=*")
# Well-known key shapes: OpenAI/Anthropic/Stripe style prefixes, AWS access key ids,
# Google API keys, GitHub, GitLab, Slack, Hugging Face, Replicate and Groq tokens.
_KNOWN_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"(?:sk|rk|pk)[-_](?:live_|test_|proj-|ant-|or-)?[A-Za-z0-9_-]{16,}"
    r"|A(?:KIA|SIA)[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|hf_[A-Za-z0-9]{30,}|r8_[A-Za-z0-9]{30,}|gsk_[A-Za-z0-9]{40,}"
    r")"
)
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/=_.-]+")
_HEX = re.compile(r"[0-9a-fA-F]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_MIN_TOKEN = 32
#: Parameter and field names whose value is a secret whatever it looks like.
_SECRET_FIELDS = frozenset(
    {
        "access_key",
        "access_token",
        "api_key",
        "apikey",
        "api_token",
        "auth_token",
        "authorization",
        "bearer",
        "client_secret",
        "password",
        "private_key",
        "secret_access_key",
        "secret_key",
        "token",
    }
)


class CredentialRefused(ValueError):
    """A credential or config value refused; ``rule`` says why. The message never
    contains the refused value."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


def _entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def looks_like_secret(text: str, *, known_shapes_only: bool = False) -> bool:
    """Whether ``text`` holds something shaped like an API key or access token: a
    well-known key prefix (``sk-``, ``AKIA``, ``ghp_``...) or, unless
    ``known_shapes_only``, a long random token."""
    if _KNOWN_KEY.search(text):
        return True
    if known_shapes_only:
        return False
    for word in text.split():
        for token in re.split(r"[:,;]", word):
            if len(token) < _MIN_TOKEN or _UUID.fullmatch(token):
                continue
            if not _TOKEN_CHARS.fullmatch(token):
                continue
            has_digit = any(c.isdigit() for c in token)
            has_alpha = any(c.isalpha() for c in token)
            if not (has_digit and has_alpha):
                continue
            # Random hex carries at most 4 bits a character, base62/64 up to 6.
            threshold = 3.0 if _HEX.fullmatch(token) else 4.3
            if _entropy(token) >= threshold:
                return True
    return False


def find_plain_secret(value: Any, *, at: str = "") -> str | None:
    """Where in ``value`` (nested dicts and lists) a plain secret sits, e.g.
    ``"parameters.api_key"``; ``None`` when there is none."""
    if isinstance(value, str):
        return (at or "value") if looks_like_secret(value) else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{at}.{key}" if at else str(key)
            if str(key).lower() in _SECRET_FIELDS and item not in (None, ""):
                return where
            found = find_plain_secret(item, at=where)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_plain_secret(item, at=f"{at}[{index}]")
            if found is not None:
                return found
    return None


def check_credentials(value: Any) -> tuple[CredentialKind, str] | None:
    """The reference a ``credentials`` value holds, as ``(kind, name or token)``;
    ``None`` for no credentials. Raises :class:`CredentialRefused` for a plain key
    (rule ``credentials:plain_text``) or a malformed reference."""
    if value is None:
        return None
    kind = _reference_kind(value)
    reference = value[kind]
    _check_reference(kind, reference)
    return kind, reference


def _reference_kind(value: Any) -> CredentialKind:
    """Which one reference a ``credentials`` value holds; refuses any other shape."""
    if isinstance(value, str):
        raise CredentialRefused(
            "credentials must be a reference ({'env': NAME}, {'secret': NAME} or "
            "{'encrypted': TOKEN}), not a plain value",
            PLAIN_TEXT,
        )
    if not isinstance(value, Mapping):
        raise CredentialRefused(
            f"credentials must be an object, found {type(value).__name__}", MALFORMED
        )
    kinds = [k for k in ("env", "secret", "encrypted") if k in value]
    others = sorted(str(k) for k in value if k not in ("env", "secret", "encrypted"))
    if others:
        carries = any(k.lower() in _SECRET_FIELDS or isinstance(value[k], str) for k in others)
        raise CredentialRefused(
            f"credentials may not hold {', '.join(repr(k) for k in others)}: "
            "give one of 'env', 'secret' or 'encrypted'",
            PLAIN_TEXT if carries else MALFORMED,
        )
    if len(kinds) != 1:
        raise CredentialRefused(
            "credentials must name exactly one of 'env', 'secret' or 'encrypted'", MALFORMED
        )
    kind: CredentialKind = kinds[0]  # type: ignore[assignment]
    return kind


def _check_reference(kind: CredentialKind, reference: Any) -> None:
    """Refuse a reference that is empty, malformed, or a key itself."""
    if not isinstance(reference, str) or not reference:
        raise CredentialRefused(f"credentials.{kind} must be a non-empty string", MALFORMED)
    if kind == "encrypted":
        if not _FERNET_TOKEN.fullmatch(reference):
            raise CredentialRefused("credentials.encrypted is not a Fernet token", MALFORMED)
        return
    if any(looks_like_secret(part) for part in re.split(r"[/:]", reference)):
        raise CredentialRefused(
            f"credentials.{kind} looks like a key, not the name of one", PLAIN_TEXT
        )
    if kind == "env" and not _ENV_NAME.fullmatch(reference):
        raise CredentialRefused(
            "credentials.env must be an environment variable name (letters, digits, '_')",
            MALFORMED,
        )
    if kind == "secret" and not _SECRET_NAME.fullmatch(reference):
        raise CredentialRefused(
            "credentials.secret must be a secret name (letters, digits and /_+=.@:-)",
            MALFORMED,
        )


def _fernet(key: SecretKey | None) -> MultiFernet:
    if key is None:
        raise SettingsError(
            "TENANCY_SECRET_KEY is not set: it is needed to encrypt or decrypt credentials"
        )
    try:
        return fernet_for(key)
    except ValueError as exc:
        raise SettingsError(f"TENANCY_SECRET_KEY: {exc}") from None


def encrypt_credential(value: str, key: SecretKey | None) -> str:
    """``value`` encrypted with ``key``, as the token ``{"encrypted": TOKEN}`` holds."""
    return _fernet(key).encrypt(value.encode("utf-8")).decode("ascii")


def decrypt_credential(token: str, key: SecretKey | None) -> str:
    """The value ``token`` encrypts. Raises :class:`ConfigError` when ``key`` does not
    decrypt it (a wrong key or a damaged token)."""
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(key).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise ConfigError(
            "the encrypted credential does not decrypt with TENANCY_SECRET_KEY "
            "(a different key, or a damaged token)",
            key="credentials.encrypted",
        ) from None


def _credentials_of(model: Any) -> tuple[str, Any]:
    mapping = getattr(model, "_mapping", model)
    if not isinstance(mapping, Mapping):
        raise TypeError(f"expected a model row or mapping, found {type(model).__name__}")
    return str(mapping.get("model_id", "?")), mapping.get("credentials")


def resolve_credential(
    model: Any,
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    secrets: Callable[[str], str] | None = None,
    cipher: TenantCipher | None = None,
) -> str:
    """The credential of an ``ai_models`` row (or a mapping with ``credentials``).

    ``{"env": NAME}`` reads ``environ`` (default: the process environment);
    ``{"encrypted": TOKEN}`` decrypts with the tenant's ``cipher`` (stored rows: see
    ``FixtureManager.tenant_cipher``) or, without one, ``settings.secret_key``;
    ``{"secret": NAME}`` asks ``secrets`` (the application's secret-manager client).
    Raises :class:`ConfigError` when the credential cannot be had.
    """
    model_id, value = _credentials_of(model)
    try:
        reference = check_credentials(value)
    except CredentialRefused as exc:
        raise ConfigError(f"model {model_id!r}: {exc}", key="credentials") from None
    if reference is None:
        raise ConfigError(f"model {model_id!r} has no credentials", key="credentials")
    kind, name = reference
    if kind == "env":
        found = (os.environ if environ is None else environ).get(name)
        if not found:
            raise ConfigError(
                f"model {model_id!r}: environment variable {name} is not set",
                key="credentials.env",
            )
        return found
    if kind == "secret":
        if secrets is None:
            raise ConfigError(
                f"model {model_id!r} names secret {name!r}; pass secrets= to resolve it",
                key="credentials.secret",
            )
        return secrets(name)
    try:
        if cipher is not None:
            return cipher.decrypt(name)
        return decrypt_credential(name, settings.secret_key)
    except ConfigError as exc:
        raise ConfigError(f"model {model_id!r}: {exc.message}", key=exc.key) from None
