import numpy as np
import pytest

from analytics.intervals import StopTable
from analytics.kpi import loom
from analytics.kpi.oee import availability, oee, performance, planned_seconds, quality


def test_textbook_loom_running_efficiency():
    # Spec §2 [TC-eff]: per 1e5 picks at 180 ppm the loom runs 1e5 / 180 = 555.56 min and
    # stops 20 x 0.85 + 15 x 0.30 + 6 x 0.12 = 17 + 4.5 + 0.72 = 22.22 min:
    # 555.56 / 577.78 = 96.2 %.
    run_min = 1e5 / 180
    stop_min = 20 * 0.85 + 15 * 0.30 + 6 * 0.12
    eff = loom.efficiency(np.array([run_min * 60]), np.array([stop_min * 60]))
    assert eff[0] == pytest.approx(0.9615, abs=1e-4)
    # Picks-based over the same minutes: 1e5 picks / (180 x 577.78) is the same figure.
    by_picks = loom.efficiency_picks(
        np.array([1e5]), np.array([180.0]), np.array([run_min + stop_min])
    )
    assert by_picks[0] == pytest.approx(eff[0])


def test_stops_per_1e5_picks():
    # 41 stops in 1e5 picks = 41; 6 stops in 42,240 picks = 14.2.
    got = loom.stops_per_1e5(np.array([41.0, 6.0, 1.0]), np.array([1e5, 42_240.0, 0.0]))
    assert got[:2] == pytest.approx([41.0, 14.2045], abs=1e-4)
    assert np.isnan(got[2])  # no picks: undefined


def test_mttr_and_mtbf():
    # 3 warp repairs of 150, 200, 250 s: 600 / 3 = 200 s; 1,000 run-h with 2 breakdowns.
    assert loom.mttr_s(np.array([600.0]), np.array([3.0])).tolist() == [200.0]
    assert loom.mtbf_s(np.array([1000 * 3600.0]), np.array([2.0])).tolist() == [1_800_000.0]
    assert np.isnan(loom.mtbf_s(np.array([10.0]), np.array([0.0]))[0])


def test_stop_counts_by_window_and_class():
    t = StopTable(
        machine=np.array(["a", "a", "a", "b", "b"]),
        code=np.array(["STOP_PROCESS"] * 5),
        reason=np.array(["WARP", "WEFT_LONG", "WARP", "DOFF", "WARP"]),
        cls=np.array(["warp", "weft", "warp", "other", "warp"]),
        start_ms=np.array([10, 50, 150, 99, 250]),  # window 2 ends at 200: last is outside
        duration_s=np.array([100.0, 40.0, 200.0, 300.0, 5.0]),
    )
    n, rep = loom.stop_counts(
        t, ["a", "b"], np.array([0, 100]), np.array([100, 200]), ("warp", "weft", "other")
    )
    assert n[0].tolist() == [[1, 1, 0], [1, 0, 0]]
    assert n[1].tolist() == [[0, 0, 1], [0, 0, 0]]
    assert rep[0, :, 0].tolist() == [100.0, 200.0]
    assert loom.mttr_s(rep, n)[1, 0, 2] == 300.0


def test_oee_from_state_seconds():
    # Shift of 8 h: 1 h OFF_NOPLAN, 6 h RUN, 0.5 h STOP_PROCESS, 0.5 h BREAKDOWN.
    # Planned = 7 h, A = 6 / 7; P = 760 / 800 = 0.95; Q = 98 / 100.
    s = np.zeros((1, 8))
    s[0, [0, 1, 2, 3]] = [3600, 6 * 3600, 1800, 1800]
    a = availability(s[:, 1], planned_seconds(s))
    p = performance(np.array([760.0]), np.array([800.0]))
    q = quality(np.array([98.0]), np.array([100.0]))
    assert oee(a, p, q)[0] == pytest.approx(6 / 7 * 0.95 * 0.98)
    # A faster-than-target rate is capped at P = 1; no plan gives NaN, not a warning.
    assert performance(np.array([900.0]), np.array([800.0]))[0] == 1.0
    assert np.isnan(availability(np.array([0.0]), np.array([0.0]))[0])


def test_planned_time_excludes_maintenance_and_idle():
    # codes 0 OFF_NOPLAN, 6 PLANNED_MAINT, 7 IDLE_READY are outside planned time.
    s = np.array([[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]])
    assert planned_seconds(s).tolist() == [2 + 4 + 8 + 16 + 32.0]
