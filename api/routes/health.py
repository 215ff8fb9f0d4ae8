"""Liveness and readiness: is the process up, and can it reach what it reads."""

from __future__ import annotations

from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.auth import Principal, current_principal
from api.context import AppContext, context

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Whether the API and its dependencies answer."""

    status: Literal["ok", "degraded"]
    influxdb: bool
    registry: bool


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency does not answer"}},
    summary="Health of the API, InfluxDB and the registry (no credential needed)",
)
def health(ctx: Annotated[AppContext, Depends(context)]) -> JSONResponse:
    """200 when InfluxDB and the registry answer, 503 (same body) when one does not."""
    influx_ok = ctx.influx.ping()
    try:
        with ctx.database.session() as session:
            session.execute(sa.text("SELECT 1"))
        registry_ok = True
    except sa.exc.SQLAlchemyError:
        registry_ok = False
    ok = influx_ok and registry_ok
    body = Health(status="ok" if ok else "degraded", influxdb=influx_ok, registry=registry_ok)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


class Me(BaseModel):
    """The caller as the API sees it."""

    key_id: str
    role: str
    factory_id: str | None


@router.get("/v1/me", response_model=Me, summary="Who the credential belongs to", tags=["auth"])
def me(principal: Annotated[Principal, Depends(current_principal)]) -> Me:
    """The role and (engineers only) factory of the calling key."""
    return Me(key_id=principal.key_id, role=principal.role.value, factory_id=principal.factory_id)
