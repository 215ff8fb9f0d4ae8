"""Contract checks every registered detector must pass (river ``checks`` / sklearn style).

:func:`yield_checks` yields the checks that apply to a detector; each check takes an
UNFITTED detector and raises ``AssertionError`` when the contract is broken.
``tests/unit/analytics/test_detector_contract.py`` runs every
:data:`analytics.detectors.REGISTRY` detector (with each of its ``_unit_test_params()``)
through every check, with test ids ``"{detector}:{check}"``.

The data are seeded: a panel of machines with two coupled signals around a working point
(vibration in mm/s, bearing temperature in degC) with autocorrelated noise, into which
:func:`faulty_panel` injects a step, a slow drift and spikes on single machines, or a
shift of the whole hall for detectors whose samples are time steps; and
:func:`simulator_panel`, 6 h of the simulator's air-jet looms (vibration, warp tension,
60-s buckets, stopped looms blanked) with a step and a drift injected.

Example
-------
>>> from analytics.detectors import RobustZ
>>> [check.__name__ for check in yield_checks(RobustZ())][:3]
['check_init_stores_params', 'check_clone', 'check_pickle']
>>> check_estimator(RobustZ())
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from functools import cache
from typing import NamedTuple

import numpy as np
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from analytics.detectors.base import Detector
from analytics.simdata import simulate
from millwatch.contract import STATES

__all__ = [
    "FaultData",
    "check_estimator",
    "faulty_panel",
    "normal_panel",
    "simulator_panel",
    "yield_checks",
]

Check = Callable[[Detector], None]

#: Machines, training and test lengths of the check data.
M, T_TRAIN, T_TEST = 6, 400, 300
#: State code of a running machine.
RUN = STATES["RUN"]


class FaultData(NamedTuple):
    """Training panel, test panel with faults, and the test labels (True = faulty)."""

    train: np.ndarray
    test: np.ndarray
    labels: np.ndarray


def normal_panel(m: int, t: int, seed: int) -> np.ndarray:
    """Seeded normal data (m, t, 2): vibration ~4 mm/s and temperature ~70 degC, AR(1)."""
    rng = np.random.default_rng(seed)
    eps = rng.normal(size=(m, t, 2))
    noise = np.empty_like(eps)
    noise[:, 0] = eps[:, 0]
    for i in range(1, t):  # AR(1) over time, all machines and signals at once
        noise[:, i] = 0.5 * noise[:, i - 1] + np.sqrt(0.75) * eps[:, i]
    level = np.array([4.0, 70.0]) + rng.normal(0.0, [0.3, 2.0], size=(m, 1, 2))
    return level + noise * np.array([0.2, 1.0])


def faulty_panel(seed: int = 0, hall: bool = False) -> FaultData:
    """Normal training data and a test span with injected faults.

    Per machine (``hall=False``): machine 1 steps +6 sds in vibration, machine 2's
    temperature drifts to +10 sds, machine 3 gets four +15-sd vibration spikes. Labels
    are (M, T_TEST). For a hall (``hall=True``): every machine's vibration rises by 4 sds
    in the last third, labels are (T_TEST,).
    """
    data = normal_panel(M, T_TRAIN + T_TEST, seed)
    train, test = data[:, :T_TRAIN], data[:, T_TRAIN:].copy()
    sd = np.array([0.2, 1.0])
    if hall:
        labels = np.zeros(T_TEST, dtype=bool)
        labels[2 * T_TEST // 3 :] = True
        test[:, labels, 0] += 4 * sd[0]
        return FaultData(train, test, labels)
    labels = np.zeros((M, T_TEST), dtype=bool)
    half = T_TEST // 2
    test[1, half:, 0] += 6 * sd[0]
    test[2, half:, 1] += np.linspace(0.0, 10 * sd[1], T_TEST - half)
    labels[1:3, half:] = True
    spikes = np.array([60, 130, 200, 270])
    test[3, spikes, 0] += 15 * sd[0]
    labels[3, spikes] = True
    return FaultData(train, test, labels)


def _data(detector: Detector, seed: int = 0) -> FaultData:
    return faulty_panel(seed, hall=detector.per_time)


def check_init_stores_params(detector: Detector) -> None:
    """``__init__`` only stores params: they round-trip, and nothing ends in ``_`` yet."""
    params = detector.get_params(deep=False)
    rebuilt = type(detector)(**params)
    assert rebuilt.get_params(deep=False).keys() == params.keys()
    learned = [k for k in vars(detector) if k.endswith("_") and not k.startswith("_")]
    assert not learned, f"attributes set before fit: {learned}"


def check_clone(detector: Detector) -> None:
    """A clone is unfitted, has equal params, and fits to the same scores."""
    data = _data(detector)
    fitted = clone(detector).fit(data.train)
    twin = clone(fitted)
    assert not hasattr(twin, "n_features_in_")
    np.testing.assert_allclose(
        twin.fit(data.train).anomaly_score(data.test), fitted.anomaly_score(data.test)
    )


def check_pickle(detector: Detector) -> None:
    """A pickled and restored fitted detector gives identical scores."""
    data = _data(detector)
    fitted = clone(detector).fit(data.train)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(
        restored.anomaly_score(data.test), fitted.anomaly_score(data.test)
    )


def check_seed(detector: Detector) -> None:
    """Two fits with the same params (and seed) on the same data give the same scores."""
    data = _data(detector)
    first = clone(detector).fit(data.train).anomaly_score(data.test)
    second = clone(detector).fit(data.train).anomaly_score(data.test)
    np.testing.assert_array_equal(first, second)


def check_scores_in_unit_interval(detector: Detector) -> None:
    """Anomaly scores lie in [0, 1], have the documented shape and opposite sign rules."""
    data = _data(detector)
    fitted = clone(detector).fit(data.train)
    score = fitted.anomaly_score(data.test)
    assert score.shape == data.labels.shape
    assert np.all((score >= 0) & (score <= 1))
    order = np.argsort(fitted.score_samples(data.test), axis=None)
    flat = score.ravel()
    assert flat[order[0]] >= flat[order[-1]], "score_samples: lower must be more abnormal"


def check_missing(detector: Detector) -> None:
    """NaN samples and a missing signal are handled: finite scores, faults still stand out."""
    data = _data(detector)
    rng = np.random.default_rng(1)
    train, test = data.train.copy(), data.test.copy()
    train[rng.random(train.shape) < 0.05] = np.nan
    test[rng.random(test.shape) < 0.05] = np.nan
    test[0, :, 1] = np.nan  # machine 0 lost its temperature sensor
    fitted = clone(detector).fit(train)
    score = fitted.anomaly_score(test)
    assert np.all(np.isfinite(score)) and np.all((score >= 0) & (score <= 1))
    assert score[data.labels].mean() > score[~data.labels].mean() + 0.2


def check_batch_matches_stream(detector: Detector) -> None:
    """Streaming (score then learn, one sample at a time) ~ batch scores on normal data."""
    data = normal_panel(1, T_TRAIN + 200, seed=2)[0]
    batch = clone(detector).fit(data[:T_TRAIN])
    stream = clone(batch).fit(data[:T_TRAIN])
    expected = batch.anomaly_score(data[T_TRAIN:])
    got = []
    for x in data[T_TRAIN:]:
        got.append(stream.score_one(x))
        stream.learn_one(x)
    assert np.mean(np.abs(np.array(got) - expected)) < 0.02
    assert np.max(np.abs(np.array(got) - expected)) < 0.3


def check_fault_scores_higher(detector: Detector) -> None:
    """Injected faults (step, drift, spikes; or a hall shift) score higher: ROC-AUC > 0.8."""
    for seed in (0, 1):
        data = _data(detector, seed)
        score = clone(detector).fit(data.train).anomaly_score(data.test)
        faulty, normal = score[data.labels], score[~data.labels]
        assert faulty.mean() > normal.mean() + 0.3, (faulty.mean(), normal.mean())
        auc = roc_auc_score(data.labels.ravel(), score.ravel())
        assert auc > 0.8, f"ROC-AUC {auc:.3f} with seed {seed}"


@cache
def _simulated_looms(seed: int) -> np.ndarray:
    """6 h of the default scenario's air-jet looms in 60-s buckets, (M, T, 2), seeded.

    Signals: ``vib_rms_mm_s`` and ``warp_tension_kn``, NaN while a loom is not running.
    """
    run = simulate(
        "default", days=0.25, step_s=10, faults=False, factories=["f01"], seed=seed, progress=None
    )
    panel = run.panels("f01")["loom_airjet"]
    x = np.stack([panel["vib_rms_mm_s"], panel["warp_tension_kn"]], axis=2)
    x[panel["state_code"] != RUN] = np.nan
    return x


def simulator_panel(seed: int = 3, hall: bool = False) -> FaultData:
    """The first 3 h of :func:`_simulated_looms` as training, faults injected in the rest.

    Per machine: looms 0-2 step +6 sds in vibration half-way, looms 3-5's warp tension
    drifts to +10 sds (sds per loom from its training span). Hall: every loom's vibration
    rises by 4 sds in the last third.
    """
    x = _simulated_looms(seed)
    half = x.shape[1] // 2
    train, test = x[:, :half], x[:, half:].copy()
    with np.errstate(invalid="ignore"):
        sd = np.nanstd(train, axis=1)
    n = test.shape[1]
    if hall:
        labels = np.zeros(n, dtype=bool)
        labels[2 * n // 3 :] = True
        test[:, labels, 0] += 4 * sd[:, :1]
        return FaultData(train, test, labels)
    labels = np.zeros(test.shape[:2], dtype=bool)
    test[0:3, n // 2 :, 0] += 6 * sd[0:3, :1]
    labels[0:3, n // 2 :] = True
    test[3:6, n // 3 :, 1] += np.linspace(0.0, 10.0, n - n // 3) * sd[3:6, 1:]
    labels[3:6, n // 3 :] = True
    return FaultData(train, test, labels)


def check_fault_on_simulator_stream(detector: Detector) -> None:
    """Faults injected into seeded simulator looms score higher: ROC-AUC > 0.8.

    Samples of stopped looms (all signals NaN) are left out of the ROC.
    """
    data = simulator_panel(hall=detector.per_time)
    score = clone(detector).fit(data.train).anomaly_score(data.test)
    seen = slice(None) if detector.per_time else ~np.isnan(data.test).all(axis=2)
    labels, score = data.labels[seen], score[seen]
    assert score[labels].mean() > score[~labels].mean() + 0.3
    auc = roc_auc_score(labels, score)
    assert auc > 0.8, f"ROC-AUC {auc:.3f} on the simulator stream"


def yield_checks(detector: Detector) -> Iterator[Check]:
    """The checks that apply to ``detector`` (batch ~ stream only for streaming ones)."""
    yield check_init_stores_params
    yield check_clone
    yield check_pickle
    yield check_seed
    yield check_scores_in_unit_interval
    yield check_missing
    if detector.streaming:
        yield check_batch_matches_stream
    yield check_fault_scores_higher
    yield check_fault_on_simulator_stream


def check_estimator(detector: Detector) -> None:
    """Run every applicable check; raises ``AssertionError`` on the first failure."""
    for check in yield_checks(detector):
        check(clone(detector))
