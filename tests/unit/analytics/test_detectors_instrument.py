"""Instrument-fault classifier: stuck / drift / spike / dropout sensors versus process faults."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from analytics.detectors.instrument import (
    LABELS,
    InstrumentClassifier,
    counter_resets,
    instrument_features,
    synthetic_windows,
)


@pytest.fixture(scope="module")
def clf() -> InstrumentClassifier:
    return InstrumentClassifier(n_per_class=200, random_state=0).fit()


def test_synthetic_windows_of_another_seed_are_classified(clf) -> None:
    z, ref, labels = synthetic_windows(80, clf.window, seed=123)  # unseen seed
    predicted = clf.model_.predict(instrument_features(z, ref))
    assert np.mean(predicted == labels) > 0.85
    for label in LABELS:
        assert np.mean(predicted[labels == label] == label) > 0.7, label


def _sensors(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw values (degC) of 5 sensors over 3 windows of 60 and a coupled reference."""
    rng = np.random.default_rng(seed)
    x = rng.normal(80.0, 0.5, size=(5, 180))
    ref = rng.normal(30.0, 2.0, size=(5, 180))
    return x, ref


def test_instrument_faults_and_a_process_step_on_real_scale_data(clf) -> None:
    x, ref = _sensors(1)
    train = x.copy()
    x[0, 60:120] = x[0, 75]  # stuck
    x[1, [70, 95]] += np.array([8.0, -6.0])  # spikes of 16 and 12 sds
    x[2, 60:120] = np.where(np.random.default_rng(2).random(60) < 0.6, np.nan, x[2, 60:120])
    x[3, 60:120] += np.linspace(0.0, 5.0, 60)  # the sensor alone creeps by 10 sds
    x[4, 70:120] += 4.0  # process: the temperature steps by 8 sds ...
    ref[4, 70:120] += 16.0  # ... and the coupled signal steps with it
    labels, confidence = clf.fit(train).predict(x, reference=ref)
    assert labels.shape == confidence.shape == (5, 3)
    assert labels[:, 1].tolist() == ["stuck", "spike", "dropout", "drift", "process"]
    assert set(labels[:, 0]) == {"normal"}
    assert np.all((confidence > 0.3) & (confidence <= 1.0))


def test_a_drift_with_the_reference_moving_too_is_a_process_fault(clf) -> None:
    x, ref = _sensors(3)
    x[:, 60:120] += np.linspace(0.0, 5.0, 60)
    ref[:, 60:120] += np.linspace(0.0, 20.0, 60)
    labels, _ = clf.fit(x[:, :60]).predict(x, reference=ref)
    assert np.mean(labels[:, 1] == "process") >= 0.8


def test_baseline_from_the_data_when_fitted_without_it() -> None:
    x, _ = _sensors(4)
    x[1, 130:] = np.nan
    labels, _ = InstrumentClassifier(n_per_class=100).fit().predict(x)
    assert labels[1, 2] == "dropout"
    assert np.mean(labels[[0, 2, 3, 4]] == "normal") > 0.9


def test_seeded_clone_and_pickle_reproduce_predictions(clf) -> None:
    x, _ = _sensors(5)
    x[2, 100] += 10.0
    proba = clf.fit().predict_proba(x)
    again = clone(clf).fit().predict_proba(x)
    restored = pickle.loads(pickle.dumps(clf)).predict_proba(x)
    np.testing.assert_array_equal(proba, again)
    np.testing.assert_array_equal(proba, restored)
    np.testing.assert_allclose(proba.sum(axis=2), 1.0)


def test_a_stopped_machine_is_neither_stuck_nor_dropout(clf) -> None:
    x, _ = _sensors(6)
    running = np.ones(x.shape, dtype=bool)
    running[0, 60:120] = False  # machine 0 stopped: its sensor reads a flat 20 degC
    x[0, 60:120] = 20.0
    running[1, 120:] = False  # machine 1 stopped: its gateway sends nothing
    x[1, 120:] = np.nan
    x[2, 130:140] = x[2, 130]  # machine 2 runs but the sensor freezes ...
    x[2, 140:] = np.nan  # ... then drops out
    labels, confidence = clf.fit(x[:, :60]).predict(x, running=running)
    assert labels[0, 1] == "normal" and labels[1, 2] == "normal"
    assert confidence[1, 2] == 1.0
    assert labels[2, 2] in ("stuck", "dropout")
    assert InstrumentClassifier(n_per_class=100).fit(x[:, :60]).predict(x)[0][0, 1] != "normal"


def test_counter_resets_find_counters_going_backwards() -> None:
    picks = np.array([[10.0, 20.0, 30.0, 5.0, 15.0], [1.0, np.nan, 0.5, 0.5, 0.7]])
    assert counter_resets(picks).tolist() == [
        [False, False, False, True, False],
        [False, False, True, False, False],
    ]
