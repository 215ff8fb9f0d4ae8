"""RobustZ: median/MAD baselines per machine, CUSUM drift evidence, protected streaming."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.detectors.robust import RobustZ, cusum, robust_baseline


def test_baseline_is_median_and_scaled_mad_per_machine() -> None:
    panel = np.array([[1.0, 2.0, 3.0, 4.0, 100.0], [10.0, 10.0, 12.0, np.nan, 8.0]])[..., None]
    center, scale = robust_baseline(panel)
    # machine 0: median 3, |dev| = 2 1 0 1 97 -> MAD 1; machine 1: median 10, |dev| 0 0 2 2 -> 1
    np.testing.assert_allclose(center[:, 0], [3.0, 10.0])
    np.testing.assert_allclose(scale[:, 0], [1.4826, 1.4826])


def test_z_is_distance_in_robust_sds() -> None:
    det = RobustZ(rel_min_scale=0.0).fit(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    z = det.zscores(np.array([3.0, 3.0 + 5 * 1.4826, 3.0 - 1.4826]))
    np.testing.assert_allclose(z, [0.0, 5.0, -1.0], atol=1e-6)


def test_panel_fit_equals_fitting_each_machine_alone() -> None:
    rng = np.random.default_rng(4)
    panel = rng.normal(rng.uniform(0, 50, (5, 1, 2)), rng.uniform(0.5, 3, (5, 1, 2)), (5, 300, 2))
    panel[rng.random(panel.shape) < 0.03] = np.nan
    train, test = panel[:, :200], panel[:, 200:]
    together = RobustZ().fit(train).anomaly_score(test)
    alone = np.stack([RobustZ().fit(train[m]).anomaly_score(test[m]) for m in range(5)])
    np.testing.assert_allclose(together, alone)


def test_missing_samples_score_zero_and_are_not_learned() -> None:
    rng = np.random.default_rng(5)
    det = RobustZ(mode="cusum").fit(rng.normal(0, 1, (300, 2)))
    det.learn_one([5.0, 5.0])  # pushes the CUSUM up
    before = {k: getattr(det, k).copy() for k in ("center_", "scale_", "count_", "cusum_up_")}
    det.learn_one([np.nan, np.nan])
    for key, value in before.items():
        np.testing.assert_array_equal(getattr(det, key), value)
    assert RobustZ().fit(rng.normal(0, 1, 100)).score_one(np.nan) == 0.0


def test_cusum_closed_form_matches_the_recursion() -> None:
    z = np.random.default_rng(6).normal(0.3, 1.5, size=(3, 200))
    z[0, 50:60] = np.nan
    up, down = cusum(z, k=0.5)
    s_up, s_down = np.zeros(3), np.zeros(3)
    for t in range(200):
        zt = np.nan_to_num(z[:, t])
        s_up = np.where(np.isnan(z[:, t]), s_up, np.maximum(0, s_up + zt - 0.5))
        s_down = np.where(np.isnan(z[:, t]), s_down, np.maximum(0, s_down - zt - 0.5))
        np.testing.assert_allclose(up[:, t], s_up, atol=1e-9)
        np.testing.assert_allclose(down[:, t], s_down, atol=1e-9)


def test_cusum_catches_a_slow_drift_the_level_mode_misses() -> None:
    rng = np.random.default_rng(7)
    train = rng.normal(0, 1, 500)
    test = rng.normal(0, 1, 600) + np.linspace(0.0, 2.0, 600)  # creeps up to 2 sds
    level = RobustZ().fit(train).anomaly_score(test)
    drift = RobustZ(mode="cusum").fit(train).anomaly_score(test)
    assert np.mean(level[-100:] >= 0.5) < 0.3
    assert np.mean(drift[-100:] >= 0.5) > 0.95
    assert np.mean(drift[:100] >= 0.5) < 0.05  # no drift yet: quiet


def test_streaming_from_scratch_learns_the_baseline() -> None:
    det = RobustZ(warmup=30)
    early = []
    for x in np.random.default_rng(8).normal(20.0, 2.0, 2000):
        early.append(det.score_one(x))
        det.learn_one(x)
    assert max(early[:30]) == 0.0  # no baseline yet: no evidence, no alarm
    assert np.mean(np.array(early[100:]) >= 0.5) < 0.01
    assert det.center_[0, 0] == pytest.approx(20.0, abs=0.3)
    assert det.scale_[0, 0] == pytest.approx(2.0, rel=0.2)


def test_streaming_does_not_learn_what_it_flags() -> None:
    rng = np.random.default_rng(9)
    det = RobustZ(adapt_rate=0.05).fit(rng.normal(0, 1, (500, 1)))
    center = det.center_.copy()
    scores = []
    for x in rng.normal(10.0, 1.0, 300):  # a persistent fault at +10 sds
        scores.append(det.score_one(x))
        det.learn_one(x)
    np.testing.assert_allclose(det.center_, center)
    assert min(scores) > 0.8


def test_vectorised_streaming_scores_each_machine() -> None:
    det = RobustZ().fit(np.random.default_rng(10).normal(0, 1, (4, 300, 1)))
    score = det.score(np.array([0.0, 9.0, np.nan, -9.0]))
    assert score.shape == (4,)
    assert score[0] < 0.1 and score[1] > 0.9 and score[2] == 0.0 and score[3] > 0.9


def test_bad_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="mode"):
        RobustZ(mode="median").fit(np.zeros(10))


def test_scoring_other_machines_than_fitted_is_an_error() -> None:
    det = RobustZ().fit(np.zeros((3, 50, 1)))
    with pytest.raises(ValueError, match="fitted on 3"):
        det.anomaly_score(np.zeros((2, 10, 1)))
    with pytest.raises(ValueError, match="fitted on 3"):
        det.zscores(np.zeros((10, 1)))
