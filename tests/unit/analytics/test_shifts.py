from datetime import UTC, datetime

import numpy as np
import pytest

from analytics.shifts import day_windows, shift_windows, window_of, window_sums

H = 3_600_000


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_3x8_in_dhaka_cut_on_local_wall_clock():
    # Dhaka is UTC+6 all year: 06:00 local = 00:00 UTC, 14:00 = 08:00 UTC, 22:00 = 16:00 UTC.
    w = shift_windows("Asia/Dhaka", "3x8", ms("2026-01-01T00:00"), ms("2026-01-02T00:00"))
    assert w.labels == ["2026-01-01/A", "2026-01-01/B", "2026-01-01/C"]
    assert w.start_ms.tolist() == [
        ms("2026-01-01T00:00"),
        ms("2026-01-01T08:00"),
        ms("2026-01-01T16:00"),
    ]
    assert (w.seconds == 8 * 3600).all()


def test_night_shift_belongs_to_the_day_it_started():
    # 2026-01-02 03:00 local (21:00 UTC on the 1st) is in shift C of 2026-01-01.
    w = shift_windows("Asia/Dhaka", "3x8", ms("2026-01-01T21:00"), ms("2026-01-01T21:01"))
    assert w.labels == ["2026-01-01/C"]


def test_2x12_from_0800_in_kolkata():
    # 08:00 IST = 02:30 UTC; 20:00 IST = 14:30 UTC.
    w = shift_windows(
        "Asia/Kolkata", "2x12", ms("2026-01-01T03:00"), ms("2026-01-01T15:00"), first_start="08:00"
    )
    assert w.labels == ["2026-01-01/A", "2026-01-01/B"]
    assert w.start_ms.tolist() == [ms("2026-01-01T02:30"), ms("2026-01-01T14:30")]


def test_spring_forward_night_shift_lasts_7_hours():
    # Berlin 2026-03-29: 02:00 CET -> 03:00 CEST. Shift C of the 28th runs
    # 22:00 CET (21:00 UTC) to 06:00 CEST (04:00 UTC) = 7 h.
    w = shift_windows("Europe/Berlin", "3x8", ms("2026-03-28T05:00"), ms("2026-03-29T20:00"))
    hours = dict(zip(w.labels, (w.seconds / 3600).tolist(), strict=True))
    assert hours["2026-03-28/C"] == 7.0
    assert hours["2026-03-28/A"] == 8.0 and hours["2026-03-29/A"] == 8.0
    c = w.labels.index("2026-03-28/C")
    assert (w.start_ms[c], w.end_ms[c]) == (ms("2026-03-28T21:00"), ms("2026-03-29T04:00"))


def test_fall_back_night_shift_lasts_9_hours():
    # Berlin 2026-10-25: 03:00 CEST -> 02:00 CET. Shift C of the 24th runs
    # 22:00 CEST (20:00 UTC) to 06:00 CET (05:00 UTC) = 9 h.
    w = shift_windows("Europe/Berlin", "3x8", ms("2026-10-24T20:00"), ms("2026-10-25T05:00"))
    assert w.labels == ["2026-10-24/C"]
    assert w.seconds.tolist() == [9 * 3600.0]


def test_2x12_across_dst_is_11_and_13_hours():
    spring = shift_windows("Europe/Berlin", "2x12", ms("2026-03-28T18:00"), ms("2026-03-28T18:01"))
    fall = shift_windows("Europe/Berlin", "2x12", ms("2026-10-24T18:00"), ms("2026-10-24T18:01"))
    assert (spring.seconds / 3600).tolist() == [11.0]
    assert (fall.seconds / 3600).tolist() == [13.0]


def test_clip_cuts_to_the_range():
    w = shift_windows(
        "Asia/Dhaka", "3x8", ms("2026-01-01T01:00"), ms("2026-01-01T09:00"), clip=True
    )
    assert w.start_ms.tolist() == [ms("2026-01-01T01:00"), ms("2026-01-01T08:00")]
    assert w.end_ms.tolist() == [ms("2026-01-01T08:00"), ms("2026-01-01T09:00")]


def test_day_windows_23_24_25_hours():
    w = day_windows("Europe/Berlin", ms("2026-03-28T12:00"), ms("2026-03-30T12:00"))
    assert w.labels == ["2026-03-28", "2026-03-29", "2026-03-30"]
    assert (w.seconds / 3600).tolist() == [24.0, 23.0, 24.0]
    fall = day_windows("Europe/Berlin", ms("2026-10-25T12:00"), ms("2026-10-25T12:01"))
    assert (fall.seconds / 3600).tolist() == [25.0]


def test_bad_pattern_and_time_are_rejected():
    with pytest.raises(ValueError, match="pattern"):
        shift_windows("Asia/Dhaka", "4x6", 0, H)
    with pytest.raises(ValueError, match="HH:MM"):
        shift_windows("Asia/Dhaka", "3x8", 0, H, first_start="25:00")


def test_window_sums_and_window_of():
    ts = np.arange(6) * 60_000
    values = np.array([[1.0, 2.0, np.nan, 4.0, 5.0, 6.0]])
    # [0, 3 min): 1 + 2 + 0 = 3; [3 min, 5 min): 4 + 5 = 9; the last bucket is outside.
    sums = window_sums(values, ts, np.array([0, 180_000]), np.array([180_000, 300_000]))
    assert sums.tolist() == [[3.0, 9.0]]
    idx = window_of(ts, np.array([0, 180_000]), np.array([180_000, 300_000]))
    assert idx.tolist() == [0, 0, 0, 1, 1, -1]


def test_window_sums_edge_cases():
    ts = np.arange(4) * 60_000
    v = np.array([[1.0, 2.0, 4.0, 8.0], [1.0, 1.0, 1.0, 1.0]])
    # Overlapping windows (cumulative-sum path): [0, 3 min) = 7, [1 min, 4 min) = 14.
    over = window_sums(v, ts, np.array([0, 60_000]), np.array([180_000, 240_000]))
    assert over[0].tolist() == [7.0, 14.0]
    # A window past the data, an empty one, and one before it (reduceat path).
    got = window_sums(
        v, ts, np.array([-60_000, 60_000, 120_000]), np.array([60_000, 60_000, 10**9])
    )
    assert got.tolist() == [[1.0, 0.0, 12.0], [1.0, 0.0, 2.0]]
