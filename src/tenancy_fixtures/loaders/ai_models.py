"""AIModelLoader: the AI model configurations a tenant's agents may use."""

from __future__ import annotations

from tenancy_fixtures.loaders.data_loader import DataLoader

__all__ = ["AIModelLoader"]


class AIModelLoader(DataLoader):
    """Loads AI model configurations: provider, model, task, parameters, defaults."""

    loader_name = "ai_models"
    domain_tables = frozenset({"ai_models"})
