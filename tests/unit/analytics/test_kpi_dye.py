import numpy as np
import pytest

from analytics.events import EventTable
from analytics.frame import Panel
from analytics.kpi import dye
from analytics.kpi.shift import dye_batch_kpis, shift_kpis
from analytics.shifts import ShiftWindows

M = 60_000
T = 130  # minutes


def records():
    """Two batches on d1. b1: load at 1 min, steps 10-70 min, ends when b2 loads at 80 min.
    b2: load 80, FILL 90, HEAT 100, ADD 110 (shade correction), UNLOAD 120, WAIT at 125."""
    ev = [{"machine": "d1", "ts": 0, "kind": "state", "code": "WAIT"}]

    def add(t, kind, code, batch, **extra):
        ev.append(
            {"machine": "d1", "ts": t * M, "kind": kind, "code": code, "batch_id": batch, **extra}
        )

    add(1, "state", "SETUP", "b1", reason="LOAD")
    for t, c in [(10, "FILL"), (20, "HEAT"), (40, "HOLD"), (60, "COOL"), (70, "UNLOAD")]:
        add(t, "step", c, "b1")
    add(10, "state", "RUN", "b1")
    add(70, "state", "SETUP", "b1", reason="UNLOAD")
    add(80, "state", "SETUP", "b2", reason="LOAD")
    for t, c in [(90, "FILL"), (100, "HEAT"), (110, "ADD"), (120, "UNLOAD")]:
        add(t, "step", c, "b2")
    add(90, "state", "RUN", "b2")
    add(120, "state", "SETUP", "b2", reason="UNLOAD")
    ev.append({"machine": "d1", "ts": 125 * M, "kind": "state", "code": "WAIT"})
    return EventTable.from_records(ev)


def panel():
    minute = np.arange(T)
    fill = ((minute >= 10) & (minute < 20)) | ((minute >= 90) & (minute < 100))
    water = 5000 + np.cumsum(100.0 * fill)  # 100 L per FILL minute: 1,000 L per batch
    kg = np.where((minute >= 1) & (minute < 80), 500.0, np.nan)
    kg = np.where((minute >= 80) & (minute < 125), 400.0, kg)
    sp = np.full(T, 60.0)
    temp = sp + 10.0  # off by 10 C outside ramps: must not count
    heat = ((minute >= 20) & (minute < 40)) | ((minute >= 100) & (minute < 110))
    cool = (minute >= 60) & (minute < 70)
    temp = np.where(heat, sp - 2.0, np.where(cool, sp + 1.0, temp))
    return Panel(
        ["d1"],
        minute * M,
        M,
        {
            "water_l_total": water[None],
            "batch_kg": kg[None],
            "liquor_temp_c": temp[None],
            "temp_sp_c": sp[None],
        },
    )


def test_batch_table():
    b = dye.batch_table(records())
    assert b.batch_id.tolist() == ["b1", "b2"]
    # b1: 1 -> 80 min = 79 min; b2: 80 -> 125 min = 45 min.
    assert b.cycle_s.tolist() == [79 * 60.0, 45 * 60.0]
    assert b.rft.tolist() == [True, False]
    assert b.steps.tolist() == [5, 4]
    assert dye.right_first_time_pct(b.rft) == 50.0


def test_standard_cycle_defaults_to_median_and_accepts_mapping():
    b = dye.batch_table(records())
    # median of 4740 s and 2700 s = 3720 s
    assert dye.standard_cycle_s(b).tolist() == [3720.0, 3720.0]
    assert dye.standard_cycle_s(b, {"b1": 4000.0}).tolist()[0] == 4000.0
    assert np.isnan(dye.standard_cycle_s(b, {"b1": 4000.0})[1])
    assert dye.cycle_ratio(np.array([3720.0]), np.array([4740.0]))[0] == pytest.approx(
        0.7848, abs=1e-4
    )


def test_ramp_error_only_in_masked_minutes():
    # errors -2, -2, +1 in the mask, +10 outside: RMS = sqrt((4 + 4 + 1) / 3) = sqrt(3).
    t = np.array([[58.0, 58.0, 61.0, 70.0]])
    rms, mae = dye.ramp_error(t, np.full((1, 4), 60.0), np.array([[True, True, True, False]]))
    assert rms[0] == pytest.approx(np.sqrt(3))
    assert mae[0] == pytest.approx(5 / 3)


def test_step_mask_follows_step_events():
    mask = dye.step_mask(records(), ["d1"], np.arange(T) * M + M // 2)
    minutes = np.flatnonzero(mask[0])
    # HEAT 20-40, COOL 60-70, HEAT 100-110 -> 20 + 10 + 10 minutes.
    assert len(minutes) == 40
    assert minutes[0] == 20 and minutes[-1] == 109


def test_dye_shift_kpis():
    w = ShiftWindows(np.array([0, 100 * M]), np.array([100 * M, 130 * M]), ["d/A", "d/B"])
    t = shift_kpis("dye_jet", panel(), records(), w)
    # b1 ends at 80 min (window A), b2 at 125 min (window B).
    assert t["batches"].tolist() == [1.0, 1.0]
    assert t["rft_pct"].tolist() == [100.0, 0.0]
    # standard = median 3720 s: A 3720 / 4740 = 0.785, B 3720 / 2700 = 1.378 (P capped at 1)
    assert t["cycle_ratio"].tolist() == pytest.approx([3720 / 4740, 3720 / 2700])
    assert t["performance"].tolist() == pytest.approx([3720 / 4740, 1.0])
    # water: 1000 L / 500 kg = 2 L/kg; 1000 L / 400 kg = 2.5 L/kg; no steam meter: NaN.
    assert t["water_l_per_kg"].tolist() == pytest.approx([2.0, 2.5])
    assert np.isnan(t["steam_kg_per_kg"]).all()
    # ramps: A has 20 HEAT minutes at -2 C and 10 COOL minutes at +1 C:
    # RMS = sqrt((20 x 4 + 10 x 1) / 30) = sqrt(3); B: 10 HEAT minutes at -2 C.
    assert t["ramp_rmse_c"].tolist() == pytest.approx([np.sqrt(3), 2.0])
    assert t["ramp_mae_c"].tolist() == pytest.approx([50 / 30, 2.0])
    # A: state time 0-100 min: WAIT 0-1, SETUP 1-10, RUN 10-70, SETUP 70-90, RUN 90-100;
    # all planned: A = 70 / 100.
    assert t["availability"][0] == pytest.approx(0.7)


def test_dye_batch_kpis():
    t = dye_batch_kpis(panel(), records())
    assert t.label.tolist() == ["b1", "b2"]
    # b1 span 1-80 min: RUN 10-70 = 60 of 79 planned minutes; P = 3720 / 4740.
    assert t["availability"][0] == pytest.approx(60 / 79)
    assert t["oee"][0] == pytest.approx(60 / 79 * 3720 / 4740)
    # b2 span 80-125: RUN 90-120 = 30 of 45 min; P capped at 1.
    assert t["oee"][1] == pytest.approx(30 / 45)
    assert t["kg"].tolist() == [500.0, 400.0]
    assert t["water_l_per_kg"].tolist() == pytest.approx([2.0, 2.5])
    assert t["rft"].tolist() == [1.0, 0.0]
    assert t["ramp_rmse_c"].tolist() == pytest.approx([np.sqrt(3), 2.0])


def test_batch_without_known_start_or_end_has_no_cycle_time():
    ev = EventTable.from_records(
        [
            {"machine": "d", "ts": 0, "kind": "step", "code": "HOLD", "batch_id": "x"},
            {"machine": "d", "ts": 60_000, "kind": "step", "code": "FILL", "batch_id": "y"},
        ]
    )
    b = dye.batch_table(ev)
    assert np.isnan(b.cycle_s).all()  # x started before the data; y is still running


def test_batch_not_covered_by_the_panel_has_no_utilities():
    # The panel starts at minute 5, after b1 was loaded (minute 1): b1's water is partly
    # missing, so its L/kg is undefined; b2 (80-125 min) is covered.
    full = panel()
    cut = Panel(["d1"], full.ts_ms[5:], M, {k: v[:, 5:] for k, v in full.values.items()})
    t = dye_batch_kpis(cut, records())
    assert np.isnan(t["water_l_per_kg"][0])
    assert t["water_l_per_kg"][1] == pytest.approx(2.5)


def test_batch_kpis_of_a_shift_without_a_finished_batch_are_empty() -> None:
    """Start-up case: the only batch has not ended yet (the service met it on day one)."""
    panel = Panel(["d1"], np.arange(3) * 60_000, 60_000, {"state_code": np.ones((1, 3))})
    events = EventTable.from_records(
        [{"machine": "d1", "ts": 0, "kind": "step", "code": "FILL", "batch_id": "b1"}]
    )
    assert dye_batch_kpis(panel, events).rows() == []
