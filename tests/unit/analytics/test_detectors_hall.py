"""HallDetector: many machines deviating together light up the hall, one machine does not."""

from __future__ import annotations

import numpy as np

from analytics.detectors import HallDetector, RobustZ

SD = 0.05  # bar


def _air(seed: int, m: int = 10, t: int = 600) -> np.ndarray:
    """Air supply (bar) of ``m`` air-jet looms with a shared slow wave and own noise."""
    rng = np.random.default_rng(seed)
    shared = 0.02 * np.sin(np.arange(t) / 50.0)
    level = 6.0 + rng.normal(0, 0.1, (m, 1))
    return (level + shared + rng.normal(0, SD, (m, t)))[..., None]


def test_one_machine_fault_does_not_light_up_the_hall() -> None:
    x = _air(0)
    det = HallDetector().fit(x[:, :300])
    test = x[:, 300:].copy()
    test[4, 100:] -= 20 * SD  # one loom's valve fails badly
    assert det.anomaly_score(test).max() < 0.5
    assert not det.involved(test).any()


def test_hall_sag_is_scored_and_the_machines_involved_listed() -> None:
    x = _air(1)
    det = HallDetector().fit(x[:, :300])
    test = x[:, 300:].copy()
    sagging = np.array([0, 1, 2, 3, 5, 6, 8])  # 7 of 10 looms
    test[sagging, 150:] -= 5 * SD
    score = det.anomaly_score(test)
    assert score[:150].max() < 0.5
    assert score[160:].min() > 0.7
    involved = det.involved(test)
    assert involved[:, :150].sum() == 0
    rate = involved[:, 160:].mean(axis=1)
    assert np.all(rate[sagging] > 0.8)
    assert np.all(rate[[4, 7, 9]] < 0.1)


def test_min_fraction_sets_how_many_machines_make_a_hall_event() -> None:
    x = _air(2)
    test = x[:, 300:].copy()
    test[:3, 100:] += 6 * SD  # 3 of 10 machines
    strict = HallDetector().fit(x[:, :300]).anomaly_score(test)
    loose = HallDetector(min_fraction=0.25).fit(x[:, :300]).anomaly_score(test)
    assert strict[100:].mean() < 0.2
    assert loose[110:].mean() > 0.8


def test_too_few_machines_reporting_score_zero() -> None:
    x = _air(3)
    det = HallDetector(min_machines=3).fit(x[:, :300])
    test = x[:, 300:].copy()
    test[2:] = np.nan  # only two looms report
    test[:2] -= 10 * SD
    np.testing.assert_array_equal(det.anomaly_score(test), 0.0)


def test_precomputed_z_input_matches_values_input() -> None:
    x = _air(4)
    base = RobustZ().fit(x[:, :300])
    from_values = HallDetector().fit(x[:, :300]).anomaly_score(x[:, 300:])
    from_z = HallDetector(input_kind="z").fit(base.zscores(x[:, :300]))
    np.testing.assert_allclose(from_z.anomaly_score(base.zscores(x[:, 300:])), from_values)


def test_a_two_dimensional_input_is_machines_by_time() -> None:
    x = _air(5)
    test = x[:, 300:].copy()
    test[:, 50:] -= 5 * SD
    det = HallDetector().fit(x[:, :300, 0])
    np.testing.assert_array_equal(det.anomaly_score(test[..., 0]), det.anomaly_score(test))
    assert det.involved(test[..., 0]).shape == (10, 300)
