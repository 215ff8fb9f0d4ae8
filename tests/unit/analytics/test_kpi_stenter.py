import numpy as np
import pytest

from analytics.events import EventTable
from analytics.frame import Panel
from analytics.kpi import stenter
from analytics.kpi.shift import shift_kpis
from analytics.shifts import ShiftWindows

M = 60_000
STATE = np.array([1, 1, 1, 1, 1, 2, 2, 1, 1, 0], dtype=float)
HUMIDITY = np.array([0.12, 0.10, 0.15, 0.16, 0.05, 0.12, 0.12, np.nan, 0.11, 0.12])


def test_compliance_counts_running_minutes_with_a_value():
    # RUN minutes with a value: 0, 1, 2, 3, 4, 8 (7 is NaN) = 6; in [0.10, 0.15]:
    # 0.12, 0.10, 0.15, 0.11 = 4 -> 66.7 %. Minutes 5, 6 (stopped) and 9 (off) don't count.
    pct = stenter.humidity_compliance_pct(HUMIDITY[None], (STATE == 1)[None])
    assert pct[0] == pytest.approx(400 / 6)


def test_band_is_inclusive():
    inside = stenter.humidity_in_band(np.array([0.0999, 0.10, 0.15, 0.1501]))
    assert inside.tolist() == [False, True, True, False]


def test_stenter_shift_kpis():
    ev = EventTable.from_records(
        [
            {"machine": "s", "ts": 0, "kind": "state", "code": "RUN"},
            {"machine": "s", "ts": 5 * M, "kind": "state", "code": "STOP_PROCESS"},
            {"machine": "s", "ts": 5 * M, "kind": "stop", "code": "STOP_PROCESS", "reason": "TEAR"},
            {"machine": "s", "ts": 7 * M, "kind": "state", "code": "RUN"},
            {"machine": "s", "ts": 9 * M, "kind": "state", "code": "OFF_NOPLAN"},
        ]
    )
    speed = np.where(STATE == 1, 30.0, 0.0)
    panel = Panel(
        ["s"],
        np.arange(10) * M,
        M,
        {
            "state_code": STATE[None],
            "exhaust_humidity_kg_kg": HUMIDITY[None],
            "speed_m_min": speed[None],
        },
    )
    w = ShiftWindows(np.array([0, 5 * M]), np.array([5 * M, 10 * M]), ["d/A", "d/B"])
    t = shift_kpis("stenter", panel, ev, w, nominal=40.0)
    # A: minutes 0-4 all run with a value, 3 in band -> 60 %; B: minute 8 only -> 100 %.
    assert t["humidity_compliance_pct"].tolist() == pytest.approx([60.0, 100.0])
    # A: run 5 of 5 planned min; B: stop 2 + run 2 min planned, off 1 min -> 2 / 4.
    assert t["availability"].tolist() == [1.0, 0.5]
    # P = mean running speed 30 / nominal 40 = 0.75 in both; OEE = A x P.
    assert t["performance"].tolist() == [0.75, 0.75]
    assert t["oee"].tolist() == [0.75, 0.375]
    assert t["stops"].tolist() == [0.0, 1.0]
