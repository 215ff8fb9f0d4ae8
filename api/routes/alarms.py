"""Anomaly scores and alarms of your factory; acknowledge and comment on alarms."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from api.alarms import ALARM_ID_PATTERN, Acknowledgement, AlarmView, find_alarm, parse_alarm_id
from api.alarms import read_alarms as read_alarm_points
from api.models import AlarmAck, AlarmComment
from api.params import Page, PageParams, TimeRange, page_of, page_params, time_range
from api.problems import PROBLEM_RESPONSES, ProblemError
from api.routes.machines import MachineType
from api.tenancy import Tenant, engineer
from millwatch.influxql import span_where

router = APIRouter(prefix="/v1", tags=["alarms"])
_PROBLEMS = {k: PROBLEM_RESPONSES[k] for k in (400, 401, 403, 404, 422, 503)}
AlarmId = Annotated[
    str,
    Path(pattern=ALARM_ID_PATTERN, examples=["1767571200000.loom_airjet.l0001.process"]),
]
MachineFilter = Annotated[str | None, Query(pattern=r"^[a-z0-9-]{1,32}$", examples=["l0001"])]


class AnomalyPoint(BaseModel):
    """One machine's anomaly score for one 60-s bucket."""

    machine_id: str = Field(examples=["l0001"])
    machine_type: str = Field(examples=["loom_airjet"])
    time: datetime
    score: float = Field(examples=[0.42], description="0-1, higher = more unusual")
    z: float | None = Field(None, description="Robust sds of the top signal")
    signal: str | None = Field(None, examples=["speed_rpm"])


@router.get(
    "/anomalies",
    response_model=Page[AnomalyPoint],
    summary="Anomaly scores per machine and minute, newest first",
    responses=_PROBLEMS,
)
def list_anomalies(
    request: Request,
    tenant: Annotated[Tenant, Depends(engineer)],
    span: Annotated[TimeRange, Depends(time_range)],
    page: Annotated[PageParams, Depends(page_params)],
    machine: MachineFilter = None,
    min_score: Annotated[float, Query(ge=0, le=1, description="Only scores at least this")] = 0,
) -> Page[AnomalyPoint]:
    """Scores the analytics service stored, paged inside InfluxDB (LIMIT/OFFSET)."""
    where, params = span_where(span.start_ms, span.end_ms, {"machine": machine})
    where += ' AND "score" >= $min_score'
    # Scores carry 6 decimals at most; a denormal such as 5e-324 breaks InfluxDB's parser.
    params["min_score"] = round(float(min_score), 6)
    influx, db = tenant.ctx.influx, tenant.database
    counted = influx.query(db, f'SELECT count("score") FROM "anomaly" WHERE {where}', params)
    total = int(counted[0].values[0][1]) if counted else 0
    series = influx.query(
        db,
        f'SELECT "score", "z", "signal", "machine", "type" FROM "anomaly" WHERE {where} '
        f"ORDER BY time DESC LIMIT {page.limit} OFFSET {page.offset}",
        params,
    )
    rows = [dict(zip(s.columns, v, strict=True)) for s in series for v in s.values]
    items = [
        AnomalyPoint(
            machine_id=r["machine"],
            machine_type=r["type"],
            time=datetime.fromtimestamp(r["time"] / 1000, UTC),
            score=r["score"],
            z=r.get("z"),
            signal=r.get("signal"),
        )
        for r in rows
    ]
    return page_of(items, page, request, total)


def _annotate(tenant: Tenant, alarms: list[AlarmView]) -> list[AlarmView]:
    """Add acknowledgements and comment counts from the registry."""
    ids = [a.id for a in alarms]
    with tenant.ctx.database.session() as session:
        acks = {
            a.alarm_id: a
            for a in session.execute(
                sa.select(AlarmAck).where(
                    AlarmAck.factory_id == tenant.factory_id, AlarmAck.alarm_id.in_(ids)
                )
            ).scalars()
        }
        counts = dict(
            session.execute(
                sa.select(AlarmComment.alarm_id, sa.func.count())
                .where(AlarmComment.factory_id == tenant.factory_id, AlarmComment.alarm_id.in_(ids))
                .group_by(AlarmComment.alarm_id)
            ).all()
        )
    for alarm in alarms:
        ack = acks.get(alarm.id)
        if ack is not None:
            alarm.acknowledged = Acknowledgement(by_key=ack.by_key, at=ack.at)
        alarm.comments = counts.get(alarm.id, 0)
    return alarms


@router.get(
    "/alarms",
    response_model=Page[AlarmView],
    summary="Alarms of your factory, newest first",
    responses=_PROBLEMS,
)
def list_alarms(
    request: Request,
    tenant: Annotated[Tenant, Depends(engineer)],
    span: Annotated[TimeRange, Depends(time_range)],
    page: Annotated[PageParams, Depends(page_params)],
    state: Annotated[
        Literal["open", "closed", "all"],
        Query(description="open: every open alarm that started before end, whatever start"),
    ] = "all",
    machine: MachineFilter = None,
    machine_type: MachineType = None,
    kind: Annotated[str | None, Query(pattern=r"^[a-z:_]{1,40}$", examples=["process"])] = None,
    acknowledged: Annotated[bool | None, Query()] = None,
) -> Page[AlarmView]:
    """Alarms starting in the range (open ones over the longest allowed range)."""
    start_ms = span.start_ms
    if state == "open":
        start_ms = span.end_ms - round(tenant.ctx.settings.max_range_days * 86_400_000)
    filters = {"machine": machine, "type": machine_type, "kind": kind}
    alarms = read_alarm_points(tenant.ctx.influx, tenant.database, start_ms, span.end_ms, filters)
    if state != "all":
        alarms = [a for a in alarms if a.open == (state == "open")]
    alarms = _annotate(tenant, alarms)
    if acknowledged is not None:
        alarms = [a for a in alarms if (a.acknowledged is not None) == acknowledged]
    return page_of(alarms[page.offset : page.offset + page.limit], page, request, len(alarms))


def _alarm(tenant: Tenant, text: str) -> AlarmView:
    key = parse_alarm_id(text)
    alarm = find_alarm(tenant.ctx.influx, tenant.database, key) if key else None
    if alarm is None:
        raise ProblemError(404, "Not found", f"no alarm {text!r} in your factory")
    return _annotate(tenant, [alarm])[0]


@router.get(
    "/alarms/{alarm_id}", response_model=AlarmView, summary="One alarm", responses=_PROBLEMS
)
def get_alarm(tenant: Annotated[Tenant, Depends(engineer)], alarm_id: AlarmId) -> AlarmView:
    """An alarm of your factory with its acknowledgement and comment count."""
    return _alarm(tenant, alarm_id)


@router.post(
    "/alarms/{alarm_id}/ack",
    response_model=AlarmView,
    summary="Acknowledge an alarm (idempotent: the first acknowledgement stays)",
    responses=_PROBLEMS,
)
def acknowledge_alarm(tenant: Annotated[Tenant, Depends(engineer)], alarm_id: AlarmId) -> AlarmView:
    """Record who acknowledged the alarm; acknowledging again changes nothing."""
    alarm = _alarm(tenant, alarm_id)
    if alarm.acknowledged is None:
        with tenant.ctx.database.session() as session:
            session.merge(
                AlarmAck(
                    factory_id=tenant.factory_id,
                    alarm_id=alarm.id,
                    by_key=tenant.principal.key_id,
                    at=datetime.now(UTC),
                )
            )
            session.commit()
    return _alarm(tenant, alarm_id)


class CommentIn(BaseModel):
    """A comment to add."""

    text: str = Field(min_length=1, max_length=2000, examples=["Weft sensor cleaned"])


class Comment(BaseModel):
    """A comment on an alarm."""

    id: int
    by_key: str
    at: datetime
    text: str


@router.get(
    "/alarms/{alarm_id}/comments",
    response_model=list[Comment],
    summary="Comments on an alarm, oldest first",
    responses=_PROBLEMS,
)
def list_comments(tenant: Annotated[Tenant, Depends(engineer)], alarm_id: AlarmId) -> list[Comment]:
    """Every comment on the alarm."""
    alarm = _alarm(tenant, alarm_id)
    with tenant.ctx.database.session() as session:
        rows = session.execute(
            sa.select(AlarmComment)
            .where(AlarmComment.factory_id == tenant.factory_id, AlarmComment.alarm_id == alarm.id)
            .order_by(AlarmComment.id)
        ).scalars()
        return [Comment(id=c.id, by_key=c.by_key, at=c.at, text=c.text) for c in rows]


@router.post(
    "/alarms/{alarm_id}/comments",
    response_model=Comment,
    status_code=201,
    summary="Comment on an alarm",
    responses=_PROBLEMS,
)
def add_comment(
    tenant: Annotated[Tenant, Depends(engineer)], alarm_id: AlarmId, comment: CommentIn
) -> Comment:
    """Store a comment by the calling key."""
    alarm = _alarm(tenant, alarm_id)
    row = AlarmComment(
        factory_id=tenant.factory_id,
        alarm_id=alarm.id,
        by_key=tenant.principal.key_id,
        at=datetime.now(UTC),
        text=comment.text,
    )
    with tenant.ctx.database.session() as session:
        session.add(row)
        session.commit()
        return Comment(id=row.id, by_key=row.by_key, at=row.at, text=row.text)
