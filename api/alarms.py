"""Alarms as the API shows them: InfluxDB's ``anomaly_alarm`` points plus people's notes.

The analytics service owns the alarm points (it rewrites a point when it finds the same
episode again); acknowledgements and comments live in the registry. An alarm's id is
made of what fixes its point — start, machine type, subject (machine, or hall for a hall
alarm) and kind — so it stays valid across passes and needs no table of its own.

Example
-------
>>> alarm_id(1767571200000, "loom_airjet", "l0001", "instrument:stuck")
'1767571200000.loom_airjet.l0001.instrument-stuck'
>>> parse_alarm_id("1767571200000.loom_airjet.l0001.instrument-stuck").kind
'instrument:stuck'
>>> parse_alarm_id(alarm_id(5, "loom_airjet", "l0001", "instrument:counter_reset")).kind
'instrument:counter_reset'

"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

from pydantic import BaseModel, Field

from millwatch.influxql import InfluxQL, Series, span_where

__all__ = [
    "ALARM_ID_PATTERN",
    "AlarmKey",
    "AlarmView",
    "alarm_id",
    "find_alarm",
    "parse_alarm_id",
    "read_alarms",
]

ALARM_ID_PATTERN: Final = r"^[0-9]{1,13}\.[a-z_]{1,32}\.[a-z0-9-]{1,32}\.[a-z_-]{1,40}$"
#: The latest time InfluxDB holds (int64 nanoseconds, in 2262), in ms.
MAX_MS: Final = (2**63 - 1) // 1_000_000
_FIELDS: Final = ("signal", "score", "z", "baseline", "detector", "end_ms", "machines")


class AlarmKey(NamedTuple):
    """What identifies an alarm point."""

    start_ms: int
    machine_type: str
    subject: str
    kind: str


def alarm_id(start_ms: int, machine_type: str, subject: str, kind: str) -> str:
    """The public id of an alarm."""
    return f"{start_ms}.{machine_type}.{subject}.{kind.replace(':', '-')}"


def parse_alarm_id(text: str) -> AlarmKey | None:
    """The key behind an id, or ``None`` when it is malformed."""
    if not re.fullmatch(ALARM_ID_PATTERN, text):
        return None
    start, machine_type, subject, kind = text.split(".")
    if int(start) > MAX_MS:
        return None
    return AlarmKey(int(start), machine_type, subject, kind.replace("-", ":", 1))


class Acknowledgement(BaseModel):
    """Who acknowledged an alarm (an API key id) and when."""

    by_key: str = Field(examples=["a1b2c3d4e5f6"])
    at: datetime


class AlarmView(BaseModel):
    """An anomaly alarm: where, which signal, how far from baseline, since when."""

    id: str = Field(examples=["1767571200000.loom_airjet.l0001.process"])
    machine_type: str = Field(examples=["loom_airjet"])
    kind: str = Field(examples=["process"], description="process, hall or instrument:<fault>")
    machine_id: str | None = Field(None, examples=["l0001"], description="None for hall alarms")
    hall_id: str | None = Field(None, examples=["weave1"])
    machines: list[str] = Field(default_factory=list, description="Members of a hall alarm")
    signal: str = Field(examples=["vib_rms_mm_s"], description="The most deviating signal")
    score: float = Field(examples=[0.97], description="Peak anomaly score, 0-1")
    z: float = Field(examples=[6.2], description="Robust standard deviations from baseline")
    baseline: float = Field(examples=[1.9], description="The signal's baseline value")
    detector: str = Field(examples=["robust_z"])
    start: datetime
    end: datetime | None = Field(None, description="None while the alarm is open")
    open: bool
    acknowledged: Acknowledgement | None = None
    comments: int = Field(0, description="Number of comments")


def _time(ms: float | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(float(ms) / 1000, UTC)


def _views(series: list[Series]) -> list[AlarmView]:
    out = []
    for s in series:
        for values in s.values:
            row: Mapping[str, Any] = dict(zip(s.columns, values, strict=True))
            machine = s.tags.get("machine") or None
            kind = s.tags.get("kind", "")
            subject = machine or s.tags.get("hall", "")
            out.append(
                AlarmView(
                    id=alarm_id(int(row["time"]), s.tags.get("type", ""), subject, kind),
                    machine_type=s.tags.get("type", ""),
                    kind=kind,
                    machine_id=machine,
                    hall_id=s.tags.get("hall") or None,
                    machines=[m for m in str(row.get("machines") or "").split(",") if m],
                    signal=str(row.get("signal") or ""),
                    score=float(row.get("score") or 0.0),
                    z=float(row.get("z") or 0.0),
                    baseline=float(row.get("baseline") or 0.0),
                    detector=str(row.get("detector") or ""),
                    start=_time(row["time"]),
                    end=_time(row.get("end_ms")),
                    open=row.get("end_ms") is None,
                )
            )
    return out


_SELECT = ", ".join(f'"{f}"' for f in _FIELDS)
_GROUP = 'GROUP BY "hall", "machine", "type", "kind"'


def read_alarms(
    influx: InfluxQL, db: str, start_ms: int, end_ms: int, filters: Mapping[str, str | None]
) -> list[AlarmView]:
    """Alarms starting in ``[start_ms, end_ms)``, newest first; tag ``filters`` bound."""
    where, params = span_where(start_ms, end_ms, filters)
    series = influx.query(
        db, f'SELECT {_SELECT} FROM "anomaly_alarm" WHERE {where} {_GROUP}', params
    )
    return sorted(_views(series), key=lambda a: (a.start, a.id), reverse=True)


def find_alarm(influx: InfluxQL, db: str, key: AlarmKey) -> AlarmView | None:
    """The alarm of ``key`` in ``db``, or ``None``."""
    series = influx.query(
        db,
        f'SELECT {_SELECT} FROM "anomaly_alarm" WHERE time = {key.start_ms}ms '
        f'AND "type" = $type AND "kind" = $kind {_GROUP}',
        {"type": key.machine_type, "kind": key.kind},
    )
    wanted = alarm_id(*key)
    return next((a for a in _views(series) if a.id == wanted), None)
