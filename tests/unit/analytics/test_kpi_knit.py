import numpy as np
import pytest

from analytics.events import EventTable
from analytics.frame import Panel
from analytics.kpi import knit
from analytics.kpi.shift import shift_kpis
from analytics.shifts import ShiftWindows


def test_knitting_efficiency_and_kg_per_h():
    # 30 rpm for 8 h could make 30 x 480 = 14,400 revs; 12,240 made is 85 %.
    assert knit.efficiency(np.array([12_240.0]), np.array([30.0]), np.array([480.0]))[0] == 0.85
    # Spec §1.2: 30 in E24, 96 feeders, 30 rpm, 2.7 mm loops, 30 tex, 88 % =
    # pi x 30 x 24 x 30 x 96 x 2.7 x 30 x 60 x 0.88 / 1e9 = 27.86 kg/h; over 8 h 222.9 kg.
    rate = np.pi * 30 * 24 * 30 * 96 * 2.7 * 30 * 60 * 0.88 / 1e9
    assert rate == pytest.approx(27.86, abs=0.01)
    assert knit.kg_per_h(np.array([rate * 8]), np.array([8 * 3600.0]))[0] == pytest.approx(rate)


def test_knit_shift_kpis_hand_case():
    # One machine, ten 1-min buckets, two 5-min windows. Events: RUN 0-2 min, yarn stop
    # (YARN_IN) 2-3 min, RUN 3-6 min, needle stop 6-8 min, RUN 8-10 min.
    m = 60_000
    ev = EventTable.from_records(
        [
            {"machine": "k", "ts": 0, "kind": "state", "code": "RUN"},
            {"machine": "k", "ts": 2 * m, "kind": "state", "code": "STOP_PROCESS"},
            {
                "machine": "k",
                "ts": 2 * m,
                "kind": "stop",
                "code": "STOP_PROCESS",
                "reason": "YARN_IN",
            },
            {"machine": "k", "ts": 3 * m, "kind": "state", "code": "RUN"},
            {"machine": "k", "ts": 6 * m, "kind": "state", "code": "STOP_PROCESS"},
            {
                "machine": "k",
                "ts": 6 * m,
                "kind": "stop",
                "code": "STOP_PROCESS",
                "reason": "NEEDLE",
            },
            {"machine": "k", "ts": 8 * m, "kind": "state", "code": "RUN"},
        ]
    )
    running = np.array([1, 1, 0, 1, 1, 1, 0, 0, 1, 1], dtype=float)
    revs = 1000 + np.cumsum(30 * running)  # 30 revs per running minute (last value)
    kg = np.cumsum(0.5 * running)  # 0.5 kg per running minute
    panel = Panel(
        ["k"],
        np.arange(10) * m,
        m,
        {
            "speed_rpm": (30 * running)[None],
            "revs_total": revs[None],
            "fabric_kg_total": kg[None],
            "state_code": np.where(running > 0, 1.0, 2.0)[None],
        },
    )
    w = ShiftWindows(np.array([0, 5 * m]), np.array([5 * m, 10 * m]), ["d/A", "d/B"])
    t = shift_kpis("knit_circular", panel, ev, w)
    # Window A: run 4 min, stop 1 min; revs: buckets 1, 3, 4 (bucket 0 has no baseline) =
    # 90; efficiency = 90 / (30 x 5) = 0.6; kg = 1.5 -> 1.5 / (5/60 h) = 18 kg/h.
    # Window B: run 3 min (5, 8, 9), stop 2 min; revs 90; efficiency 90 / 150 = 0.6.
    assert t["run_s"].tolist() == [240.0, 180.0]
    assert t["revs"].tolist() == [90.0, 90.0]
    assert t["efficiency"].tolist() == pytest.approx([0.6, 0.6])
    assert t["kg_per_h"].tolist() == pytest.approx([18.0, 18.0])
    assert t["stops_yarn"].tolist() == [1.0, 0.0]
    assert t["stops_needle"].tolist() == [0.0, 1.0]
    assert t["mttr_s_needle"][1] == 120.0
    # P: A 90 revs / 4 run min = 22.5 rpm vs nominal 30 (p95 of running minutes) = 0.75;
    # B 90 / 3 = 30 -> 1.0.
    assert t["nominal_rpm"].tolist() == [30.0, 30.0]
    assert t["performance"].tolist() == pytest.approx([0.75, 1.0])
    assert t["oee"].tolist() == pytest.approx([0.8 * 0.75, 0.6 * 1.0])
