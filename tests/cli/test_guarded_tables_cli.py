"""``load-fixtures`` and ``validate-data --source`` refuse a plain API key in ai_models
rows whatever format brings them (exit 5, one line naming file and line, never the key)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.cli_runner import Cli, assert_one_line_error
from tests.integration.test_domain_loaders import OPENAI_KEY, model

LEAKY = model("chat-leaky", is_default=False, credentials={"api_key": OPENAI_KEY})


def django_dump(path: Path) -> Path:
    """Two ``dumpdata`` records of ``ai.ai_model`` (table ai_models), the second leaky."""
    records = [
        {"model": "ai.ai_model", "pk": m["model_id"], "fields": m}
        for m in (model("chat-main"), LEAKY)
    ]
    for record in records:
        record["fields"] = {k: v for k, v in record["fields"].items() if k != "model_id"}
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("format_args", [["--format", "django"], []], ids=["given", "detected"])
def test_load_fixtures_of_a_django_dump_with_a_plain_api_key_exits_5_naming_its_line(
    cli: Cli, tenant_prefix: str, tmp_path: Path, format_args: list[str]
) -> None:
    tenant = f"{tenant_prefix}t"
    cli.ok("init-tenant", tenant, "--tier", "enterprise")
    path = django_dump(tmp_path / "models.jsonl")

    result = cli("load-fixtures", tenant, str(path), *format_args)

    line = assert_one_line_error(result, 5, "error: ")
    assert "models.jsonl:2" in line
    assert "credentials:plain_text" in line
    assert OPENAI_KEY not in result.output
    assert 0 == cli.json("show", tenant)["total_rows"]


def test_validate_data_source_refuses_a_django_dump_with_a_plain_api_key(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    path = django_dump(tmp_path / "models.jsonl")

    result = sqlite_cli("validate-data", "--source", str(path))

    assert 6 == result.exit_code, result.output  # validate-data: problems found
    assert "credentials:plain_text" in result.output
    assert OPENAI_KEY not in result.output
