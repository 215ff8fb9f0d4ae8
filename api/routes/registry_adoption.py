"""Adoption: machines that send telemetry but are not in the registry.

One InfluxQL query per listing finds every machine with raw data in the window::

    SELECT "seq" FROM "dye","hall_env","knit","loom","stenter" WHERE time > $since
    GROUP BY "machine","hall","type" ORDER BY time DESC LIMIT 1

``ORDER BY time DESC LIMIT 1`` per group reads each series backwards from the window's
end and stops at its first point, so the cost grows with the number of series (a few per
machine), not with the rows of the window: a week of 1-Hz data weighs no more than an
hour. It also gives each machine's hall, type and last-seen time, which ``SHOW TAG
VALUES`` (index only, but no time, one tag at a time) and ``last()`` (which, on 1.x,
scans every point of the window) do not. Registered machines are dropped in Python.

Example
-------
>>> from millwatch.influxql import Series
>>> rows = seen_machines_from([Series({"machine": "l9", "hall": "weave1",
...     "type": "loom_airjet"}, ["time", "seq"], [[1767168000000, 7]])])
>>> rows["l9"].hall_id, rows["l9"].last_seen.isoformat()
('weave1', '2025-12-31T08:00:00+00:00')
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.context import AppContext, context
from api.models import Hall, Machine
from api.params import Page
from api.problems import ProblemError
from api.routes.registry_assets import MACHINES
from api.routes.registry_common import (
    ID_REGEX,
    AdminDep,
    FactoryPath,
    PageDep,
    SessionDep,
    as_public,
    commit,
    conflict,
    get_factory,
    not_found,
    paged,
    problems,
)
from api.routes.registry_schemas import MachineCreate, MachinePublic
from millwatch.contract import ID_PATTERN, MACHINE_TYPES, factory_database
from millwatch.influxql import InfluxQL, QueryError, Series

__all__ = ["AdoptBody", "UnregisteredMachine", "router", "seen_machines", "seen_machines_from"]

router = APIRouter()

RAW_MEASUREMENTS: Final = tuple(sorted({t.measurement for t in MACHINE_TYPES.values()}))
_FROM: Final = ",".join(f'"{m}"' for m in RAW_MEASUREMENTS)
_SEEN: Final = (
    f'SELECT "seq" FROM {_FROM} WHERE time > $since{{where}} '
    'GROUP BY "machine","hall","type" ORDER BY time DESC LIMIT 1'
)

WindowDep = Annotated[
    float,
    Query(
        gt=0,
        le=24 * 400,
        description="How far back to look for telemetry, in hours",
        examples=[168],
    ),
]


class UnregisteredMachine(BaseModel):
    """A machine seen in telemetry that the registry does not know."""

    id: str = Field(examples=["l0049"])
    hall_id: str = Field(examples=["weave1"])
    machine_type: str = Field(examples=["loom_airjet"])
    last_seen: datetime = Field(examples=["2026-01-05T06:00:00Z"])


class AdoptBody(BaseModel):
    """What telemetry cannot tell about an adopted machine (all optional)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"vendor": "Toyota", "params": {"width_cm": 190}}]},
    )

    line_id: str | None = Field(None, pattern=ID_REGEX)
    vendor: str | None = Field(None, max_length=100)
    model: str | None = Field(None, max_length=100)
    article_id: str | None = Field(None, pattern=ID_REGEX)
    params: dict[str, float | int | str | bool] = Field(default_factory=dict, max_length=64)


def seen_machines_from(series: list[Series]) -> dict[str, UnregisteredMachine]:
    """The newest (hall, type, time) of each machine in the query's series."""
    seen: dict[str, UnregisteredMachine] = {}
    for s in series:
        machine, hall, kind = (s.tags.get(k, "") for k in ("machine", "hall", "type"))
        if not (s.values and ID_PATTERN.fullmatch(machine) and ID_PATTERN.fullmatch(hall)):
            continue
        if kind not in MACHINE_TYPES:
            continue
        moment = datetime.fromtimestamp(s.values[0][0] / 1000, UTC)
        if machine not in seen or moment > seen[machine].last_seen:
            seen[machine] = UnregisteredMachine(
                id=machine, hall_id=hall, machine_type=kind, last_seen=moment
            )
    return seen


def seen_machines(
    influx: InfluxQL, factory_id: str, window: timedelta, machine_id: str | None = None
) -> dict[str, UnregisteredMachine]:
    """Machines with raw telemetry in ``factory_id`` during the last ``window``."""
    since = datetime.now(UTC) - window
    params: dict[str, Any] = {"since": since.isoformat().replace("+00:00", "Z")}
    where = ""
    if machine_id is not None:
        where, params["machine"] = ' AND "machine" = $machine', machine_id
    try:
        series = influx.query(factory_database(factory_id), _SEEN.format(where=where), params)
    except QueryError as exc:
        raise ProblemError(503, "InfluxDB unavailable", "cannot read telemetry now") from exc
    return seen_machines_from(series)


def _registered(session: SessionDep, factory_id: str) -> set[str]:
    query = sa.select(Machine.id).where(Machine.factory_id == factory_id)
    return set(session.scalars(query).all())


@router.get(
    "/factories/{factory_id}/unregistered",
    response_model=Page[UnregisteredMachine],
    responses=problems(404, 422, 503),
    summary="Machines seen in telemetry but not registered",
)
def list_unregistered(
    _: AdminDep,
    session: SessionDep,
    ctx: Annotated[AppContext, Depends(context)],
    factory_id: FactoryPath,
    page: PageDep,
    request: Request,
    window_h: WindowDep = 168,
) -> Any:
    """Machines with telemetry in the window that the registry lacks, by id."""
    get_factory(session, factory_id)
    seen = seen_machines(ctx.influx, factory_id, timedelta(hours=window_h))
    known = _registered(session, factory_id)
    items = [m for machine_id, m in sorted(seen.items()) if machine_id not in known]
    return paged(items, page, request)


@router.post(
    "/factories/{factory_id}/unregistered/{machine_id}/adopt",
    status_code=201,
    response_model=MachinePublic,
    responses=problems(404, 409, 422, 503),
    summary="Register a machine seen in telemetry",
)
def adopt(
    _: AdminDep,
    session: SessionDep,
    ctx: Annotated[AppContext, Depends(context)],
    factory_id: FactoryPath,
    machine_id: Annotated[str, Path(pattern=ID_REGEX, examples=["l0049"])],
    body: Annotated[AdoptBody | None, Body()] = None,
    window_h: WindowDep = 168,
) -> Any:
    """Register the machine with the hall and type of its newest telemetry.

    The hall is created when the registry lacks it.
    """
    get_factory(session, factory_id)
    if session.get(Machine, (factory_id, machine_id)) is not None:
        raise conflict(f"machine {machine_id!r} is already registered")
    seen = seen_machines(ctx.influx, factory_id, timedelta(hours=window_h), machine_id)
    if machine_id not in seen:
        raise not_found("machine seen in telemetry", machine_id, factory_id)
    found = seen[machine_id]
    if session.get(Hall, (factory_id, found.hall_id)) is None:
        session.add(Hall(factory_id=factory_id, id=found.hall_id, name=""))
        session.flush()
    extra = (body or AdoptBody()).model_dump()
    create = MachineCreate(
        id=machine_id, hall_id=found.hall_id, machine_type=found.machine_type, **extra
    )
    row = MACHINES.add(session, factory_id, create)
    commit(session, f"machine {machine_id!r} was registered meanwhile")
    return as_public(MachinePublic, row)
