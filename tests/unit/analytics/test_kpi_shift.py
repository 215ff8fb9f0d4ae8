import math
from collections import Counter

import numpy as np
import pytest

from analytics.events import EventTable
from analytics.frame import Panel
from analytics.kpi.shift import increase, nominal_speed, shift_kpis
from analytics.shifts import ShiftWindows, window_sums
from simulators.fleet import Fleet
from simulators.scenario import load_scenario

M = 60_000


def loom_events():
    # l1: RUN 0-120 s, warp stop 120-180 s, RUN 180-360 s, weft stop 360-390 s,
    # RUN 390-540 s, OFF_NOPLAN from 540 s. l2 has no events at all.
    def ev(ts, kind, code, reason=None):
        return {"machine": "l1", "ts": ts * 1000, "kind": kind, "code": code, "reason": reason}

    return EventTable.from_records(
        [
            ev(0, "state", "RUN"),
            ev(120, "state", "STOP_PROCESS"),
            ev(120, "stop", "STOP_PROCESS", "WARP"),
            ev(180, "state", "RUN"),
            ev(360, "state", "STOP_PROCESS"),
            ev(360, "stop", "STOP_PROCESS", "WEFT_SHORT"),
            ev(390, "state", "RUN"),
            ev(540, "state", "OFF_NOPLAN"),
        ]
    )


def loom_panel():
    """Minute panel (PANEL CONVENTION) of 1-Hz picks at 600 rpm = 10 picks/s when running.

    The counter is sampled at the start of each second (value = picks made before it),
    restarts from 0 at s 270 (inside bucket 4) and bucket 8 (480-539 s) is lost.
    """
    second = np.arange(600)
    running = (
        (second < 120) | ((second >= 180) & (second < 360)) | ((second >= 390) & (second < 540))
    )
    raw = 50_000 + np.concatenate([[0], np.cumsum(10.0 * running)[:-1]])
    raw[270:] -= raw[269]  # restart: counts since 0
    raw[480:540] = np.nan
    b = raw.reshape(10, 60)
    lost = np.isnan(b).all(axis=1)
    first = np.where(lost, np.nan, b[:, 0])
    last = np.where(lost, np.nan, b[:, -1])
    maximum = np.where(lost, np.nan, np.nanmax(np.where(lost[:, None], 0, b), axis=1))
    state = np.array([1, 1, 2, 1, 1, 1, 1, 1, 1, 0], dtype=float)
    nan_row = np.full(10, np.nan)
    return Panel(
        ["l1", "l2"],
        np.arange(10) * M,
        M,
        {
            "picks_total": np.stack([last, nan_row]),
            "picks_total:first": np.stack([first, nan_row]),
            "picks_total:max": np.stack([maximum, nan_row]),
            "state_code": np.stack([state, np.zeros(10)]),
            "speed_rpm": np.stack([np.where(state == 1, 600.0, 0.0), nan_row]),
        },
    )


def test_loom_shift_kpis_end_to_end():
    w = ShiftWindows(np.array([0, 300_000]), np.array([300_000, 600_000]), ["d/A", "d/B"])
    t = shift_kpis("loom_airjet", loom_panel(), loom_events(), w, nominal=600.0)
    assert t.machine.tolist() == ["l1", "l1", "l2", "l2"]
    assert t.label.tolist() == ["d/A", "d/B", "d/A", "d/B"]
    l1 = slice(0, 2)
    # A [0, 300 s): RUN 120 + 120 = 240 s, STOP 60 s -> planned 300, availability 0.8.
    # B [300, 600 s): RUN 60 + 150 = 210 s, STOP 30 s, OFF 60 s -> planned 240, A 0.875.
    assert t["run_s"][l1].tolist() == [240.0, 210.0]
    assert t["planned_s"][l1].tolist() == [300.0, 240.0]
    assert t["availability"][l1].tolist() == [0.8, 0.875]
    assert t["efficiency"][l1].tolist() == [0.8, 0.875]
    # Picks: window A gets the counter's samples of seconds 0..299, i.e. production in
    # [0, 299) s = 239 running s x 10 = 2390 (the restart at 270 and its 1-s delta
    # included); B gets [299, 599) = 1 + 60 + 150 running s = 211 s -> 2110, the lost
    # bucket 8 carried into bucket 9.
    assert t["picks"][l1].tolist() == [2390.0, 2110.0]
    # P = picks per run minute / nominal: A 2390 / 4 / 600 = 0.99583; B 2110 / 3.5 / 600
    # = 1.0048 -> capped at 1. OEE = A x P x 1.
    assert t["performance"][l1].tolist() == pytest.approx([2390 / 2400, 1.0])
    assert t["oee"][l1].tolist() == pytest.approx([0.8 * 2390 / 2400, 0.875])
    # efficiency by picks = 2390 / (600 x (240 + 60) / 60) = 0.79667
    assert t["efficiency_picks"][0] == pytest.approx(2390 / 3000)
    # stops: the warp stop (60 s) in A, the weft stop (30 s) in B.
    assert t["stops_warp"][l1].tolist() == [1.0, 0.0]
    assert t["stops_weft"][l1].tolist() == [0.0, 1.0]
    assert t["mttr_s_warp"][0] == 60.0 and t["mttr_s_weft"][1] == 30.0
    assert np.isnan(t["mttr_s_warp"][1])
    assert t["stops_per_1e5_picks"][0] == pytest.approx(1e5 / 2390)
    assert t["stops_per_1e5_picks_weft"][1] == pytest.approx(1e5 / 2110)
    # l2: no events and OFF_NOPLAN in the panel: nothing planned, KPIs undefined.
    assert t["planned_s"][2:].tolist() == [0.0, 0.0]
    assert np.isnan(t["oee"][2:]).all()


def test_rows_leave_out_undefined_kpis():
    w = ShiftWindows(np.array([0]), np.array([300_000]), ["d/A"])
    rows = shift_kpis("loom_airjet", loom_panel(), loom_events(), w, nominal=600.0).rows()
    assert [r["machine"] for r in rows] == ["l1", "l2"]
    assert rows[0]["window"] == "d/A" and rows[0]["machine_type"] == "loom_airjet"
    assert rows[0]["availability"] == 0.8
    assert "availability" not in rows[1] and rows[1]["planned_s"] == 0.0
    assert all(not (isinstance(v, float) and math.isnan(v)) for r in rows for v in r.values())


def test_nominal_speed_is_p95_of_running_buckets():
    # Running minutes 500..599 rpm (100 values): p95 by linear interpolation = 594.05;
    # stopped minutes at 900 rpm (state STOP) must not count.
    speed = np.concatenate([np.arange(500.0, 600.0), [900.0, 900.0]])
    state = np.concatenate([np.ones(100), [2.0, 2.0]])
    p = Panel(["a"], np.arange(102) * M, M, {"speed_rpm": speed[None], "state_code": state[None]})
    assert nominal_speed(p, "speed_rpm")[0] == pytest.approx(np.percentile(speed[:100], 95))
    assert nominal_speed(p, "speed_rpm", 800.0).tolist() == [800.0]


def test_an_in_progress_shift_counts_only_up_to_now():
    w = ShiftWindows(np.array([0]), np.array([8 * 3_600_000]), ["d/A"])
    t = shift_kpis("loom_airjet", loom_panel(), loom_events(), w, nominal=600.0)
    # the panel ends at 600 s: planned = 300 + 240 = 540 s, not 8 h.
    assert t["planned_s"][0] == 540.0


# -- simulator cross-check ------------------------------------------------------------

START = 1_767_247_200_000  # 2026-01-01 06:00 UTC = 12:00 in Dhaka, a planned Thursday


def simulate_looms(seconds: int):
    """1-Hz readings of f01's 48 looms, aggregated to the PANEL CONVENTION."""
    fleet = Fleet(load_scenario("default"), "f01", faults=False)
    names, ts, fields, records = None, [], {}, []
    for k in range(seconds):
        t = START + k * 1000
        for r in fleet.step(t):
            if r.machine_type != "loom_airjet":
                continue
            names = [m.machine for m in r.machines]
            ts.append(t)
            for f in (
                "speed_rpm",
                "state_code",
                "picks_total",
                "warp_stops_total",
                "weft_stops_total",
                "other_stops_total",
            ):
                fields.setdefault(f, []).append(np.asarray(r.fields[f], dtype=float))
            records += [{**e, "machine": names[i]} for i, e in r.events]
    raw = {f: np.array(v).T.reshape(len(names), -1, 60) for f, v in fields.items()}
    values = {"speed_rpm": raw["speed_rpm"].mean(axis=2)}
    codes = raw["state_code"].astype(int)
    counts = np.stack([(codes == c).sum(axis=2) for c in range(8)], axis=2)
    values["state_code"] = counts.argmax(axis=2).astype(float)
    for f in ("picks_total", "warp_stops_total", "weft_stops_total", "other_stops_total"):
        values[f] = raw[f][..., -1]
        values[f + ":first"] = raw[f][..., 0]
        values[f + ":max"] = raw[f].max(axis=2)
    grid = START + np.arange(seconds // 60) * M
    return Panel(names, grid, M, values), EventTable.from_records(records)


def test_simulated_looms_events_agree_with_counters():
    panel, events = simulate_looms(2 * 3600)
    assert Counter(events.kind.tolist())["stop"] > 20  # enough stops to compare
    # Two 1-h windows inside shift A (06:00-14:00 Dhaka).
    w = ShiftWindows(
        START + np.array([0, 3600_000]), START + np.array([3600_000, 7200_000]), ["h1", "h2"]
    )
    t = shift_kpis("loom_airjet", panel, events, w)
    # Stops counted from stop events equal the stop counters' increases, per class.
    for cls in ("warp", "weft", "other"):
        counted = window_sums(
            increase(panel, f"{cls}_stops_total"), panel.ts_ms, w.start_ms, w.end_ms
        ).reshape(-1)
        assert t[f"stops_{cls}"].tolist() == counted.tolist()
    # Time-based efficiency (events) equals picks-based efficiency (counters and the p95
    # nominal speed) within a few % for every loom-hour that ran at all.
    ok = t["run_s"] > 0
    assert ok.sum() > 80
    eff, by_picks = t["efficiency"][ok], t["efficiency_picks"][ok]
    assert np.abs(eff - by_picks).max() < 0.03
    assert abs(eff.mean() - by_picks.mean()) < 0.005
