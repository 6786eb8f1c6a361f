"""Tenant ids: the validator that stands between untrusted input and storage names."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import pytest

from tenancy_fixtures.errors import InvalidTenantIdError
from tenancy_fixtures.ids import (
    MAX_TENANT_ID_LENGTH,
    RESERVED_TENANT_IDS,
    is_valid_tenant_id,
    validate_tenant_id,
)
from tenancy_fixtures.tenancy.tenants import TenantFixture

SHAPE = "must start with a lowercase letter and hold only lowercase letters, digits and '_'"
RESERVED = "is a reserved name"

GOOD_IDS = [
    pytest.param("tenant_001", id="tenant_001"),
    pytest.param("a", id="one-letter"),
    pytest.param("a" * MAX_TENANT_ID_LENGTH, id="48-chars"),
    pytest.param("acme_corp_2", id="letters-digits-underscores"),
    pytest.param("z9", id="letter-then-digit"),
    pytest.param("tenant_", id="trailing-underscore"),
    pytest.param("pg", id="pg-without-underscore"),
    pytest.param("publics", id="reserved-name-as-prefix"),
]

HOSTILE_IDS = [
    pytest.param("", "must not be empty", id="empty"),
    pytest.param("a" * 49, "must be at most 48 characters, not 49", id="49-chars"),
    pytest.param("Tenant", SHAPE, id="uppercase-first"),
    pytest.param("tenANT", SHAPE, id="uppercase-inside"),
    pytest.param("1tenant", SHAPE, id="leading-digit"),
    pytest.param("_tenant", SHAPE, id="leading-underscore"),
    pytest.param("my tenant", SHAPE, id="space"),
    pytest.param(" tenant", SHAPE, id="leading-space"),
    pytest.param("tenant'", SHAPE, id="single-quote"),
    pytest.param('ten"ant', SHAPE, id="double-quote"),
    pytest.param("a;drop", SHAPE, id="semicolon"),
    pytest.param("a--b", SHAPE, id="sql-comment"),
    pytest.param("a..b", SHAPE, id="dot-dot"),
    pytest.param("..", SHAPE, id="only-dot-dot"),
    pytest.param("a/b", SHAPE, id="slash"),
    pytest.param("a\\b", SHAPE, id="backslash"),
    pytest.param("a\x00b", SHAPE, id="nul"),
    pytest.param("tenant\n", SHAPE, id="trailing-newline"),
    pytest.param("ten\nant", SHAPE, id="inner-newline"),
    pytest.param("tenant-1", SHAPE, id="hyphen"),
    pytest.param("t\u0435nant", SHAPE, id="cyrillic-e"),
    pytest.param("\uff54\uff45\uff4e\uff41\uff4e\uff54", SHAPE, id="fullwidth"),
    pytest.param("\u01c5", SHAPE, id="titlecase-dz"),
    pytest.param("caf\u00e9", SHAPE, id="latin-accent"),
    pytest.param("public", RESERVED, id="public"),
    pytest.param("pg_catalog", RESERVED, id="pg_catalog"),
    pytest.param("information_schema", RESERVED, id="information_schema"),
    pytest.param("tenancy", RESERVED, id="tenancy"),
    pytest.param("pg_anything", RESERVED, id="pg_prefix"),
    pytest.param("tenant", RESERVED, id="tenant"),
    pytest.param("postgres", RESERVED, id="postgres"),
]

NON_STRINGS = [
    pytest.param(None, "must be a string, not NoneType", id="none"),
    pytest.param(123, "must be a string, not int", id="int"),
    pytest.param(b"abc", "must be a string, not bytes", id="bytes"),
    pytest.param(["abc"], "must be a string, not list", id="list"),
]


class TestValidateTenantId:
    @pytest.mark.parametrize("tenant_id", GOOD_IDS)
    def test_a_good_id_is_returned_unchanged(self, tenant_id: str) -> None:
        """A well-formed id comes back exactly as given."""
        assert tenant_id == validate_tenant_id(tenant_id)

    @pytest.mark.parametrize(("tenant_id", "reason"), HOSTILE_IDS)
    def test_a_hostile_id_is_refused_saying_why(self, tenant_id: str, reason: str) -> None:
        """Each hostile id is refused with the rule it breaks in the error."""
        with pytest.raises(InvalidTenantIdError) as caught:
            validate_tenant_id(tenant_id)

        assert reason == caught.value.reason
        assert reason in str(caught.value)
        assert tenant_id == caught.value.rejected_id

    @pytest.mark.parametrize(("value", "reason"), NON_STRINGS)
    def test_a_value_that_is_not_a_str_is_refused(self, value: object, reason: str) -> None:
        """Non-string values are refused by type, never coerced."""
        with pytest.raises(InvalidTenantIdError) as caught:
            validate_tenant_id(value)

        assert reason == caught.value.reason

    @pytest.mark.parametrize("reserved", sorted(RESERVED_TENANT_IDS))
    def test_every_reserved_name_is_refused(self, reserved: str) -> None:
        """Every name in RESERVED_TENANT_IDS is refused as reserved."""
        with pytest.raises(InvalidTenantIdError) as caught:
            validate_tenant_id(reserved)

        assert RESERVED == caught.value.reason

    def test_the_message_escapes_control_characters(self) -> None:
        """A newline or NUL in a refused id is shown escaped, so the message is safe to log."""
        with pytest.raises(InvalidTenantIdError) as caught:
            validate_tenant_id("evil\n\x00id")

        message = str(caught.value)
        assert "\n" not in message
        assert "\x00" not in message
        assert "'evil\\n\\x00id'" in message

    def test_a_very_long_id_is_shortened_in_the_message(self) -> None:
        """The message shows at most 80 characters of a huge refused id."""
        with pytest.raises(InvalidTenantIdError) as caught:
            validate_tenant_id("a" * 10_000)

        shown = str(caught.value).split(": ")[0]
        assert shown.endswith("...")
        assert len(shown) <= len("invalid tenant id ") + 80

    def test_the_error_exits_with_a_usage_code(self) -> None:
        """An invalid id is a usage error (exit code 2) for the CLI."""
        with pytest.raises(InvalidTenantIdError) as caught:
            validate_tenant_id("")

        assert 2 == caught.value.exit_code


class TestIsValidTenantId:
    @pytest.mark.parametrize("tenant_id", GOOD_IDS)
    def test_a_good_id_is_valid(self, tenant_id: str) -> None:
        """is_valid_tenant_id is True for every id validate_tenant_id accepts."""
        assert is_valid_tenant_id(tenant_id) is True

    @pytest.mark.parametrize(("tenant_id", "reason"), [*HOSTILE_IDS, *NON_STRINGS])
    def test_a_hostile_id_is_not_valid(self, tenant_id: object, reason: str) -> None:
        """is_valid_tenant_id is False, without raising, for every refused value."""
        del reason
        assert is_valid_tenant_id(tenant_id) is False


class TestTenantFixture:
    @pytest.mark.parametrize(("tenant_id", "reason"), HOSTILE_IDS)
    def test_a_hostile_id_cannot_make_a_tenant_fixture(self, tenant_id: str, reason: str) -> None:
        """TenantFixture validates its id on construction."""
        with pytest.raises(InvalidTenantIdError) as caught:
            TenantFixture(tenant_id=tenant_id)

        assert reason == caught.value.reason

    def test_a_non_string_id_cannot_make_a_tenant_fixture(self) -> None:
        """TenantFixture refuses an id that is not a str."""
        with pytest.raises(InvalidTenantIdError):
            TenantFixture(tenant_id=None)  # type: ignore[arg-type]

    def test_a_good_id_makes_a_tenant_fixture_with_free_defaults(self) -> None:
        """A valid id gives a fixture on the free tier with no overrides."""
        tenant = TenantFixture(tenant_id="tenant_001", features=["sso"])

        assert ("tenant_001", "free", ("sso",), {}, {}) == (
            tenant.tenant_id,
            tenant.tier,
            tenant.features,
            dict(tenant.limits),
            dict(tenant.settings),
        )
