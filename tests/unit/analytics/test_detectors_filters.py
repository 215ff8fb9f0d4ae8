"""Protection filters: a persistent fault is not absorbed as the new normal."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.detectors import QuantileFilter, RobustZ, ThresholdFilter


def _stream(det, values: np.ndarray) -> np.ndarray:
    scores = []
    for x in values:
        scores.append(det.score_one(x))
        det.learn_one(x)
    return np.array(scores)


def _fault(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train = rng.normal(0.0, 1.0, 300)
    test = rng.normal(0.0, 1.0, 1000)
    test[200:] += 6.0  # thread breaks start at sample 200 and never stop
    return train, test


def test_persistent_fault_stays_alarmed_when_protected() -> None:
    train, test = _fault(0)
    naive = RobustZ(protect_z=np.inf, adapt_rate=0.02)  # learns everything
    unprotected = _stream(naive.fit(train), test)
    protected = _stream(ThresholdFilter(naive).fit(train), test)
    assert unprotected[800:].mean() < 0.2  # absorbed: the fault became normal
    assert protected[800:].mean() > 0.6
    assert np.mean(protected[250:] >= 0.5) > 0.8
    assert protected[:200].mean() < 0.1


def test_protection_can_be_switched_off() -> None:
    train, test = _fault(1)
    naive = RobustZ(protect_z=np.inf, adapt_rate=0.02)
    off = ThresholdFilter(naive, protect_anomaly_detector=False).fit(train)
    assert _stream(off, test)[800:].mean() < 0.2


def test_batch_fit_trims_a_fault_inside_the_training_span() -> None:
    rng = np.random.default_rng(2)
    train = rng.normal(0.0, 1.0, 1000)
    train[750:] += 8.0  # 25 % of the training span is a fault
    plain = RobustZ().fit(train)
    trimmed = ThresholdFilter(RobustZ()).fit(train)
    # median of the mixture: the 2/3-quantile of N(0, 1) ~ 0.43; trimmed: ~0 +- 0.05
    assert abs(trimmed.detector_.center_[0, 0]) < 0.15 < abs(plain.center_[0, 0])
    assert trimmed.detector_.scale_[0, 0] < 0.85 * plain.scale_[0, 0]


def test_wrapping_keeps_the_inner_detector_untouched() -> None:
    inner = RobustZ()
    ThresholdFilter(inner).fit(np.arange(50.0))
    assert not hasattr(inner, "center_")


def test_quantile_filter_threshold_never_below_its_floor() -> None:
    train, _ = _fault(3)
    det = QuantileFilter(RobustZ(), q=0.5, threshold=0.4).fit(train)
    assert det.threshold_ == pytest.approx(0.4)
    noisy = np.concatenate([train, np.full(100, 9.0)])
    assert QuantileFilter(RobustZ(), q=0.95, threshold=0.1).fit(noisy).threshold_ > 0.5
