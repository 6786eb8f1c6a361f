"""Where a request names its tenant: header, subdomain, verified JWT claim."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tenancy_fixtures.routing import TenantProblem, from_header, from_jwt_claim, from_subdomain
from tenancy_fixtures.routing.resolvers import header_value

SECRET = "a-test-secret-of-at-least-32-bytes!"


def scope(**headers: str) -> dict[str, Any]:
    pairs = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "headers": pairs}


def token(claims: dict[str, Any], key: Any = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, key, algorithm=algorithm)


def test_the_header_names_the_tenant_whatever_its_case() -> None:
    assert "acme" == from_header("X-Tenant-ID")(scope(x_tenant_id=" acme "))


def test_a_missing_header_is_a_400_naming_it() -> None:
    with pytest.raises(TenantProblem, match="X-Org") as raised:
        from_header("X-Org")(scope())
    assert 400 == raised.value.status


def test_a_tenant_header_sent_twice_is_a_400_not_the_first_value() -> None:
    twice = {"type": "http", "headers": [(b"x-tenant-id", b"acme"), (b"X-Tenant-ID", b"globex")]}
    with pytest.raises(TenantProblem, match="X-Tenant-ID header was sent 2 times") as raised:
        from_header()(twice)
    assert 400 == raised.value.status


def test_a_tenant_header_folding_two_values_is_a_400() -> None:
    with pytest.raises(TenantProblem, match="more than one tenant") as raised:
        from_header()(scope(x_tenant_id="acme, globex"))
    assert 400 == raised.value.status


def test_a_host_header_sent_twice_is_a_400_and_a_token_sent_twice_a_401_challenge() -> None:
    hosts = {"type": "http", "headers": [(b"host", b"acme.example.com")] * 2}
    with pytest.raises(TenantProblem, match="host header was sent 2 times") as raised:
        from_subdomain("example.com")(hosts)
    assert 400 == raised.value.status
    bearer = f"Bearer {token({'tenant_id': 'acme'})}".encode()
    tokens = {"type": "http", "headers": [(b"authorization", bearer)] * 2}
    with pytest.raises(TenantProblem, match="authorization header was sent 2 times") as raised:
        from_jwt_claim(SECRET)(tokens)
    assert (401, "Bearer") == (
        raised.value.status,
        raised.value.headers["WWW-Authenticate"].split()[0],
    )


def test_header_value_reads_the_first_of_a_repeated_header_for_the_apps_own_use() -> None:
    """Only the resolvers refuse a repeat: Accept or Cookie may come twice."""
    accepts = {"type": "http", "headers": [(b"accept", b"text/html"), (b"Accept", b"*/*")]}

    assert "text/html" == header_value(accepts, "Accept")


@pytest.mark.parametrize("host", ["acme.example.com", "acme.example.com:8443", "ACME.example.com."])
def test_the_first_label_under_the_base_domain_is_the_tenant(host: str) -> None:
    assert "acme" == from_subdomain("example.com")(scope(host=host))


@pytest.mark.parametrize("host", ["example.com", "a.b.example.com", "acme.example.org", ""])
def test_a_host_that_is_not_one_label_under_the_base_domain_is_a_400(host: str) -> None:
    with pytest.raises(TenantProblem) as raised:
        from_subdomain("example.com")(scope(host=host))
    assert 400 == raised.value.status


def test_a_verified_token_names_the_tenant_in_its_claim() -> None:
    resolve = from_jwt_claim(SECRET, claim="org")
    assert "acme" == resolve(scope(authorization=f"Bearer {token({'org': 'acme'})}"))


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        ("", "no tenant given"),
        ("Basic abc", "no tenant given"),
        (
            f"Bearer {token({'tenant_id': 'acme'}, key='another-secret-of-at-least-32-bytes')}",
            "Signature verification failed",
        ),
        (f"Bearer {token({'tenant_id': 'acme', 'exp': int(time.time()) - 10})}", "expired"),
        (f"Bearer {jwt.encode({'tenant_id': 'acme'}, SECRET, algorithm='HS256')}", "exp"),
        (f"Bearer {token({'sub': 'someone'})}", "tenant_id"),
        (
            f"Bearer {jwt.encode({'tenant_id': 'acme', 'exp': 2**40}, '', algorithm='none')}",
            "alg",
        ),
    ],
    ids=["none", "basic", "wrong-key", "expired", "no-expiry", "no-claim", "alg-none"],
)
def test_a_token_that_does_not_verify_is_a_401(authorization: str, reason: str) -> None:
    with pytest.raises(TenantProblem) as raised:
        from_jwt_claim(SECRET)(scope(authorization=authorization))
    assert 401 == raised.value.status
    assert reason.lower() in raised.value.detail.lower()
    assert "Bearer" in raised.value.headers["WWW-Authenticate"]


def test_the_none_algorithm_alone_is_refused_when_configured() -> None:
    with pytest.raises(ValueError, match="none"):
        from_jwt_claim(SECRET, algorithms=["none"])


@pytest.mark.parametrize("forged_with", ["ES256", "HS256"])
def test_a_token_of_an_allowed_algorithm_the_key_does_not_fit_is_a_401(forged_with: str) -> None:
    """With algorithms of two families allowed, a token signed by the other family met a
    key of the wrong type: PyJWT's InvalidKeyError, which escaped as a 500."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forger: Any = ec.generate_private_key(ec.SECP256R1()) if forged_with == "ES256" else SECRET
    resolve = from_jwt_claim(public, algorithms=["RS256", forged_with])

    with pytest.raises(TenantProblem) as raised:
        resolve(scope(authorization=f"Bearer {token({'tenant_id': 'acme'}, forger, forged_with)}"))

    assert 401 == raised.value.status
    assert "Bearer" in raised.value.headers["WWW-Authenticate"]
    signed = token({"tenant_id": "acme"}, private, "RS256")  # the key still verifies its own
    assert "acme" == resolve(scope(authorization=f"Bearer {signed}"))


def test_algorithms_given_as_one_string_are_refused_not_read_as_characters() -> None:
    """``algorithms="HS256"`` allowed "H", "S", "2", "5" and "6": every token was a 401."""
    with pytest.raises(TypeError, match=r"algorithms=\['HS256'\]"):
        from_jwt_claim(SECRET, algorithms="HS256")
