"""The per-machine-type anomaly monitor (analytics.monitor)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from analytics.drive import Drive, Signals, drive_curve, fit_curve, with_drive
from analytics.evaluation import _split
from analytics.frame import Panel
from analytics.monitor import (
    Monitor,
    setpoint_pairs,
    sibling_groups,
    trailing_mean,
    type_signals,
)
from analytics.simdata import START_MS, simulate
from tests.unit.analytics.jets import jet_panel

H = 3_600_000
SCENARIO = """
name = "unit"
cluster = "c1"
seed = 4

[[factories]]
id = "k1"
archetype = "knitting"
timezone = "UTC"
shifts = "3x8"
machines = { knit_circular = 6 }

[[faults]]
type = "lubrication_shortfall"
count = 1
severity = [1.0, 1.0]
duration_h = [2.0, 2.0]
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    path = tmp_path_factory.mktemp("scenario") / "unit.toml"
    path.write_text(SCENARIO)
    common = {"days": 6 / 24, "seed": 2, "step_s": 5, "progress": None, "start_ms": START_MS}
    return simulate(str(path), **common), simulate(str(path), faults=False, **common)


def _fit_score(run, control, cut):
    train = {mt: _split(d.panel, cut)[0] for mt, d in control.data["k1"].items()}
    monitor = Monitor().fit(train)
    scores = monitor.score({mt: d.panel for mt, d in run.data["k1"].items()})
    return monitor, scores


def test_injected_fault_scores_higher_than_the_control_run(runs):
    faulty, control = runs
    fault = next(f for f in faulty.faults if f.fault_type == "lubrication_shortfall")
    # Baselines from the whole control run (no fault in it), then both runs scored.
    assert fault.onset_ms > START_MS + H  # seed 2 places the onset at about 2 h
    _, with_fault = _fit_score(faulty, control, control.end_ms)
    _, without = _fit_score(control, control, control.end_ms)
    sc, ref = with_fault["knit_circular"], without["knit_circular"]
    row = sc.machines.index(fault.machine)
    after = (sc.ts_ms >= fault.onset_ms + H) & (sc.ts_ms < fault.repaired_ms)
    assert sc.score[row, after].max() > 0.99
    assert sc.score[row, after].mean() > ref.score[row, after].mean() + 0.4
    hot = sc.score[row, after] > 0.9
    assert np.nanmedian(np.abs(sc.z[row, after][hot])) > 3  # far from its baseline
    top = {sc.signals[k] for k in sc.signal[row, after][sc.score[row, after] > 0.9]}
    assert top & {"cam_temp_c", "drive_power_kw", "energy_kwh_total:per:revs_total"}


def test_scores_are_causal_and_in_unit_range(runs):
    faulty, control = runs
    cut = START_MS + 3 * H // 2
    monitor, full = _fit_score(faulty, control, cut)
    n = 150
    part = {mt: _split(d.panel, START_MS + n * 60_000)[0] for mt, d in faulty.data["k1"].items()}
    early = monitor.score(part)
    for mt, sc in early.items():
        assert np.allclose(sc.score, full[mt].score[:, :n])
        assert np.all((full[mt].score >= 0) & (full[mt].score <= 1))


def test_monitor_pickles_and_only_stores_params_in_init(runs):
    faulty, control = runs
    monitor, scores = _fit_score(faulty, control, START_MS + 3 * H // 2)
    again = pickle.loads(pickle.dumps(monitor))
    panels = {mt: d.panel for mt, d in faulty.data["k1"].items()}
    rescored = again.score(panels)
    assert np.array_equal(rescored["knit_circular"].score, scores["knit_circular"].score)
    fresh = Monitor(threshold=0.8, windows=(3,))
    assert fresh.get_params()["threshold"] == 0.8 and not hasattr(fresh, "models_")


def test_alarm_names_signal_baseline_and_start():
    rng = np.random.default_rng(2)
    t = 900
    ts = START_MS + np.arange(t, dtype=np.int64) * 60_000
    x = rng.normal(20.0, 0.2, (5, t))
    x[3, 700:] += 2.0  # 10 sds from minute 700
    panel = Panel([f"m{i}" for i in range(5)], ts, 60_000, {"temp_c": x})
    monitor = Monitor().fit({"hall_env": _split(panel, ts[400])[0]})
    alarms = monitor.alarms(monitor.score({"hall_env": _split(panel, ts[400])[1]}))
    assert len(alarms) == 1
    a = alarms[0]
    assert (a.machine, a.signal, a.machine_type) == ("m3", "temp_c", "hall_env")
    assert ts[700] <= a.start_ms <= ts[705] and a.end_ms is None
    assert a.z > 5 and a.baseline == pytest.approx(20.0, abs=0.1)


def test_hall_alarm_lists_the_machines_that_deviate_together():
    rng = np.random.default_rng(3)
    t = 900
    ts = START_MS + np.arange(t, dtype=np.int64) * 60_000
    x = rng.normal(6.2, 0.05, (8, t))
    x[:, 700:730] -= 1.0  # every loom's air supply sags by 20 sds for half an hour
    panel = Panel([f"l{i}" for i in range(8)], ts, 60_000, {"air_supply_bar": x})
    monitor = Monitor().fit({"loom_airjet": _split(panel, ts[400])[0]})
    alarms = monitor.alarms(monitor.score({"loom_airjet": _split(panel, ts[400])[1]}))
    hall = [a for a in alarms if a.kind == "hall"]
    assert len(hall) == 1 and len(hall[0].machines) == 8
    assert ts[700] <= hall[0].start_ms <= ts[705]
    assert not [a for a in alarms if a.kind != "hall"]  # folded into the hall alarm


def test_signals_cover_setpoint_error_rates_and_gate_on_running():
    ts = np.arange(4, dtype=np.int64) * 60_000
    values = {
        "liquor_temp_c": np.array([[50.0, 60.0, 70.0, 80.0]]),
        "temp_sp_c": np.array([[50.0, 62.0, 75.0, 80.0]]),
        "state_code": np.array([[1.0, 1.0, 1.0, 0.0]]),
        "water_l_total": np.array([[0.0, 10.0, 20.0, 30.0]]),
        "water_l_total:first": np.array([[0.0, 5.0, 15.0, 25.0]]),
        "water_l_total:max": np.array([[0.0, 10.0, 20.0, 30.0]]),
    }
    sig = type_signals(Panel(["j"], ts, 60_000, values), rate_window=2)
    err = sig.values[0, :, sig.names.index("liquor_temp_c:err")]
    assert err[:3].tolist() == [0.0, -2.0, -5.0] and np.isnan(err[3])  # stopped: blank
    rate = sig.values[0, :, sig.names.index("water_l_total:rate")]
    assert rate[2] == pytest.approx(20.0 / (2 / 60))  # 20 L over two running minutes
    assert "temp_sp_c" not in sig.names
    assert setpoint_pairs(["width_set_cm", "width_act_cm"]) == [("width_act_cm", "width_set_cm")]
    assert trailing_mean(np.array([[1.0, 3.0, np.nan, 7.0]]), 2).tolist() == [[1.0, 2.0, 3.0, 7.0]]


def _loomish(t: int, seed: int) -> Panel:
    rng = np.random.default_rng(seed)
    ts = START_MS + np.arange(t, dtype=np.int64) * 60_000
    temp = rng.normal(50.0, 0.3, (6, t))
    picks = np.cumsum(rng.normal(800.0, 5.0, (6, t)), axis=1)
    values = {
        "bearing_temp_c": temp,
        "bearing_temp_c:sd": np.abs(rng.normal(0.5, 0.05, (6, t))),
        "motor_temp_c": rng.normal(60.0, 0.3, (6, t)),
        "vib_rms_mm_s": rng.normal(2.0, 0.05, (6, t)),
        "picks_total": picks,
        "picks_total:first": picks - 10.0,
        "picks_total:max": picks.copy(),
        "state_code": np.ones((6, t)),
    }
    return Panel([f"l{i}" for i in range(6)], ts, 60_000, values)


def test_instrument_evidence_names_the_kind():
    panel = _loomish(1200, 5)
    panel.values["bearing_temp_c"][1, 800:] = panel.values["bearing_temp_c"][1, 800]  # stuck
    panel.values["bearing_temp_c:sd"][1, 800:] = 0.0
    panel.values["motor_temp_c"][2, 900:960] = np.nan  # the sensor goes silent
    for name in ("picks_total", "picks_total:first", "picks_total:max"):
        panel.values[name][3, 1000:] -= panel.values["picks_total"][3, 999]  # restart at 0
    train, test = _split(panel, panel.ts_ms[600])
    monitor = Monitor().fit({"loom_airjet": train})
    alarms = monitor.alarms(monitor.score({"loom_airjet": test}))
    kinds = {(a.machine, a.kind) for a in alarms}
    assert ("l1", "instrument:stuck") in kinds
    assert ("l2", "instrument:dropout") in kinds
    assert ("l3", "instrument:counter_reset") in kinds
    assert not {m for m, _ in kinds} & {"l0", "l4", "l5"}  # untouched looms stay quiet


def test_stop_entries_count_stops_begun_per_running_hour():
    # Two separate stops (one and two buckets long) in 20 buckets of running.
    state = np.array([[1.0] * 5 + [2.0] + [1.0] * 3 + [2.0, 2.0] + [1.0] * 9])
    ts = np.arange(state.shape[1], dtype=np.int64) * 60_000
    sig = type_signals(Panel(["k"], ts, 60_000, {"state_code": state}), rate_window=20)
    rate = sig.values[0, :, sig.names.index("state:stops_per_h")]
    run_h = sig.running.sum() / 60  # steady running minutes in the window, in hours
    assert sig.running.sum() < 17  # restarts are not steady yet
    assert rate[-1] == pytest.approx(2 / run_h)  # two stops begun, not three stopped buckets
    share = sig.values[0, :, sig.names.index("state:stop_share")]
    assert share[-1] == pytest.approx(3 / 20)


def _two_causes(split: bool) -> list:
    rng = np.random.default_rng(7)
    t = 1000
    ts = START_MS + np.arange(t, dtype=np.int64) * 60_000
    a = rng.normal(20.0, 0.2, (5, t))
    b = rng.normal(5.0, 0.1, (5, t))
    a[2, 600:] += 3.0  # a first fault, still open at the end
    b[2, 800:] += 2.0  # a second one starts under it
    panel = Panel([f"m{i}" for i in range(5)], ts, 60_000, {"temp_c": a, "rh_pct": b})
    train, test = _split(panel, ts[400])
    monitor = Monitor(split_causes=split).fit({"hall_env": train})
    return monitor.alarms(monitor.score({"hall_env": test}))


def test_a_second_field_under_an_open_alarm_opens_its_own_alarm():
    alarms = _two_causes(split=True)
    assert [(x.machine, x.signal) for x in alarms] == [("m2", "temp_c"), ("m2", "rh_pct")]
    assert alarms[1].start_ms - alarms[0].start_ms >= 199 * 60_000
    merged = _two_causes(split=False)
    assert [x.machine for x in merged] == ["m2"]  # one episode named by its peak only
    assert merged[0].start_ms == alarms[0].start_ms


def test_loose_followers_are_not_judged_beyond_the_drives_training_span():
    drive = np.array([[60.0, 80.0, 100.0, 140.0]])  # trained on 50-100: 140 is new
    tight, loose = 2.0 * drive + 1.0, 0.5 * drive
    sig = Signals(
        ["pump", "flow", "fan"],
        ["pump", "flow", "fan"],
        np.stack([drive, tight, loose], axis=2),
        np.ones(drive.shape, dtype=bool),
    )
    ones, zeros = np.ones(1), np.zeros(1)
    model = Drive(
        "pump",
        {"flow": (ones, 2.0 * ones), "fan": (zeros, 0.5 * ones)},
        (np.array([50.0]), np.array([100.0])),
        {"flow": 0.99, "fan": 0.75},
    )
    out = with_drive(sig, model)
    flow = out.values[0, :, out.names.index("flow:vs:pump")]
    fan = out.values[0, :, out.names.index("fan:vs:pump")]
    assert flow.tolist() == [0.0, 0.0, 0.0, 0.0]  # physics: extrapolated
    assert fan[:3].tolist() == [0.0, 0.0, 0.0] and np.isnan(fan[3])


def test_a_zone_going_cold_stands_out_against_its_siblings_in_any_state():
    rng = np.random.default_rng(3)
    t = 400
    ts = np.arange(t, dtype=np.int64) * 60_000
    level = np.where(np.arange(t) < 200, 30.0, 180.0)  # off, then heated: all zones move
    zones = {f"zone{n}_temp_c": level + rng.normal(0.0, 1.0, (1, t)) for n in range(1, 7)}
    zones["zone3_temp_c"][0, 100:150] -= 25.0  # cold while the machine is off
    zones["zone3_temp_c"][0, 300:350] -= 25.0  # and while it runs
    panel = Panel(["s1"], ts, 60_000, {**zones, "speed_m_min": np.full((1, t), 20.0)})
    assert sibling_groups(panel.fields) == [[f"zone{n}_temp_c" for n in range(1, 7)]]
    sig = type_signals(panel)
    cold = sig.values[0, :, sig.names.index("zone3_temp_c:sib")]
    calm = sig.values[0, :, sig.names.index("zone4_temp_c:sib")]
    fault = np.r_[100:150, 300:350]
    normal = np.setdiff1d(np.arange(t), fault)
    assert np.all(cold[fault] < -5.0)
    assert np.max(np.abs(cold[normal])) < 5.0
    assert np.max(np.abs(calm)) < 5.0  # the step at 200 moves every zone together


def test_a_tight_follower_gets_a_curve_and_a_loose_one_a_line():
    rng = np.random.default_rng(5)
    speed = rng.choice([60.0, 75.0, 85.0, 95.0], size=(2, 500)) + rng.normal(0, 0.1, (2, 500))
    nozzle = 1.6e-4 * speed**2 + rng.normal(0, 0.002, speed.shape)  # pressure ~ speed**2
    a, b, c, x0 = fit_curve(speed, nozzle)
    fitted = drive_curve((a, b, c, x0), speed)
    line = drive_curve(fit_curve(speed, nozzle, curve=False), speed)
    assert np.allclose(c, 1.6e-4, rtol=0.05)
    assert np.std(nozzle - fitted) < 0.003 < np.std(nozzle - line)
    two = np.where(speed < 80, 75.0, 85.0) + rng.normal(0, 0.1, speed.shape)
    assert np.all(fit_curve(two, 1.6e-4 * two**2)[2] == 0.0)  # two settings: a line


def test_with_a_drive_only_the_drive_marks_transitions():
    panel = jet_panel()
    panel.values["reel_m_min"][0, 1010:1020] -= 80.0  # a tangle: the reel slows and
    panel.values["reel_m_min:sd"][0, 1010:1020] = 15.0  # shakes, the pump holds its setting
    train = Panel(panel.machines, panel.ts_ms[:600], 60_000, {})
    train.values.update({k: v[:, :600] for k, v in panel.values.items()})
    seen = {}
    for drive_steady in (False, True):
        mon = Monitor(drive_steady=drive_steady).fit({"jet": train})
        assert mon.models_["jet"].drive.field == "pump_pct"
        seen[drive_steady] = [
            (a.machine, a.signal, a.start_ms // 60_000)
            for a in mon.alarms(mon.score({"jet": panel}))
        ]
    assert seen[True] == [("d0", "reel_m_min", 1010)]
    assert ("d0", "reel_m_min", 1010) not in seen[False]  # the level was gated away
