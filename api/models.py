"""Registry tables: the asset hierarchy, credentials, and what people add to alarms.

Cluster -> factory -> hall -> line -> machine (ISA-95 enterprise/site/area/line/unit).
Ids follow the data contract (``[a-z0-9-]{1,32}``) and are unique within their factory,
as in telemetry topics; machines of two factories may share an id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base

__all__ = [
    "AlarmAck",
    "AlarmComment",
    "ApiKey",
    "Article",
    "Factory",
    "GatewayCredential",
    "Hall",
    "Line",
    "Machine",
]


def _factory_fk() -> sa.ForeignKey:
    return sa.ForeignKey("factory.id", ondelete="CASCADE")


def _hall_fk() -> sa.ForeignKeyConstraint:
    """(factory_id, hall_id) names a hall of the same factory."""
    return sa.ForeignKeyConstraint(
        ["factory_id", "hall_id"], ["hall.factory_id", "hall.id"], ondelete="CASCADE"
    )


class Factory(Base):
    """A mill (site): its time zone and shift calendar cut shifts in local time."""

    __tablename__ = "factory"
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    cluster: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str] = mapped_column(sa.String(200))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    shifts: Mapped[str] = mapped_column(sa.String(8), default="3x8")
    shift_start: Mapped[str] = mapped_column(sa.String(5), default="06:00")


class Hall(Base):
    """An area of a factory (weaving, knitting, wet processing, finishing)."""

    __tablename__ = "hall"
    factory_id: Mapped[str] = mapped_column(_factory_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")


class Line(Base):
    """A production line inside a hall."""

    __tablename__ = "line"
    __table_args__ = (_hall_fk(),)
    factory_id: Mapped[str] = mapped_column(_factory_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    hall_id: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str] = mapped_column(sa.String(200), default="")


class Article(Base):
    """A fabric style/article; ``family`` groups comparable articles for benchmarks."""

    __tablename__ = "article"
    factory_id: Mapped[str] = mapped_column(_factory_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    family: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)


class Machine(Base):
    """A machine (unit) with its class, make and static parameters."""

    __tablename__ = "machine"
    __table_args__ = (_hall_fk(),)
    factory_id: Mapped[str] = mapped_column(_factory_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    hall_id: Mapped[str] = mapped_column(sa.String(32))
    line_id: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    machine_type: Mapped[str] = mapped_column(sa.String(32))
    vendor: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    model: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    article_id: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)


class ApiKey(Base):
    """An API credential: only a hash of its secret is stored; revoked keys stay listed."""

    __tablename__ = "api_key"
    id: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(sa.String(64))
    role: Mapped[str] = mapped_column(sa.String(32))
    factory_id: Mapped[str | None] = mapped_column(_factory_fk(), nullable=True)
    label: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)


class GatewayCredential(Base):
    """A gateway's broker login; ``passwd_line`` is Mosquitto's hashed ``user:hash`` line."""

    __tablename__ = "gateway_credential"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    factory_id: Mapped[str] = mapped_column(_factory_fk())
    passwd_line: Mapped[str] = mapped_column(sa.String(400))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)


class AlarmAck(Base):
    """Who acknowledged an alarm and when (alarms themselves live in InfluxDB)."""

    __tablename__ = "alarm_ack"
    factory_id: Mapped[str] = mapped_column(_factory_fk(), primary_key=True)
    alarm_id: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    by_key: Mapped[str] = mapped_column(sa.String(16))
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class AlarmComment(Base):
    """A comment on an alarm."""

    __tablename__ = "alarm_comment"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    factory_id: Mapped[str] = mapped_column(_factory_fk(), index=True)
    alarm_id: Mapped[str] = mapped_column(sa.String(120), index=True)
    by_key: Mapped[str] = mapped_column(sa.String(16))
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    text: Mapped[str] = mapped_column(sa.String(2000))
