"""Rows of a guarded table go through its guarding loader's checks whatever route brings
them, on both backends: a plain table loader built in code, a tenant template naming
``tables``, Django ``dumpdata`` records, a check of the files alone. A plain API key in
an ``ai_models`` row is refused (typed error naming file and line or record, nothing
stored) and never reaches a reject file in clear; the workspace rules hold for
collaboration tables loaded as plain table files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tenancy_fixtures import DataLoader, FixtureManager, RecordError, Settings, TenantFixture
from tenancy_fixtures.fixtures.templates import BUILTIN_TEMPLATE_DIR, TemplateDirectory
from tenancy_fixtures.loading.set_check import check_set
from tests.integration.test_domain_loaders import (
    OPENAI_KEY,
    TENANT,
    catalog,
    collaboration,
    count,
    model,
    rows,
    write,
)

REDACTED = "[redacted: credentials:plain_text]"
LEAKY = model("chat-leaky", is_default=False, credentials={"api_key": OPENAI_KEY})


@pytest.fixture
async def tenant(manager: FixtureManager) -> str:
    await manager.create_tenant(TenantFixture(tenant_id=TENANT, tier="enterprise"))
    return TENANT


def models_set(directory: Path, *models: dict[str, Any]) -> Path:
    """A fixture set of ``ai_models.jsonl`` alone, no manifest."""
    return write(directory, "ai_models.jsonl", list(models))


def django_dump(path: Path, *models: dict[str, Any]) -> Path:
    """``models`` as ``dumpdata`` writes them, one record a line (``ai.ai_model`` loads
    into ``ai_models``, the table named for the model)."""
    records = [{"model": "ai.ai_model", "pk": m["model_id"], "fields": _fields(m)} for m in models]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "model_id"}


def assert_refused_at(error: RecordError, path: str, line: int) -> None:
    """A plain-key refusal naming file and line, and not the key."""
    assert ("credentials:plain_text", path, line) == (error.rule, error.path, error.line)
    assert OPENAI_KEY not in str(error)


async def test_a_table_loader_built_in_code_refuses_a_plain_api_key_in_ai_models(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    """``DataLoader(path)`` made by a library user loads ai_models through the model checks."""
    path = models_set(tmp_path / "set", model("chat-main"), LEAKY)
    loader = DataLoader(path, metadata=manager.store.metadata)

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, fixtures=[loader])

    assert_refused_at(caught.value, "ai_models.jsonl", 2)
    assert 0 == await count(manager, "ai_models")


async def test_a_table_loader_built_in_code_keeps_the_model_rules_of_the_whole_set(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    """Beside other tables, the ai_models rows still keep one default per task; a
    set that keeps it loads every table."""
    directory = catalog(tmp_path / "set")
    models_set(directory, model("chat-a"), model("chat-b"))
    loader = DataLoader(directory, metadata=manager.store.metadata)

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, fixtures=[loader])
    assert "ai_models:default_per_task" == caught.value.rule
    assert 0 == await count(manager, "users")

    models_set(directory, model("chat-a"), model("chat-b", is_default=False))
    report = await manager.load_fixtures(
        TENANT, fixtures=[DataLoader(directory, metadata=manager.store.metadata)]
    )
    assert {"ai_models": 2, "users": 4} == {
        t: n for t, n in report.results[0].row_counts.items() if t in ("ai_models", "users")
    }


async def test_a_lenient_load_by_a_table_loader_built_in_code_redacts_the_plain_key(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    path = models_set(tmp_path / "set", model("chat-main"), LEAKY)
    loader = DataLoader(path, metadata=manager.store.metadata)

    report = await manager.load_fixtures(
        TENANT, fixtures=[loader], validation="lenient", reject_dir=tmp_path / "rejects"
    )

    assert report.reject_file is not None
    text = report.reject_file.read_text(encoding="utf-8")
    assert OPENAI_KEY not in text
    [line] = [json.loads(line) for line in text.splitlines()]
    assert ("credentials:plain_text", 2, REDACTED) == (
        line["rule"],
        line["line"],
        line["record"]["credentials"],
    )
    assert [("chat-main",)] == await rows(manager, "ai_models", "model_id")


def template_dir(directory: Path, fixtures: dict[str, Any]) -> Path:
    """The built-in templates, with a tenant template whose enterprise tier gets
    ``fixtures`` (sets under ``fixtures/`` of ``directory``)."""
    for name in (TemplateDirectory.CONFIG_TEMPLATE, TemplateDirectory.SCHEMA_TEMPLATE):
        shutil.copy(BUILTIN_TEMPLATE_DIR / name, directory / name)
    tenant_template = {"version": 1, "fixtures": fixtures, "tiers": {"enterprise": list(fixtures)}}
    (directory / TemplateDirectory.TENANT_TEMPLATE).write_text(
        json.dumps(tenant_template), encoding="utf-8"
    )
    return directory


async def test_a_template_fixture_naming_the_table_loader_refuses_a_plain_api_key(
    settings: Settings, tmp_path: Path
) -> None:
    """A tier's fixture with loader ``tables`` over ai_models files is model-checked."""
    models_set(tmp_path / "fixtures" / "leaky", model("chat-main"), LEAKY)
    fixture = {"loader": "tables", "source": "fixtures/leaky"}
    templates = template_dir(tmp_path, {"models": fixture})

    async with FixtureManager(settings.model_copy(update={"template_dir": templates})) as manager:
        await manager.create_tenant(TenantFixture(tenant_id=TENANT, tier="enterprise"))
        try:
            with pytest.raises(RecordError) as caught:
                await manager.load_fixtures(TENANT)
            assert_refused_at(caught.value, "ai_models.jsonl", 2)
            assert 0 == await count(manager, "ai_models")
        finally:
            await manager.drop_tenant(TENANT)


async def test_django_fixture_with_a_plain_api_key_is_refused(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    """``dumpdata`` records mapped into ai_models go through the model checks, the
    refusal pointed at the record's line of the dump."""
    path = django_dump(tmp_path / "models.jsonl", model("chat-main"), LEAKY)

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, path, format="django")

    assert_refused_at(caught.value, "models.jsonl", 2)
    assert 0 == await count(manager, "ai_models")


async def test_a_lenient_django_load_never_writes_a_plain_api_key_to_its_reject_file(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    path = django_dump(tmp_path / "models.jsonl", model("chat-main"), LEAKY)

    report = await manager.load_fixtures(
        TENANT, path, validation="lenient", reject_dir=tmp_path / "rejects"
    )

    assert report.reject_file is not None
    text = report.reject_file.read_text(encoding="utf-8")
    assert OPENAI_KEY not in text
    assert ["credentials:plain_text"] == [json.loads(x)["rule"] for x in text.splitlines()]
    assert [("chat-main",)] == await rows(manager, "ai_models", "model_id")


async def test_validate_data_source_refuses_a_plain_api_key_in_a_django_fixture(
    manager: FixtureManager, tmp_path: Path
) -> None:
    path = django_dump(tmp_path / "models.jsonl", model("chat-main"), LEAKY)

    check = check_set(path, metadata=manager.store.metadata, settings=manager.settings)

    assert not check.ok
    assert {"credentials:plain_text": 1} == dict(check.report.rules)
    assert OPENAI_KEY not in " ".join(check.problems)


async def test_collaboration_table_files_of_a_set_naming_no_loader_keep_the_workspace_rules(
    manager: FixtureManager, tenant: str, tmp_path: Path
) -> None:
    """A workspace without an owner among plain table files is refused, as the
    collaboration loader refuses it; nothing is written."""
    directory = catalog(tmp_path / "set")
    collaboration(directory, members=[("w1", "u2", "editor"), ("w1", "u3", "viewer")])

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, directory)

    assert ("collaboration:owner_required", "workspaces.json") == (
        caught.value.rule,
        caught.value.path,
    )
    assert 0 == await count(manager, "workspaces")
    assert 0 == await count(manager, "users")
