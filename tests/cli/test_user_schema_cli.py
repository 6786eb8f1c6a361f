"""The CLI on a user's own schema named by ``TENANCY_METADATA``, on both backends."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.cli.cli_runner import Cli
from tests.user_schema import DATA

ROWS = {"User": 3, "Employee": 6, "Order": 3, "OrderLine": 5, "Shipment": 3}


@pytest.fixture
def cli(database_url: str) -> Cli:
    """The CLI on this test's backend, with the user's schema as the tenant schema."""
    return Cli(database_url, env={"TENANCY_METADATA": "tests.user_schema:metadata"})


@pytest.fixture
def tenant(cli: Cli) -> Iterator[str]:
    """A tenant id unique to this test; dropped afterwards."""
    prefix = f"us_{uuid.uuid4().hex[:10]}_"
    yield f"{prefix}shop"
    result = cli("cleanup", "--prefix", prefix, "--yes")
    assert 0 == result.exit_code, result.output


def test_init_load_and_validate_a_tenant_of_the_users_schema(cli: Cli, tenant: str) -> None:
    """init-tenant, load-fixtures and validate-data work on the schema the setting names."""
    cli.ok("init-tenant", tenant)
    cli.ok("load-fixtures", tenant, str(DATA / "jsonl"))

    (report,) = cli.json("validate-data", tenant)

    assert (True, []) == (report["ok"], report["problems"])
    assert ROWS == report["row_counts"]


def test_validate_data_checks_a_set_against_the_users_schema(cli: Cli) -> None:
    """validate-data --source reads the set with the tenant schema the setting names."""
    checked = cli.json("validate-data", "--source", str(DATA / "csv"))

    assert (True, sum(ROWS.values())) == (checked["ok"], checked["records"])


def test_schema_sql_renders_the_users_schema_in_the_placeholder_schema(cli: Cli) -> None:
    """schema-sql prints the user's tables, quoted, in schema "tenant"."""
    sql = cli.ok("schema-sql").stdout

    assert 'CREATE TABLE tenant."Order"' in sql
    assert 'REFERENCES tenant."Employee" ("EmployeeId")' in sql
