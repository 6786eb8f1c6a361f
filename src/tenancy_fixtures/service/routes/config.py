"""A tenant's config: read it, change part of it."""

from __future__ import annotations

from fastapi import APIRouter

from tenancy_fixtures.service.deps import Manager, TenantRead, TenantWrite, TokenDep
from tenancy_fixtures.service.models import ConfigPublic, ConfigUpdate
from tenancy_fixtures.service.problems import ServiceProblem, problem_responses

__all__ = ["router"]

router = APIRouter(prefix="/tenants/{tenant_id}/config", tags=["config"])


@router.get("", summary="Get a tenant's config", responses=problem_responses(400, 401, 403, 404))
async def get_config(tenant_id: TenantRead, manager: Manager) -> ConfigPublic:
    """The tenant's resolved config (served from the config cache)."""
    config = await manager.get_tenant_config(tenant_id)
    return ConfigPublic.model_validate(config.model_dump(mode="json"))


@router.patch(
    "",
    summary="Change a tenant's config",
    responses=problem_responses(400, 401, 403, 404, 409, 422, 503),
)
async def patch_config(
    tenant_id: TenantWrite, body: ConfigUpdate, manager: Manager, token: TokenDep
) -> ConfigPublic:
    """Change the tier, the tenant's extra feature flags, limits or settings; what the
    body leaves out stays. Audited; the cached config is invalidated. A limit lowered
    (or a lower tier) below what the tenant holds already is refused: 409. The tier,
    features and limits are what the tenant is entitled to, so a token scoped to the
    tenant may change its settings alone: 403 otherwise."""
    entitlements = [
        name for name in ("tier", "features", "limits") if getattr(body, name) is not None
    ]
    if token.tenant_id is not None and entitlements:
        raise ServiceProblem(
            403,
            "Forbidden",
            f"a token scoped to a tenant may change its settings, not its "
            f"{', '.join(entitlements)}: that takes a fleet token with scope write",
        )
    config = await manager.update_tenant_config(
        tenant_id,
        tier=body.tier,
        features=body.features,
        limits=body.limits,
        settings=body.settings,
    )
    return ConfigPublic.model_validate(config.model_dump(mode="json"))
