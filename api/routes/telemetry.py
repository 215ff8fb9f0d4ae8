"""Signal history of one machine of your factory, downsampled to a bucket width."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.params import TimeRange, time_range
from api.problems import PROBLEM_RESPONSES, ProblemError
from api.telemetry import Aggregate, numeric_fields, pick_interval_s, read_buckets
from api.tenancy import MachineId, Tenant, engineer, machine_in
from millwatch.contract import MACHINE_TYPES

router = APIRouter(prefix="/v1/machines", tags=["telemetry"])
#: Any numeric signal of any machine type; the machine's own type narrows it (422).
SignalName = Literal[tuple(sorted({f for t in MACHINE_TYPES for f in numeric_fields(t)}))]
_PROBLEMS = {k: PROBLEM_RESPONSES[k] for k in (400, 401, 403, 404, 422, 503)}


class Telemetry(BaseModel):
    """Columns of one machine's signals: ``values[field][i]`` belongs to ``time[i]``."""

    machine_id: str = Field(examples=["l0001"])
    machine_type: str = Field(examples=["loom_airjet"])
    aggregate: str = Field(examples=["mean"])
    interval_s: int = Field(description="Bucket width", examples=[60])
    source: str = Field(
        description="raw samples, the 60-s table, or both (1m+raw: the table up to its "
        "newest bucket, raw samples after)",
        examples=["1m+raw"],
    )
    time: list[datetime] = Field(description="Bucket starts (UTC)")
    values: dict[str, list[float | None]] = Field(examples=[{"speed_rpm": [812.3, 811.9]}])


@router.get(
    "/{machine_id}/telemetry",
    response_model=Telemetry,
    summary="Downsampled signals of one machine",
    responses=_PROBLEMS,
)
def machine_telemetry(
    tenant: Annotated[Tenant, Depends(engineer)],
    machine_id: MachineId,
    span: Annotated[TimeRange, Depends(time_range)],
    field: Annotated[
        list[SignalName],
        Query(
            min_length=1,
            max_length=40,
            description="Signal names of the machine's type (repeat for several)",
            examples=[["speed_rpm"]],
        ),
    ],
    interval_s: Annotated[
        int | None,
        Query(ge=1, le=86_400, description="Bucket width; default: fits max_points"),
    ] = None,
    aggregate: Annotated[Aggregate, Query(description="Reduction per bucket")] = "mean",
) -> Telemetry:
    """Buckets of ``interval_s`` over the range; unknown fields are a 422 problem."""
    machine = machine_in(tenant, machine_id)
    known = numeric_fields(machine.machine_type)
    unknown = [f for f in field if f not in known]
    if unknown:
        raise ProblemError(
            422,
            "Unknown field",
            f"{', '.join(repr(f) for f in unknown[:5])} not fields of {machine.machine_type}; "
            f"known: {', '.join(known)}",
        )
    span_s = (span.end_ms - span.start_ms) / 1000
    max_points = tenant.ctx.settings.max_points
    interval = interval_s or pick_interval_s(span_s, max_points)
    if span_s / interval > max_points:
        raise ProblemError(
            400,
            "Too many points",
            f"{span_s / interval:.0f} buckets of {interval} s exceed {max_points}; "
            "widen interval_s or shorten the range",
        )
    fields = list(dict.fromkeys(field))
    rows, source = read_buckets(
        tenant.ctx.influx,
        tenant.database,
        machine.id,
        MACHINE_TYPES[machine.machine_type].measurement,
        fields,
        aggregate,
        span.start_ms,
        span.end_ms,
        interval,
    )
    return Telemetry(
        machine_id=machine.id,
        machine_type=machine.machine_type,
        aggregate=aggregate,
        interval_s=interval,
        source=source,
        time=[datetime.fromtimestamp(r[0] / 1000, UTC) for r in rows],
        values={f: [r[i + 1] for r in rows] for i, f in enumerate(fields)},
    )
