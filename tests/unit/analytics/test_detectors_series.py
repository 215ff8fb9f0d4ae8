"""score_series: causal scores for any series, training spans, and alarms; episodes."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.detectors import RobustZ, episodes
from analytics.detectors.series import expanding_z, score_series

T0 = 1_767_168_000_000
STEP = 60_000


def _series(seed: int, n: int = 800) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = T0 + STEP * np.arange(n)
    x = np.column_stack([rng.normal(5.0, 0.5, n), rng.normal(300.0, 4.0, n)])
    return ts, x


@pytest.mark.parametrize("detector", ["robust", "cusum", "forest"])
@pytest.mark.parametrize("k", [50, 500])  # inside and after the training span
def test_scores_are_causal(detector: str, k: int) -> None:
    ts, x = _series(0)
    before = score_series(ts, x, train_until_ms=int(ts[200]), detector=detector).score
    changed = x.copy()
    changed[k:] = np.random.default_rng(1).normal(0.0, 50.0, changed[k:].shape)
    after = score_series(ts, changed, train_until_ms=int(ts[200]), detector=detector).score
    np.testing.assert_array_equal(before[:k], after[:k])
    assert not np.array_equal(before[k:], after[k:])


def test_training_span_by_time_or_by_fraction() -> None:
    ts, x = _series(2)
    assert score_series(ts, x, train_until_ms=int(ts[300]) + 1).train_end == 301
    assert score_series(ts, x, train_fraction=0.25).train_end == 200
    with pytest.raises(ValueError, match="training span"):
        score_series(ts, x, train_until_ms=int(ts[0]))


def test_training_samples_are_scored_against_earlier_samples_only() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    z = expanding_z(x[:, None], min_periods=2)[:, 0]
    assert np.isnan(z[:2]).all()
    assert z[2] == pytest.approx((3.0 - 1.5) / np.std([1.0, 2.0], ddof=1))
    assert z[4] == pytest.approx((100.0 - 2.5) / np.std([1.0, 2.0, 3.0, 4.0], ddof=1))


def test_normal_series_raises_no_alarm_and_scores_low() -> None:
    ts, x = _series(3)
    out = score_series(ts, x, train_fraction=0.25)
    assert out.alarms(min_duration_ms=5 * STEP) == []
    assert np.mean(out.score[200:] >= 0.5) < 0.01


def test_alarm_says_which_signal_how_far_and_since_when() -> None:
    ts, x = _series(4)
    x[500:, 1] += 6 * 4.0  # signal 1 steps by 6 sds at sample 500
    out = score_series(ts, x, train_fraction=0.25, signals=["vib_mm_s", "temp_c"])
    (alarm,) = out.alarms(min_duration_ms=10 * STEP, merge_gap_ms=5 * STEP)
    assert alarm.signal == "temp_c"
    assert int(ts[500]) <= alarm.start_ms <= int(ts[505])
    assert alarm.end_ms == int(ts[-1])
    assert 6.0 <= alarm.z <= 12.0  # peak of a 6-sd step plus noise
    assert alarm.baseline == pytest.approx(300.0, abs=1.0)
    assert 0.5 <= alarm.peak_score <= 1.0


def test_a_fault_inside_the_training_span_does_not_become_normal() -> None:
    ts, x = _series(5)
    x[100:180, 0] += 5.0  # 10 sds, 40 % of the 200-sample training span
    x[600:, 0] += 5.0  # the same fault later
    out = score_series(ts, x, train_fraction=0.25)
    assert np.mean(out.score[600:] >= 0.5) > 0.95
    assert out.baseline[0] == pytest.approx(5.0, abs=0.25)


def test_univariate_series_and_a_detector_instance() -> None:
    ts, x = _series(6)
    y = x[:, 0].copy()
    y[700:] = np.nan
    out = score_series(ts, y, detector=RobustZ(), rel_min_scale=0.0)
    assert out.score.shape == (800,) and out.z.shape == (800, 1)
    assert out.signals == ["0"]
    np.testing.assert_array_equal(out.score[700:], 0.0)


def test_episodes_across_machines_merge_and_minimum_duration() -> None:
    ts = np.arange(10) * STEP
    mask = np.array(
        [
            [1, 1, 0, 0, 1, 0, 0, 0, 0, 1],
            [0, 0, 0, 1, 1, 1, 1, 0, 0, 0],
        ],
        dtype=bool,
    )
    ep = episodes(mask, ts)
    assert list(zip(ep.row.tolist(), ep.start.tolist(), ep.end.tolist(), strict=True)) == [
        (0, 0, 1),
        (0, 4, 4),
        (0, 9, 9),
        (1, 3, 6),
    ]
    merged = episodes(mask, ts, merge_gap_ms=3 * STEP, min_duration_ms=2 * STEP)
    assert merged.row.tolist() == [0, 1]
    assert merged.start.tolist() == [0, 3] and merged.end.tolist() == [4, 6]
    # runs of different machines never merge, even when their gap is small
    assert episodes(np.array([[0, 1], [1, 0]], bool), ts[:2], merge_gap_ms=10**9).row.size == 2
