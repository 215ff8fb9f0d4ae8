"""A factory site's identity and working calendar, shared by simulators and analytics.

Shifts are cut on the factory's local wall clock, so every part that reasons about
shifts (the simulators' calendars, the analytics' shift KPIs) needs the same three
facts: the IANA time zone, the shift pattern and when the first shift starts.

Example
-------
>>> site = FactorySite(id="f01", timezone="Asia/Dhaka", shifts="3x8")
>>> site.shift_start, PATTERNS[site.shifts]
('06:00', ('A', 'B', 'C'))
"""

from __future__ import annotations

import re
from datetime import time
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator

from millwatch.contract import check_id

__all__ = ["PATTERNS", "FactorySite", "parse_hhmm", "parse_zone"]

#: Shift names per pattern; the day divides evenly among them (domain spec §5).
PATTERNS: Final[dict[str, tuple[str, ...]]] = {"3x8": ("A", "B", "C"), "2x12": ("A", "B")}
_HHMM: Final = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def parse_hhmm(text: str) -> time:
    """Wall-clock time from ``"HH:MM"`` (24 h).

    >>> parse_hhmm("06:00")
    datetime.time(6, 0)
    """
    match = _HHMM.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"time {text!r} must be HH:MM between 00:00 and 23:59")
    return time(int(match[1]), int(match[2]))


def parse_zone(name: str) -> ZoneInfo:
    """IANA time zone, or ``ValueError`` naming the bad zone.

    >>> parse_zone("Asia/Kolkata").key
    'Asia/Kolkata'
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"time zone {name!r} is not a known IANA name") from exc


class FactorySite(BaseModel):
    """A factory's id, time zone and shift pattern (``3x8`` or ``2x12`` from ``shift_start``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    timezone: str
    shifts: Literal["3x8", "2x12"] = "3x8"
    shift_start: str = "06:00"

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_id(value, "factory")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        parse_zone(value)
        return value

    @field_validator("shift_start")
    @classmethod
    def _shift_start(cls, value: str) -> str:
        parse_hhmm(value)
        return value
