"""Event-level matching of alarms to labelled faults (analytics.evaluation)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from analytics.evaluation import (
    Fault,
    _Pool,
    format_report,
    match,
    run_eval,
    summarise,
)
from analytics.events import EventTable
from analytics.frame import Panel
from analytics.simdata import SimRun, TypeData

H = 3_600_000
HALLS = {"l1": "w1", "l2": "w1", "l3": "w1", "env": "w1", "k1": "k"}


def alarm(machine, start, end=None, kind="process", machines=(), machine_type="loom_airjet"):
    return SimpleNamespace(
        machine=machine,
        start_ms=start,
        end_ms=end,
        kind=kind,
        machines=machines,
        machine_type=machine_type,
    )


def fault(fid, ftype, machines, onset, repaired, failure=None, hall=False, instrument=False):
    return Fault(
        fid, ftype, tuple(machines), "w1", instrument, hall, onset, onset, failure, repaired
    )


def test_alarm_inside_window_detects_and_outside_is_false():
    faults = [fault("F1", "bearing_wear", ["l1"], 10 * H, 40 * H, failure=30 * H)]
    alarms = [alarm("l1", 20 * H), alarm("l1", 5 * H), alarm("l2", 20 * H)]
    m = match(alarms, faults, HALLS, grace_ms=H)
    assert m.detected == {"F1": 20 * H}
    assert m.alarm_fault == ["F1", None, None]
    assert m.false_alarms == 2


def test_grace_after_repair_and_not_before_onset():
    faults = [fault("F1", "rope_tangle", ["l1"], 10 * H, 11 * H)]
    late = match([alarm("l1", 11 * H + H // 2)], faults, HALLS, grace_ms=H)
    too_late = match([alarm("l1", 12 * H + 1)], faults, HALLS, grace_ms=H)
    early = match([alarm("l1", 10 * H - 60_001)], faults, HALLS, grace_ms=H)
    same_bucket = match([alarm("l1", 10 * H - 59_000)], faults, HALLS, grace_ms=H)
    assert late.detected == {"F1": 11 * H + H // 2}
    assert too_late.detected == {} and too_late.false_alarms == 1
    assert early.detected == {} and early.false_alarms == 1
    assert same_bucket.detected == {"F1": 10 * H - 59_000}  # the bucket holding the onset


def test_hall_fault_detected_on_any_hall_machine_or_hall_alarm():
    hall_fault = fault("H1", "compressor_low_pressure", ["l1", "l2"], 10 * H, 11 * H, hall=True)
    on_peer = match([alarm("l3", 10 * H + 60_000)], [hall_fault], HALLS)
    by_hall = match([alarm("w1", 10 * H, kind="hall", machines=("l2",))], [hall_fault], HALLS)
    other_hall = match([alarm("k1", 10 * H)], [hall_fault], HALLS)
    assert "H1" in on_peer.detected and "H1" in by_hall.detected
    assert "H1" in by_hall.kind_ok
    assert other_hall.detected == {} and other_hall.false_alarms == 1


def test_instrument_kind_must_match_the_fault_type():
    stuck = fault("S1", "sensor_stuck", ["l1"], 0, 5 * H, instrument=True)
    right = match([alarm("l1", H, kind="instrument:stuck")], [stuck], HALLS)
    wrong = match([alarm("l1", H, kind="instrument:drift")], [stuck], HALLS)
    process = match([alarm("l1", H, kind="process")], [stuck], HALLS)
    assert "S1" in right.kind_ok
    assert "S1" in wrong.detected and "S1" not in wrong.kind_ok
    assert "S1" in process.detected and "S1" not in process.kind_ok


def _pool(faults, alarms_matched, detected, end=100 * H):
    pool = _Pool()
    pool.faults = [(f, "loom_airjet") for f in faults]
    pool.detected = detected
    pool.alarm_fault = alarms_matched
    pool.alarm_types = ["loom_airjet"] * len(alarms_matched)
    pool.fault_type_of = {f.fault_id: f.fault_type for f in faults}
    pool.span_end = {f.fault_id: end for f in faults}
    return pool


def test_summary_precision_recall_f1_and_lead_time():
    faults = [
        fault("A", "bearing_wear", ["l1"], 0, 50 * H, failure=40 * H),
        fault("B", "bearing_wear", ["l2"], 0, 50 * H, failure=40 * H),
        fault("C", "warp_tension_drift", ["l3"], 0, 10 * H),
        fault("D", "bearing_wear", ["l3"], 0, 150 * H, failure=120 * H),  # fails after the end
    ]
    # A caught 10 h before failure, B only after its failure, C and D missed;
    # alarms: A twice, B once, one false alarm.
    pool = _pool(faults, ["A", "A", "B", None], {"A": 30 * H, "B": 45 * H})
    rows = summarise(pool, {"bearing_wear": ("loom_airjet",)})
    overall = rows[-1]
    assert (overall.faults, overall.detected) == (4, 2)
    assert overall.precision == pytest.approx(3 / 4)
    assert overall.recall == pytest.approx(2 / 4)
    assert overall.f1 == pytest.approx(2 * 0.75 * 0.5 / 1.25)
    assert (overall.degradations, overall.before_failure) == (2, 1)
    assert overall.lead_h_median == pytest.approx(10.0)
    bearing = next(r for r in rows if r.name == "bearing_wear")
    assert (bearing.faults, bearing.detected, bearing.true_alarms) == (3, 2, 3)
    assert bearing.false_alarms == 1  # charged the false alarm on its machine type
    warp = next(r for r in rows if r.name == "warp_tension_drift")
    assert warp.recall == 0.0 and np.isnan(warp.lead_h_median)


@pytest.mark.parametrize("seeds", [(7,)])
def test_run_eval_on_a_given_run_prints_the_table(seeds):
    run = _tiny_run()
    report = run_eval(days=1.0, seeds=seeds, tune_seed=1, runs={7: run}, train_days=0.5)
    text = format_report(report)
    assert "tuned on seed(s) 1;" in text and "report seeds 7" in text
    assert "in-sample" not in text
    assert report.overall.faults == 0 and report.overall.alarms >= 0
    assert report.machine_days == pytest.approx(0.5 * 2)
    several = run_eval(days=1.0, seeds=seeds, tune_seed=(1, 7), runs={7: run}, train_days=0.5)
    text = format_report(several)
    assert "tuned on seed(s) 1, 7;" in text and "in-sample" in text


def _tiny_run():
    rng = np.random.default_rng(0)
    t = 1440
    ts = np.arange(t, dtype=np.int64) * 60_000
    values = {"temp_c": rng.normal(25.0, 0.3, (2, t)), "rh_pct": rng.normal(80.0, 1.0, (2, t))}
    panel = Panel(["e1", "e2"], ts, 60_000, values)
    data = {"f": {"hall_env": TypeData(panel, EventTable.from_records([]), {"e1": "a", "e2": "b"})}}
    return SimRun("unit", 7, 0, t * 60_000, 60.0, data, [])
