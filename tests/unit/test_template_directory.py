"""A user's own template directory: every refusal is a TemplateError naming the file."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tenancy_fixtures.errors import TemplateError
from tenancy_fixtures.fixtures.templates import BUILTIN_TEMPLATE_DIR, TemplateDirectory
from tenancy_fixtures.loading.planning import TenantTemplate
from tenancy_fixtures.spotify import builtin_metadata
from tenancy_fixtures.tenancy.config import ConfigTemplate

Edit = Callable[[dict[str, Any]], None]


def user_templates(tmp_path: Path, name: str, edit: Edit) -> Path:
    """A copy of the built-in templates whose ``name`` template ``edit`` changed."""
    root = tmp_path / "templates"
    shutil.copytree(BUILTIN_TEMPLATE_DIR, root)
    path = root / name
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    edit(document)
    path.write_text(json.dumps(document), encoding="utf-8")
    return root


def free_tier_fixtures(root: Path) -> None:
    """Open the free tier's data fixtures of the templates in ``root``."""
    templates = TemplateDirectory(root)
    TenantTemplate.load(templates).data_fixtures(
        "free", templates, metadata=builtin_metadata(), batch_size=100
    )


def set_source(source: str) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        document["fixtures"]["starter_catalog"]["source"] = source

    return edit


def symlink_out(root: Path, outside: Path) -> None:
    """Replace the starter set by a symlink to a copy outside ``root``."""
    shutil.copytree(root / "fixtures" / "starter", outside)
    shutil.rmtree(root / "fixtures" / "starter")
    (root / "fixtures" / "starter").symlink_to(outside, target_is_directory=True)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_template_source_leaving_the_directory_is_a_template_error_naming_the_template(
    tmp_path: Path, kind: str
) -> None:
    outside = tmp_path / "outside"
    sources = {"dotdot": "../outside", "absolute": str(outside), "symlink": "fixtures/starter"}
    root = user_templates(tmp_path, "tenant_template.json", set_source(sources[kind]))
    if kind == "symlink":
        symlink_out(root, outside)
    with pytest.raises(TemplateError) as caught:
        free_tier_fixtures(root)
    assert root.resolve() / "tenant_template.json" == caught.value.path
    assert str(root.resolve() / "tenant_template.json") in str(caught.value)
    assert "fixture 'starter_catalog'" in str(caught.value)


@pytest.mark.parametrize("source", ["", " ", ".", "fixtures/.."])
def test_template_source_naming_the_template_directory_itself_is_a_template_error(
    tmp_path: Path, source: str
) -> None:
    """An empty source read the template directory as a fixture set: the load failed on
    "unknown table 'config_template'", blaming config_template.json."""
    root = user_templates(tmp_path, "tenant_template.json", set_source(source))
    with pytest.raises(TemplateError) as caught:
        free_tier_fixtures(root)
    assert root.resolve() / "tenant_template.json" == caught.value.path
    assert "fixture 'starter_catalog'" in str(caught.value)
    assert "the template directory itself" in str(caught.value)


def test_missing_template_error_names_the_missing_file(tmp_path: Path) -> None:
    root = user_templates(tmp_path, "config_template.json", lambda document: None)
    (root / "config_template.json").unlink()
    with pytest.raises(TemplateError) as caught:
        ConfigTemplate.load(TemplateDirectory(root))
    assert f"{root.resolve() / 'config_template.json'}: template does not exist" == str(
        caught.value
    )


def test_malformed_template_error_names_the_file_and_line(tmp_path: Path) -> None:
    root = user_templates(tmp_path, "tenant_template.json", lambda document: None)
    (root / "tenant_template.json").write_text('{"version": 1,\n "fixtures": {', "utf-8")
    with pytest.raises(TemplateError) as caught:
        free_tier_fixtures(root)
    assert str(caught.value).startswith(f"{root.resolve() / 'tenant_template.json'}: ")
    assert "line 2" in str(caught.value)


def test_tier_missing_from_the_tenant_template_names_the_file(tmp_path: Path) -> None:
    def drop_free(document: dict[str, Any]) -> None:
        del document["tiers"]["free"]

    root = user_templates(tmp_path, "tenant_template.json", drop_free)
    with pytest.raises(TemplateError) as caught:
        free_tier_fixtures(root)
    assert str(caught.value).startswith(f"{root.resolve() / 'tenant_template.json'}: ")
    assert "no tier 'free'" in str(caught.value)


def test_config_template_lacking_a_tier_names_the_file(tmp_path: Path) -> None:
    def drop_free(document: dict[str, Any]) -> None:
        del document["tiers"]["free"]

    root = user_templates(tmp_path, "config_template.json", drop_free)
    with pytest.raises(TemplateError) as caught:
        ConfigTemplate.load(TemplateDirectory(root))
    assert str(caught.value).startswith(f"{root.resolve() / 'config_template.json'}: ")


def tier_feature(document: dict[str, Any]) -> None:
    document["tiers"]["premium"]["features"].append("no_such_flag")


def negative_default(document: dict[str, Any]) -> None:
    document["defaults"]["limits"]["api_calls"] = -5


def null_setting(document: dict[str, Any]) -> None:
    document["tiers"]["enterprise"]["settings"]["region"] = None


@pytest.mark.parametrize(
    ("edit", "tier", "key"),
    [
        (tier_feature, "premium", "no_such_flag"),
        (negative_default, "free", "limits.api_calls"),
        (null_setting, "enterprise", "settings.region"),
    ],
)
def test_config_template_with_a_refused_value_is_a_template_error_naming_file_and_tier(
    tmp_path: Path, edit: Edit, tier: str, key: str
) -> None:
    root = user_templates(tmp_path, "config_template.json", edit)
    with pytest.raises(TemplateError) as caught:
        ConfigTemplate.load(TemplateDirectory(root))
    assert root.resolve() / "config_template.json" == caught.value.path
    assert f"tier {tier!r}" in str(caught.value)
    assert key in str(caught.value)


def fixture_twice_in_tier(document: dict[str, Any]) -> None:
    document["tiers"]["free"].append(document["tiers"]["free"][0])


def table_twice_in_fixture(document: dict[str, Any]) -> None:
    document["fixtures"]["starter_catalog"]["tables"].append("users")


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (fixture_twice_in_tier, "tier 'free' names fixture 'starter_catalog' twice"),
        (table_twice_in_fixture, "fixture 'starter_catalog' names table 'users' twice"),
    ],
)
def test_tenant_template_naming_a_fixture_or_table_twice_is_refused_naming_the_file(
    tmp_path: Path, edit: Edit, said: str
) -> None:
    root = user_templates(tmp_path, "tenant_template.json", edit)
    with pytest.raises(TemplateError) as caught:
        free_tier_fixtures(root)
    assert root.resolve() / "tenant_template.json" == caught.value.path
    assert f"invalid tenant template: {said}" == caught.value.message


def test_tenant_template_field_error_names_the_field(tmp_path: Path) -> None:
    def text_version(document: dict[str, Any]) -> None:
        document["version"] = "one"

    root = user_templates(tmp_path, "tenant_template.json", text_version)
    with pytest.raises(TemplateError) as caught:
        free_tier_fixtures(root)
    assert caught.value.message.endswith(" at version")
