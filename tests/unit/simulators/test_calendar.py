from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from simulators.calendar import CalendarState, MaintenanceWindow, ShiftCalendar

H = 3_600_000


def ms(zone: str, *wall: int) -> int:
    """UTC epoch ms of a local wall time (first occurrence if ambiguous)."""
    return round(datetime(*wall, tzinfo=ZoneInfo(zone)).timestamp() * 1000)


def brute_planned(
    cal: ShiftCalendar, start: int, end: int, step: int = 60_000
) -> tuple[float, ...]:
    planned = maint = 0
    for t in range(start, end, step):
        s = cal.state_at(t)
        planned += step * s.planned
        maint += step * s.maintenance
    return planned / 1000, maint / 1000


def test_3x8_boundaries_in_dhaka() -> None:
    cal = ShiftCalendar("Asia/Dhaka", "3x8")
    for hour, shift in ((6, "A"), (14, "B"), (22, "C")):
        s = cal.state_at(ms("Asia/Dhaka", 2026, 1, 5, hour))
        assert (s.shift, s.shift_day, s.planned) == (shift, date(2026, 1, 5), True)
        assert s.shift_start_ms == ms("Asia/Dhaka", 2026, 1, 5, hour)
        assert s.shift_end_ms - s.shift_start_ms == 8 * H
    before = cal.state_at(ms("Asia/Dhaka", 2026, 1, 5, 6) - 1)
    assert (before.shift, before.shift_day) == ("C", date(2026, 1, 4))


def test_night_shift_belongs_to_the_day_it_started() -> None:
    cal = ShiftCalendar("Europe/Istanbul", "3x8")
    s = cal.state_at(ms("Europe/Istanbul", 2026, 2, 3, 3, 30))
    assert (s.shift, s.shift_day) == ("C", date(2026, 2, 2))
    assert s.shift_start_ms == ms("Europe/Istanbul", 2026, 2, 2, 22)
    assert s.shift_end_ms == ms("Europe/Istanbul", 2026, 2, 3, 6)


def test_2x12_in_kolkata_with_half_hour_offset() -> None:
    cal = ShiftCalendar("Asia/Kolkata", "2x12", shift_start="08:00")
    day = cal.state_at(ms("Asia/Kolkata", 2026, 1, 7, 8))
    night = cal.state_at(ms("Asia/Kolkata", 2026, 1, 8, 7, 59))
    assert (day.shift, night.shift, night.shift_day) == ("A", "B", date(2026, 1, 7))
    assert day.shift_start_ms % H == H // 2  # 08:00 IST is 02:30 UTC
    assert night.shift_start_ms == day.shift_end_ms
    assert night.shift_end_ms - night.shift_start_ms == 12 * H


def test_weekly_off_is_a_production_day() -> None:
    cal = ShiftCalendar("Asia/Dhaka", "3x8", weekly_off="friday")  # 2026-01-09 is a Friday
    thursday_night = cal.state_at(ms("Asia/Dhaka", 2026, 1, 9, 3))
    assert thursday_night.planned and thursday_night.shift_day == date(2026, 1, 8)
    for hour in (6, 14, 23):
        s = cal.state_at(ms("Asia/Dhaka", 2026, 1, 9, hour))
        assert not s.planned and not s.maintenance
    assert cal.state_at(ms("Asia/Dhaka", 2026, 1, 10, 6)).planned
    week = ms("Asia/Dhaka", 2026, 1, 5, 6), ms("Asia/Dhaka", 2026, 1, 12, 6)
    assert cal.planned_seconds(*week) == (6 * 24 * 3600.0, 0.0)


def test_maintenance_window_cuts_into_a_shift() -> None:
    window = MaintenanceWindow("tuesday", "10:00", 3)
    cal = ShiftCalendar("Europe/Istanbul", "3x8", maintenance=[window])
    assert cal.state_at(ms("Europe/Istanbul", 2026, 1, 6, 9, 59)).planned
    inside = cal.state_at(ms("Europe/Istanbul", 2026, 1, 6, 10))
    assert (inside.planned, inside.maintenance, inside.shift) == (False, True, "A")
    assert cal.state_at(ms("Europe/Istanbul", 2026, 1, 6, 13)).planned
    assert cal.next_change_ms(ms("Europe/Istanbul", 2026, 1, 6, 7)) == ms(
        "Europe/Istanbul", 2026, 1, 6, 10
    )


def test_maintenance_across_midnight_and_on_the_off_day() -> None:
    windows = [MaintenanceWindow("sat", "22:00", 10), MaintenanceWindow("friday", "08:00", 2)]
    cal = ShiftCalendar("Asia/Dhaka", weekly_off="friday", maintenance=windows)
    sunday_7 = cal.state_at(ms("Asia/Dhaka", 2026, 1, 11, 7))
    assert sunday_7.maintenance and not sunday_7.planned
    assert cal.state_at(ms("Asia/Dhaka", 2026, 1, 11, 8)).planned
    off_maint = cal.state_at(ms("Asia/Dhaka", 2026, 1, 9, 9))
    assert off_maint.maintenance and not off_maint.planned
    week = ms("Asia/Dhaka", 2026, 1, 5, 6), ms("Asia/Dhaka", 2026, 1, 12, 6)
    assert cal.planned_seconds(*week) == ((6 * 24 - 10) * 3600.0, 12 * 3600.0)


def test_dst_spring_forward_night_shift_lasts_7_hours() -> None:
    cal = ShiftCalendar("Europe/Berlin", "3x8")
    night = cal.state_at(ms("Europe/Berlin", 2026, 3, 29, 1))
    assert (night.shift, night.shift_day) == ("C", date(2026, 3, 28))
    assert night.shift_end_ms - night.shift_start_ms == 7 * H
    after = cal.state_at(ms("Europe/Berlin", 2026, 3, 29, 4))  # 03:00 CET does not exist
    assert after.shift_start_ms == night.shift_start_ms
    morning = cal.state_at(ms("Europe/Berlin", 2026, 3, 29, 6))
    assert morning.shift == "A" and morning.shift_end_ms - morning.shift_start_ms == 8 * H


def test_dst_fall_back_night_shift_lasts_9_hours() -> None:
    cal = ShiftCalendar("Europe/Berlin", "3x8")
    night = cal.state_at(ms("Europe/Berlin", 2026, 10, 25, 2, 30) + H)  # second 02:30
    assert (night.shift, night.shift_day) == ("C", date(2026, 10, 24))
    assert night.shift_end_ms - night.shift_start_ms == 9 * H
    assert night.shift_end_ms == ms("Europe/Berlin", 2026, 10, 25, 6)


@pytest.mark.parametrize(
    ("monday", "night_h"), [((2026, 3, 23), 7), ((2026, 10, 19), 9)], ids=["spring", "autumn"]
)
def test_planned_seconds_over_a_dst_week(monday: tuple[int, int, int], night_h: int) -> None:
    maint = [MaintenanceWindow("wednesday", "14:00", 4)]
    cal = ShiftCalendar("Europe/Berlin", "3x8", weekly_off="sunday", maintenance=maint)
    start = ms("Europe/Berlin", *monday, 6)
    end = start + 7 * 24 * H + (night_h - 8) * H  # Monday 06:00 local a week later
    assert end == ms("Europe/Berlin", monday[0], monday[1], monday[2] + 7, 6)
    # Mon-Sat production days: 6 x 24 h, the Saturday night shift 7 or 9 h, minus 4 h
    # of maintenance; Sunday 06:00 to Monday 06:00 is the off day.
    expected_planned = (6 * 24 + night_h - 8 - 4) * 3600.0
    assert cal.planned_seconds(start, end) == (expected_planned, 4 * 3600.0)
    assert brute_planned(cal, start, end) == (expected_planned, 4 * 3600.0)


def test_cache_returns_the_same_state_and_survives_random_access() -> None:
    cal = ShiftCalendar("Asia/Dhaka")
    t = ms("Asia/Dhaka", 2026, 1, 5, 7)
    first = cal.state_at(t)
    assert cal.state_at(t + 1000) is first
    late = cal.state_at(t + 10 * H)
    assert late.shift == "B" and cal.state_at(t) == first


def test_planned_seconds_edges() -> None:
    cal = ShiftCalendar("Asia/Dhaka")
    assert cal.planned_seconds(5, 5) == (0.0, 0.0)
    with pytest.raises(ValueError, match="before"):
        cal.planned_seconds(10, 5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"timezone": "UTC", "pattern": "4x6"}, "4x6"),
        ({"timezone": "UTC", "shift_start": "6:00"}, "HH:MM"),
        ({"timezone": "UTC", "weekly_off": "funday"}, "funday"),
    ],
)
def test_bad_calendar_arguments(kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ShiftCalendar(**kwargs)


def test_bad_maintenance_window() -> None:
    with pytest.raises(ValueError, match="hours"):
        MaintenanceWindow("monday", "06:00", 0)
    with pytest.raises(ValueError, match="25:00"):
        MaintenanceWindow("monday", "25:00", 1)


def test_state_is_frozen() -> None:
    s = ShiftCalendar("UTC").state_at(0)
    assert isinstance(s, CalendarState)
    with pytest.raises(AttributeError):
        s.planned = False  # type: ignore[misc]
