"""A factory engineer's machines: registry data with live status, and their telemetry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from api.models import Machine
from api.params import Page, PageParams, page_of, page_params
from api.problems import PROBLEM_RESPONSES
from api.status import MachineStatus
from api.tenancy import MachineId, Tenant, engineer, machine_in, machines_of
from millwatch.contract import MACHINE_TYPES, STATES

router = APIRouter(prefix="/v1/machines", tags=["machines"])
_PROBLEMS = {k: PROBLEM_RESPONSES[k] for k in (401, 403, 404, 422, 503)}

MachineType = Annotated[
    str | None,
    Query(
        pattern="^(" + "|".join(MACHINE_TYPES) + ")$",
        description="Machine class",
        examples=["loom_airjet"],
    ),
]
HallId = Annotated[
    str | None, Query(pattern=r"^[a-z0-9-]{1,32}$", description="Hall id", examples=["weave1"])
]


class MachineView(BaseModel):
    """A registered machine and what it is doing now."""

    id: str = Field(examples=["l0001"])
    hall_id: str = Field(examples=["weave1"])
    line_id: str | None = None
    machine_type: str = Field(examples=["loom_airjet"])
    vendor: str | None = Field(None, examples=["Picanol"])
    model: str | None = Field(None, examples=["OMNIplus-i"])
    article_id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, examples=[{"width_cm": 190}])
    status: MachineStatus


def _views(tenant: Tenant, machines: list[Machine]) -> list[MachineView]:
    status = tenant.ctx.status.get(tenant.database, {m.id: m.machine_type for m in machines})
    return [
        MachineView(
            id=m.id,
            hall_id=m.hall_id,
            line_id=m.line_id,
            machine_type=m.machine_type,
            vendor=m.vendor,
            model=m.model,
            article_id=m.article_id,
            params=m.params or {},
            status=status[m.id],
        )
        for m in machines
    ]


@router.get(
    "",
    response_model=Page[MachineView],
    summary="Machines of your factory with live status",
    responses=_PROBLEMS,
)
def list_machines(
    request: Request,
    tenant: Annotated[Tenant, Depends(engineer)],
    page: Annotated[PageParams, Depends(page_params)],
    hall: HallId = None,
    machine_type: MachineType = None,
    state: Annotated[
        str | None,
        Query(pattern="^(" + "|".join([*STATES, "OFFLINE"]) + ")$", examples=["BREAKDOWN"]),
    ] = None,
) -> Page[MachineView]:
    """State, since when, current stop reason and last sample of each machine."""
    machines = machines_of(tenant, hall, machine_type)
    if state is None:
        return page_of(
            _views(tenant, machines[page.offset : page.offset + page.limit]),
            page,
            request,
            total=len(machines),
        )
    views = [
        v
        for v in _views(tenant, machines)
        if (v.status.state == state) or (state == "OFFLINE" and not v.status.online)
    ]
    return page_of(views[page.offset : page.offset + page.limit], page, request, len(views))


@router.get(
    "/{machine_id}",
    response_model=MachineView,
    summary="One machine of your factory with live status",
    responses=_PROBLEMS,
)
def get_machine(tenant: Annotated[Tenant, Depends(engineer)], machine_id: MachineId) -> MachineView:
    """A machine's registry data and live status; 404 when your factory has no such machine."""
    return _views(tenant, [machine_in(tenant, machine_id)])[0]
