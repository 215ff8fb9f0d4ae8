"""Admin endpoints of the asset registry under ``/v1/registry`` (admin keys only).

The router gathers four parts: the asset hierarchy (:mod:`api.routes.registry_assets`),
adoption of machines seen in telemetry (:mod:`api.routes.registry_adoption`), and API
keys, gateway logins and the broker's password and ACL files
(:mod:`api.routes.registry_access`). Every route answers 403 to any role but admin; the
gate is on this router, so a route added to a part cannot forget it.

Example
-------
>>> router.prefix, router.tags
('/v1/registry', ['registry'])
"""

from fastapi import APIRouter, Depends

from api.auth import Role, require
from api.routes import registry_access, registry_adoption, registry_assets
from api.routes.registry_common import problems

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/registry",
    tags=["registry"],
    dependencies=[Depends(require(Role.ADMIN))],
    responses=problems(),
)
router.include_router(registry_assets.router)
router.include_router(registry_adoption.router)
router.include_router(registry_access.router)
