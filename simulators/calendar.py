"""Shift calendars: when a factory plans production, in its own local time.

A mill cuts its day into shifts on the wall clock of its site (domain spec §0, §5):
``3x8`` runs shifts A/B/C from ``shift_start`` (06/14/22 by default), ``2x12`` runs
A/B. A ``weekly_off`` day and planned maintenance windows take machines out of planned
time (``OFF_NOPLAN`` and ``PLANNED_MAINT`` in spec §2), which is what OEE divides by.

Shifts are cut in LOCAL time, so on a daylight-saving change the shift that spans it
lasts 7 h (spring forward) or 9 h (fall back) in a 3x8 pattern. That is correct: the
mill's clocks jump and the shift still ends at 06:00 on the wall. A boundary that
falls on a wall time the change skips is taken as that wall time in the old offset
(02:30 on a spring-forward night becomes 03:30 new time); an ambiguous wall time
(fall back) is its first occurrence.

The weekly off day is a production day: with ``shift_start = "06:00"`` and
``weekly_off = "friday"`` nothing is planned from Friday 06:00 to Saturday 06:00, so the
Thursday night shift runs to its end and every shift is wholly planned or not.
Maintenance windows cut across shifts and win over the off day.

Example
-------
>>> cal = ShiftCalendar("Asia/Dhaka", "3x8", weekly_off="friday")
>>> s = cal.state_at(1_767_240_000_000)  # 2026-01-01 04:00 UTC = 10:00 in Dhaka
>>> s.shift, s.shift_day.isoformat(), s.planned
('A', '2026-01-01', True)
>>> cal.planned_seconds(s.shift_start_ms, s.shift_end_ms)
(28800.0, 0.0)
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from millwatch.site import PATTERNS, parse_hhmm, parse_zone

__all__ = ["WEEKDAYS", "CalendarState", "MaintenanceWindow", "ShiftCalendar", "parse_weekday"]

WEEKDAYS: Final = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
MAX_MAINTENANCE_H: Final = 168.0


def parse_weekday(name: str) -> int:
    """Weekday number (Monday = 0) of a full or three-letter English name.

    >>> parse_weekday("Friday"), parse_weekday("sun")
    (4, 6)
    """
    key = name.strip().lower() if isinstance(name, str) else ""
    for number, day in enumerate(WEEKDAYS):
        if key in (day, day[:3]):
            return number
    raise ValueError(f"weekday {name!r} must be one of {', '.join(WEEKDAYS)}")


@dataclass(frozen=True)
class MaintenanceWindow:
    """A weekly planned-maintenance window: ``hours`` from ``start`` local time on ``weekday``.

    ``hours`` is elapsed time, so a window across a DST change still lasts ``hours``.

    >>> MaintenanceWindow("sunday", "06:00", 8).hours
    8
    """

    weekday: str
    start: str
    hours: float

    def __post_init__(self) -> None:
        parse_weekday(self.weekday)
        parse_hhmm(self.start)
        if not 0 < self.hours <= MAX_MAINTENANCE_H:
            raise ValueError(f"maintenance hours {self.hours} must be in (0, {MAX_MAINTENANCE_H}]")


@dataclass(frozen=True)
class CalendarState:
    """What the calendar says at one instant.

    ``planned`` is False on the weekly off day and in maintenance; ``maintenance`` tells
    ``PLANNED_MAINT`` from ``OFF_NOPLAN``. ``shift_day`` is the local production day the
    shift belongs to: a night shift crossing midnight belongs to the day it started.
    ``shift_start_ms``/``shift_end_ms`` bound the whole shift (UTC epoch ms).
    """

    planned: bool
    maintenance: bool
    shift: str
    shift_day: date
    shift_start_ms: int
    shift_end_ms: int


class ShiftCalendar:
    """A factory's shifts, weekly off day and maintenance windows in its local time.

    ``state_at`` is called once per factory per simulated second, so the calendar keeps
    the current stretch of constant state (at most one shift long) and answers from it
    until the time leaves that stretch; only then does it touch the time zone.

    >>> cal = ShiftCalendar("Asia/Kolkata", "2x12", shift_start="08:00")
    >>> s = cal.state_at(1_767_268_800_000)  # 2026-01-01 12:00 UTC = 17:30 IST
    >>> s.shift, (s.shift_end_ms - s.shift_start_ms) // 3_600_000
    ('A', 12)
    """

    def __init__(
        self,
        timezone: str,
        pattern: str = "3x8",
        shift_start: str = "06:00",
        weekly_off: str | None = None,
        maintenance: Sequence[MaintenanceWindow] = (),
    ) -> None:
        if pattern not in PATTERNS:
            raise ValueError(f"shift pattern {pattern!r} must be one of {sorted(PATTERNS)}")
        self.timezone = timezone
        self.pattern = pattern
        self._tz = parse_zone(timezone)
        self._names = PATTERNS[pattern]
        self._shift_len = timedelta(hours=24 / len(self._names))
        self._start = parse_hhmm(shift_start)
        self._off = None if weekly_off is None else parse_weekday(weekly_off)
        self._windows = [
            (parse_weekday(w.weekday), parse_hhmm(w.start), round(w.hours * 3_600_000))
            for w in maintenance
        ]
        # Windows can start this many days before the instant asked about and still cover
        # it (one day of margin for a DST jump inside a window).
        self._lookback_days = 2 + max((ms // 86_400_000 for _, _, ms in self._windows), default=0)
        self._lo, self._hi = 0, -1
        self._state: CalendarState | None = None

    def state_at(self, ts_ms: int) -> CalendarState:
        """The calendar state at ``ts_ms`` (UTC epoch milliseconds)."""
        if self._lo <= ts_ms < self._hi and self._state is not None:
            return self._state
        return self._segment(ts_ms)

    def next_change_ms(self, ts_ms: int) -> int:
        """First instant after ``ts_ms`` at which ``state_at`` may answer differently.

        >>> cal = ShiftCalendar("Asia/Dhaka")
        >>> cal.next_change_ms(1_767_240_000_000) == cal.state_at(1_767_240_000_000).shift_end_ms
        True
        """
        self.state_at(ts_ms)
        return self._hi

    def planned_seconds(self, start_ms: int, end_ms: int) -> tuple[float, float]:
        """Planned and maintenance seconds in ``[start_ms, end_ms)``.

        Walks the shift and maintenance boundaries, not the seconds, so a year costs a
        few thousand steps. Off-day time is the rest of the interval.

        >>> cal = ShiftCalendar("Asia/Dhaka", weekly_off="friday",
        ...                     maintenance=[MaintenanceWindow("saturday", "06:00", 4)])
        >>> week = 7 * 86_400_000
        >>> cal.planned_seconds(1_767_225_600_000, 1_767_225_600_000 + week)  # 06:00 local
        (504000.0, 14400.0)
        """
        if end_ms < start_ms:
            raise ValueError(f"end_ms {end_ms} is before start_ms {start_ms}")
        planned = maintenance = 0
        t = start_ms
        while t < end_ms:
            state = self.state_at(t)  # also moves the cached stretch to the one holding t
            stop = min(self._hi, end_ms)
            if state.maintenance:
                maintenance += stop - t
            elif state.planned:
                planned += stop - t
            t = stop
        return planned / 1000, maintenance / 1000

    def _to_ms(self, wall: datetime) -> int:
        return round(wall.replace(tzinfo=self._tz).timestamp() * 1000)

    def _shift_starts(self, day: date) -> list[tuple[int, str, date]]:
        base = datetime.combine(day, self._start)
        return [
            (self._to_ms(base + i * self._shift_len), name, day)
            for i, name in enumerate(self._names)
        ]

    def _maintenance(self, first: date, last: date) -> list[tuple[int, int]]:
        spans = []
        day = first
        while day <= last:
            for weekday, start, length_ms in self._windows:
                if day.weekday() == weekday:
                    begin = self._to_ms(datetime.combine(day, start))
                    spans.append((begin, begin + length_ms))
            day += timedelta(days=1)
        return spans

    def _segment(self, ts_ms: int) -> CalendarState:
        """Compute and cache the state at ``ts_ms`` and the stretch it holds for."""
        today = datetime.fromtimestamp(ts_ms / 1000, self._tz).date()
        one = timedelta(days=1)
        # Two days back covers a shift_start late in the evening next to a DST jump.
        starts = [s for d in range(-2, 2) for s in self._shift_starts(today + d * one)]
        i = bisect_right([s[0] for s in starts], ts_ms) - 1
        start_ms, name, day = starts[i]
        end_ms = starts[i + 1][0]
        spans = self._maintenance(today - self._lookback_days * one, today + 2 * one)
        in_maint = any(a <= ts_ms < b for a, b in spans)
        edges = [x for span in spans for x in span]
        self._lo = max([start_ms, *(x for x in edges if x <= ts_ms)])
        self._hi = min([end_ms, *(x for x in edges if x > ts_ms)])
        off = self._off is not None and day.weekday() == self._off
        self._state = CalendarState(
            planned=not (off or in_maint),
            maintenance=in_maint,
            shift=name,
            shift_day=day,
            shift_start_ms=start_ms,
            shift_end_ms=end_ms,
        )
        return self._state
