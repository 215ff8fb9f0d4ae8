"""Anonymised cross-factory benchmarks, and the factories' aggregates for operators."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.auth import Principal, Role, require
from api.benchmark import BENCHMARK_KPIS, Band, factory_aggregates, make_band
from api.context import AppContext, context
from api.models import Factory
from api.params import Page, PageParams, TimeRange, page_of, page_params, time_range
from api.problems import PROBLEM_RESPONSES
from api.routes.machines import MachineType

router = APIRouter(prefix="/v1", tags=["benchmarks"])
_PROBLEMS = {k: PROBLEM_RESPONSES[k] for k in (400, 401, 403, 422, 503)}
_BENCH_ROLES = require(Role.FACTORY_ENGINEER, Role.CLUSTER_OPERATOR)


class Benchmark(BaseModel):
    """Percentile bands per machine class and KPI over a range."""

    min_factories: int = Field(description="Bands from fewer factories are withheld")
    bands: list[Band]


@router.get(
    "/benchmarks",
    response_model=Benchmark,
    summary="Percentile bands across factories; engineers also get their own position",
    responses=_PROBLEMS,
)
def benchmarks(
    principal: Annotated[Principal, Depends(_BENCH_ROLES)],
    ctx: Annotated[AppContext, Depends(context)],
    span: Annotated[TimeRange, Depends(time_range)],
    machine_type: MachineType = None,
) -> Benchmark:
    """p10/p50/p90 of each KPI per machine class, from the aggregates-only cluster database."""
    aggregates = factory_aggregates(ctx.influx, span.start_ms, span.end_ms, machine_type)
    by_type: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for (factory, kind), kpis in aggregates.items():
        by_type[kind][factory] = kpis
    k = ctx.settings.benchmark_min_factories
    bands = []
    for kind, factories in sorted(by_type.items()):
        for kpi in BENCHMARK_KPIS:
            values = {f: v[kpi] for f, v in factories.items() if kpi in v}
            if values:
                bands.append(make_band(kind, kpi, values, principal.factory_id, k))
    return Benchmark(min_factories=k, bands=bands)


class FactoryAggregate(BaseModel):
    """One factory's aggregate KPIs for one machine class over the range."""

    factory_id: str = Field(examples=["f01"])
    name: str | None = Field(None, examples=["Narayanganj Weaving"])
    machine_type: str = Field(examples=["loom_airjet"])
    kpis: dict[str, float] = Field(examples=[{"oee": 0.78, "machines": 48, "shifts": 21}])


@router.get(
    "/cluster/factories",
    response_model=Page[FactoryAggregate],
    summary="Every factory's aggregate KPIs per machine class (cluster operators)",
    responses=_PROBLEMS,
)
def cluster_factories(
    request: Request,
    _principal: Annotated[Principal, Depends(require(Role.CLUSTER_OPERATOR))],
    ctx: Annotated[AppContext, Depends(context)],
    span: Annotated[TimeRange, Depends(time_range)],
    page: Annotated[PageParams, Depends(page_params)],
    machine_type: MachineType = None,
) -> Page[FactoryAggregate]:
    """Aggregates only (no machine, hall or raw sample) from the cluster database."""
    aggregates = factory_aggregates(ctx.influx, span.start_ms, span.end_ms, machine_type)
    with ctx.database.session() as session:
        names = dict(session.execute(sa.select(Factory.id, Factory.name)).all())
    items = [
        FactoryAggregate(factory_id=f, name=names.get(f), machine_type=t, kpis=kpis)
        for (f, t), kpis in sorted(aggregates.items())
    ]
    chosen = items[page.offset : page.offset + page.limit]
    return page_of(chosen, page, request, len(items))
