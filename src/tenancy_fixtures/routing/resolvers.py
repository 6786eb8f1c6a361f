"""Where a request names its tenant: a header, the host's subdomain, or a JWT claim.

A resolver is any callable taking the ASGI ``scope`` and returning the tenant id as the
request gives it (untrusted: the router validates it), or an awaitable of it (a custom
domain looked up in a database), or raising :class:`TenantProblem` when the request
names none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from tenancy_fixtures.routing.problems import TenantProblem

__all__ = [
    "TenantResolver",
    "from_header",
    "from_jwt_claim",
    "from_subdomain",
    "header_value",
]

#: Takes the ASGI scope, returns the tenant id the request names (or an awaitable of it).
TenantResolver = Callable[[Mapping[str, Any]], str | Awaitable[str]]


def header_value(scope: Mapping[str, Any], name: str) -> str | None:
    """The first value of header ``name`` in an ASGI ``scope`` (case-insensitive)."""
    values = _values(scope, name)
    return values[0] if values else None


def _values(scope: Mapping[str, Any], name: str) -> list[str]:
    wanted = name.lower().encode("latin-1")
    return [
        bytes(value).decode("latin-1").strip()
        for key, value in scope.get("headers", ())
        if key.lower() == wanted
    ]


def _single(
    scope: Mapping[str, Any], name: str, status: int = 400, headers: Mapping[str, str] | None = None
) -> str | None:
    """The value of header ``name`` the tenant is read from, or None. Sent twice it is
    refused, never "the first wins": a proxy that appends its own value instead of
    replacing the client's would otherwise let the client pick."""
    values = _values(scope, name)
    if len(values) > 1:
        raise TenantProblem(
            status, f"the {name} header was sent {len(values)} times: send it once", headers=headers
        )
    return values[0] if values else None


def from_header(name: str = "X-Tenant-ID") -> TenantResolver:
    """The tenant named by request header ``name``; missing, empty, repeated or
    holding a list is a 400."""

    def resolve(scope: Mapping[str, Any]) -> str:
        value = _single(scope, name)
        if not value:
            raise TenantProblem(400, f"no tenant given: send the tenant id in the {name} header")
        if "," in value:
            # Two values folded into one field (RFC 9110 5.3), as a proxy may append.
            raise TenantProblem(400, f"the {name} header names more than one tenant: send one")
        return value

    return resolve


def from_subdomain(base_domain: str) -> TenantResolver:
    """The tenant named by the first label of the ``Host``: ``acme.example.com`` is
    ``acme`` for ``base_domain="example.com"``. The host must be exactly one label
    under ``base_domain`` (any port is ignored); anything else is a 400."""
    suffix = "." + base_domain.lower().strip(".")

    def resolve(scope: Mapping[str, Any]) -> str:
        host = (_single(scope, "host") or "").lower().rsplit(":", 1)[0].rstrip(".")
        label = host[: -len(suffix)] if host.endswith(suffix) else ""
        if not label or "." in label:
            raise TenantProblem(
                400, f"no tenant given: call <tenant>{suffix}, not {host or 'an empty host'!r}"
            )
        return label

    return resolve


def from_jwt_claim(
    key: Any,
    *,
    algorithms: Sequence[str] = ("HS256",),
    claim: str = "tenant_id",
    audience: str | Sequence[str] | None = None,
    issuer: str | None = None,
    leeway: float = 0.0,
) -> TenantResolver:
    """The tenant named by ``claim`` of the ``Authorization: Bearer`` token, after PyJWT
    has verified its signature with ``key`` (one of ``algorithms``; never ``none``),
    its expiry and, when given, ``audience`` and ``issuer``. A missing token or claim,
    or one that does not verify, is a 401.

    Needs PyJWT (``pip install 'tenancy-fixtures[jwt]'``).
    """
    import jwt  # optional: only apps that route by token need it

    allowed = _signing_algorithms(algorithms)
    challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    required = ["exp", claim] if claim != "exp" else ["exp"]

    def resolve(scope: Mapping[str, Any]) -> str:
        given = _single(scope, "authorization", 401, challenge)
        scheme, _, token = (given or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TenantProblem(
                401,
                "no tenant given: send a token naming it, as Authorization: Bearer <jwt>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            claims = jwt.decode(
                token.strip(),
                key,
                algorithms=allowed,
                audience=audience,
                issuer=issuer,
                leeway=leeway,
                options={"require": required},
            )
        except jwt.PyJWTError as exc:
            # InvalidKeyError too (not an InvalidTokenError): a token signed with one of
            # the allowed algorithms that the configured key does not fit.
            raise TenantProblem(401, f"the token was refused: {exc}", headers=challenge) from None
        value = claims.get(claim)
        if not isinstance(value, str) or not value:
            raise TenantProblem(
                401, f"the token's {claim!r} claim is not a tenant id", headers=challenge
            )
        return value

    return resolve


def _signing_algorithms(algorithms: Sequence[str]) -> list[str]:
    """The algorithms a token may be signed with: ``algorithms`` but ``none``."""
    if isinstance(algorithms, str):
        # Not read as one algorithm per character ("H", "S", "2"...), which refuses every token.
        raise TypeError(
            f"from_jwt_claim takes a list of algorithms, not the string {algorithms!r}: "
            f"write algorithms=[{algorithms!r}]"
        )
    allowed = [a for a in algorithms if a.lower() != "none"]
    if not allowed:
        raise ValueError("from_jwt_claim needs at least one signing algorithm besides 'none'")
    return allowed
