"""The template directory: tenant, config and schema templates plus fixture sets.

Every path a template names resolves inside the template directory; anything that
would leave it (``..``, an absolute path, a symlink pointing out) is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tenancy_fixtures.errors import FixtureSetError, TemplateError
from tenancy_fixtures.loaders.fixture_sets import resolve_inside

__all__ = ["BUILTIN_TEMPLATE_DIR", "TemplateDirectory"]

BUILTIN_TEMPLATE_DIR = Path(__file__).parent / "templates"


class TemplateDirectory:
    """A directory of templates, read only through paths that stay inside it."""

    TENANT_TEMPLATE = "tenant_template.json"
    CONFIG_TEMPLATE = "config_template.json"
    SCHEMA_TEMPLATE = "schema_template.sql"

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or BUILTIN_TEMPLATE_DIR).resolve()
        if not self.root.is_dir():
            raise TemplateError("template directory does not exist", path=self.root)

    def resolve(self, relative: str) -> Path:
        """``relative`` as a path inside the template directory."""
        try:
            return resolve_inside(self.root, relative, what="template path")
        except FixtureSetError as exc:
            raise TemplateError(exc.message, path=self.root) from None

    def read_json(self, relative: str) -> dict[str, Any]:
        """A JSON object template; raises :class:`TemplateError` if missing or malformed."""
        path = self.resolve(relative)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TemplateError("template does not exist", path=path) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TemplateError(f"template is not valid JSON: {exc}", path=path) from None
        if not isinstance(document, dict):
            raise TemplateError("template must be a JSON object", path=path)
        return document
