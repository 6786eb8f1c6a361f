"""Django peers of the benchmarks: ``loaddata`` and django-tenants tenant creation.

A minimal Django project used only by ``bench/``: ``settings`` / ``tenant_settings``,
the ``spotify`` app (the Spotify tables as models) and the ``customers`` app
(django-tenants' tenant and domain). Importing this package does not import Django;
:func:`run_loaddata` and :func:`run_tenant_provisioning` run all Django work in
subprocesses against fresh databases they drop afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.django_baseline.runner import (
        run_loaddata,
        run_tenant_provisioning,
        run_tenant_testcase,
    )

__all__ = ["run_loaddata", "run_tenant_provisioning", "run_tenant_testcase"]


def __getattr__(name: str) -> Any:
    # Lazy, so the subprocesses' ``python -m bench.django_baseline.<module>`` does not
    # import the parent-side runner (and its imports) first.
    if name in __all__:
        from bench.django_baseline import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
