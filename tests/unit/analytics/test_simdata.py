"""Simulator runs into 60-s panels (analytics.simdata)."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.simdata import DAY_MS, START_MS, bucket_panel, simulate

MIDDAY = START_MS + 6 * 3_600_000  # 11:30 in Tiruppur: the knitting shift runs

NAN = np.nan


def test_mean_and_sample_sd_per_bucket_ignore_missing_samples():
    ts = np.arange(8, dtype=np.int64) * 15_000  # 4 samples per bucket, 2 buckets
    x = np.array([[1.0, 2.0, 3.0, 6.0, 10.0, NAN, 14.0, NAN]])
    panel = bucket_panel(["m"], ts, {"speed_rpm": x})
    assert panel.ts_ms.tolist() == [0, 60_000]
    assert panel["speed_rpm"][0].tolist() == [3.0, 12.0]
    # sample sd (ddof 1): bucket 0 deviations -2,-1,0,3 -> 14/3; bucket 1: -2, 2 -> 8/1
    assert panel["speed_rpm:sd"][0] == pytest.approx([np.sqrt(14 / 3), np.sqrt(8.0)])


def test_single_sample_has_no_sd_and_empty_bucket_is_nan():
    ts = np.array([0, 130_000], dtype=np.int64)
    panel = bucket_panel(["m"], ts, {"temp_c": np.array([[20.0, 21.0]])})
    assert panel.ts_ms.tolist() == [0, 60_000, 120_000]
    assert np.isnan(panel["temp_c"][0, 1]) and panel["temp_c"][0, 2] == 21.0
    assert np.isnan(panel["temp_c:sd"]).all()


def test_counter_last_first_max_with_a_reset_inside_a_bucket():
    ts = np.arange(6, dtype=np.int64) * 20_000  # 3 samples per bucket
    c = np.array([[100.0, 105.0, 110.0, 112.0, 3.0, NAN], [NAN, NAN, NAN, 7.0, 8.0, 9.0]])
    panel = bucket_panel(["a", "b"], ts, {"picks_total": c})
    assert panel["picks_total"].tolist()[0] == [110.0, 3.0]
    assert panel["picks_total:first"].tolist()[0] == [100.0, 112.0]
    assert panel["picks_total:max"].tolist()[0] == [110.0, 112.0]
    assert np.isnan(panel["picks_total"][1, 0]) and panel["picks_total"][1, 1] == 9.0
    assert panel["picks_total:first"][1, 1] == 7.0
    assert "picks_total:sd" not in panel.values


def test_state_code_mode_ties_go_to_the_code_seen_first():
    ts = np.arange(8, dtype=np.int64) * 15_000
    s = np.array([[1, 2, 2, 1, 0, 3, 3, 0], [2, 2, 2, 1, 5, 5, 5, 5]], dtype=float)
    panel = bucket_panel(["a", "b"], ts, {"state_code": s})
    assert panel["state_code"].tolist() == [[1.0, 0.0], [2.0, 5.0]]
    assert "state_code:sd" not in panel.values


def test_buckets_align_to_the_grid_given():
    ts = np.array([61_000, 62_000], dtype=np.int64)
    panel = bucket_panel(["m"], ts, {"x": np.array([[1.0, 3.0]])}, start_ms=0, end_ms=180_000)
    assert panel.ts_ms.tolist() == [0, 60_000, 120_000]
    assert np.isnan(panel["x"][0, 0]) and panel["x"][0, 1] == 2.0


def test_simulate_short_run_gives_panels_events_and_labels():
    run = simulate(days=2 / 24, seed=3, step_s=5, factories=["f02"], progress=None, start_ms=MIDDAY)
    assert run.end_ms - run.start_ms == 2 * DAY_MS // 24
    knit = run.data["f02"]["knit_circular"]
    panel = knit.panel
    assert len(panel.machines) == 24 and len(panel.ts_ms) == 120
    assert np.all(np.diff(panel.ts_ms) == 60_000)
    revs = panel["revs_total"]
    assert np.all(panel["revs_total:first"] <= panel["revs_total:max"])
    assert np.nanmax(revs[:, -1] - revs[:, 0]) > 0  # the machines knit
    codes = panel["state_code"][np.isfinite(panel["state_code"])]
    assert set(np.unique(codes).tolist()) <= set(range(8))
    assert len(knit.events) > 0 and set(knit.events.kind.tolist()) <= {
        "state",
        "stop",
        "alarm",
        "step",
        "counter_reset",
    }
    assert set(knit.halls.values()) == {"knit1"}
    assert "hall_env" in run.data["f02"]
    assert run.machine_days == pytest.approx(25 * 2 / 24)


def test_tick_length_barely_changes_the_bucket_means():
    fine = simulate(
        days=1 / 24, seed=5, step_s=1, factories=["f02"], progress=None, start_ms=MIDDAY
    )
    coarse = simulate(
        days=1 / 24, seed=5, step_s=5, factories=["f02"], progress=None, start_ms=MIDDAY
    )
    a = fine.data["f02"]["knit_circular"].panel
    b = coarse.data["f02"]["knit_circular"].panel
    run = (a["state_code"] == 1) & (b["state_code"] == 1)
    rel = np.abs(a["cam_temp_c"][run] / b["cam_temp_c"][run] - 1)
    assert np.median(rel) < 0.02
    speed = np.nanmedian(a["speed_rpm"][run]) / np.nanmedian(b["speed_rpm"][run])
    assert speed == pytest.approx(1.0, rel=0.05)
