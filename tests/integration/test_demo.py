"""The demo (``make demo``) with a user's template directory, on both backends."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.errors import TemplateError, TenantNotFoundError
from tenancy_fixtures.fixtures.templates import BUILTIN_TEMPLATE_DIR
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.spotify.demo import DEMO_TENANTS, run_demo


def escaping_enterprise_templates(tmp_path: Path) -> Path:
    """The built-in templates, but the enterprise tier's collaboration fixture names a
    set outside the template directory."""
    root = tmp_path / "templates"
    shutil.copytree(BUILTIN_TEMPLATE_DIR, root)
    path = root / "tenant_template.json"
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    document["fixtures"]["collaboration"]["source"] = "../elsewhere"
    path.write_text(json.dumps(document), encoding="utf-8")
    return root


async def test_demo_tenant_whose_load_is_refused_is_not_left_behind(
    settings: Settings, tmp_path: Path
) -> None:
    templates = escaping_enterprise_templates(tmp_path)
    async with FixtureManager(settings.model_copy(update={"template_dir": templates})) as manager:
        try:
            with pytest.raises(TemplateError):
                await run_demo(manager)
            ids = {status.tenant_id for status in await manager.list_tenants()}
            assert {"demo_free", "demo_premium"} == {t for t in ids if t.startswith("demo_")}
        finally:
            for tenant in DEMO_TENANTS:
                with contextlib.suppress(TenantNotFoundError):
                    await manager.drop_tenant(tenant.tenant_id)
