"""Shift and day KPIs of your factory per machine, hall or the whole factory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from api.kpis import KpiRow, Level, Period, read_shift_rows, roll_up, to_csv
from api.params import Page, PageParams, TimeRange, page_of, page_params, time_range
from api.problems import PROBLEM_RESPONSES
from api.routes.machines import HallId, MachineType
from api.tenancy import Tenant, engineer

router = APIRouter(prefix="/v1/kpis", tags=["kpis"])
_PROBLEMS = {k: PROBLEM_RESPONSES[k] for k in (400, 401, 403, 422, 503)}


class KpiView(BaseModel):
    """KPIs of one machine, hall or factory for one machine type and shift or day."""

    level: Level = Field(examples=["machine"])
    key: str = Field(description="Machine id, hall id or factory id", examples=["l0001"])
    machine_type: str = Field(examples=["loom_airjet"])
    period: str = Field(
        description="Shift label (local date/shift) or local date", examples=["2026-01-05/A"]
    )
    start: datetime = Field(description="Start of the (first) shift")
    machines: int = Field(description="Machines behind the row", examples=[1])
    kpis: dict[str, float] = Field(
        examples=[{"oee": 0.81, "efficiency": 0.88, "stops_per_1e5_picks": 9.7}],
        description="KPI name -> value; names, units and formulas in analytics/kpi/shift.py",
    )


class KpiQuery:
    """The filters shared by the JSON and CSV forms."""

    def __init__(
        self,
        span: Annotated[TimeRange, Depends(time_range)],
        level: Annotated[Level, Query(description="Roll-up level")] = "machine",
        period: Annotated[Period, Query(description="Shift or local production day")] = "shift",
        hall: HallId = None,
        machine_type: MachineType = None,
        machine: Annotated[
            str | None, Query(pattern=r"^[a-z0-9-]{1,32}$", examples=["l0001"])
        ] = None,
    ) -> None:
        self.span, self.level, self.period = span, level, period
        self.filters = {"hall": hall, "type": machine_type, "machine": machine}

    def rows(self, tenant: Tenant) -> list[KpiRow]:
        """The rolled-up rows of the tenant's factory."""
        stored = read_shift_rows(
            tenant.ctx.influx, tenant.database, self.span.start_ms, self.span.end_ms, self.filters
        )
        return roll_up(stored, self.level, self.period)


def _view(row: KpiRow, level: Level) -> KpiView:
    return KpiView(
        level=level,
        key=row.key,
        machine_type=row.machine_type,
        period=row.period,
        start=datetime.fromtimestamp(row.start_ms / 1000, UTC),
        machines=row.machines,
        kpis=row.kpis,
    )


@router.get(
    "",
    response_model=Page[KpiView],
    summary="KPIs per machine, hall or factory and shift or day",
    responses=_PROBLEMS,
)
def list_kpis(
    request: Request,
    tenant: Annotated[Tenant, Depends(engineer)],
    query: Annotated[KpiQuery, Depends()],
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[KpiView]:
    """Shifts starting in the range; hall and factory rows roll machines up."""
    rows = query.rows(tenant)
    chosen = rows[page.offset : page.offset + page.limit]
    return page_of([_view(r, query.level) for r in chosen], page, request, len(rows))


@router.get(
    ".csv",
    response_class=PlainTextResponse,
    summary="The same KPI table as CSV (every row, no paging)",
    responses={200: {"content": {"text/csv": {}}, "description": "CSV table"}, **_PROBLEMS},
)
def export_kpis(
    tenant: Annotated[Tenant, Depends(engineer)], query: Annotated[KpiQuery, Depends()]
) -> PlainTextResponse:
    """One line per row; columns: key, machine_type, period, start_ms, machines, KPIs."""
    body = to_csv(query.rows(tenant), query.level)
    filename = f"kpis-{tenant.factory_id}-{query.level}-{query.period}.csv"
    return PlainTextResponse(
        body,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
