"""Instrument faults: tell a lying sensor from a process that really deviates.

A stuck, drifting, spiking or silent sensor needs an instrument technician, a process
fault needs the machine's mechanic; sending the wrong one costs a shift. The classifier
labels each window of one univariate sensor (any sensor: it sees only z-scores against
the machine's own baseline) as one of :data:`LABELS`, from features that separate the
instrument signatures:

* ``nan_frac``   — share of missing samples while the machine runs (dropout),
* ``repeat``     — share of consecutive samples with identical values (stuck: sd = 0
  while the machine runs, a real signal always has noise),
* ``spike``      — largest isolated jump that returns at the next sample (spike),
* ``level``, ``trend``, ``jump`` — how far, how steadily and how abruptly the window
  left the baseline (a drift creeps, a process step jumps),
* ``ref_level``, ``ref_trend`` — the same for a *reference*: a physically coupled signal
  of the same machine or the median of the hall's peers. A process fault moves coupled
  signals too; a drifting sensor moves alone. Without a reference, the reference is taken
  as normal, so a lone slow deviation reads as a drift.

The model is a :class:`~sklearn.ensemble.RandomForestClassifier` trained on synthetic
labelled windows the module generates itself (:func:`synthetic_windows`, seeded), so it
needs no labelled plant data. Counters going backwards are found by
:func:`counter_resets` (a rule, no model needed).

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(3)
>>> x = rng.normal(50.0, 2.0, size=(4, 240))         # 4 sensors, 4 windows of 60
>>> x[0, 60:120] = x[0, 60]                          # stuck
>>> x[1, 130] += 30.0                                # one spike
>>> x[2, 180:] = np.nan                              # dropout
>>> x[3, 60:120] += np.linspace(0.0, 20.0, 60)       # creeping drift, reference normal
>>> clf = InstrumentClassifier(n_per_class=150, random_state=0).fit()
>>> labels, confidence = clf.predict(x)
>>> labels[:, 1].tolist(), str(labels[1, 2]), str(labels[2, 3])
(['stuck', 'normal', 'normal', 'drift'], 'spike', 'dropout')
"""

from __future__ import annotations

# ruff: noqa: N803  (X, the sklearn name of a data matrix)
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier

from analytics.detectors.robust import robust_baseline

__all__ = [
    "FEATURES",
    "LABELS",
    "InstrumentClassifier",
    "counter_resets",
    "instrument_features",
    "synthetic_windows",
]

LABELS = ("normal", "process", "stuck", "drift", "spike", "dropout")
FEATURES = (
    "nan_frac",
    "repeat",
    "spike",
    "level",
    "trend",
    "jump",
    "sd",
    "ref_level",
    "ref_trend",
)


def counter_resets(values: np.ndarray) -> np.ndarray:
    """True where a counter went backwards since its previous valid sample, (M, T) bool.

    >>> counter_resets(np.array([[1.0, 5.0, np.nan, 2.0, 3.0]])).tolist()
    [[False, False, False, True, False]]
    """
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    t = np.arange(v.shape[1])
    last = np.maximum.accumulate(np.where(np.isnan(v), -1, t[None]), axis=1)  # last valid
    prev_idx = np.concatenate([np.full((v.shape[0], 1), -1), last[:, :-1]], axis=1)
    prev = np.take_along_axis(v, np.maximum(prev_idx, 0), axis=1)
    return (prev_idx >= 0) & ~np.isnan(v) & (v < prev)


def _level_trend(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median level and later-half minus earlier-half mean of windows (N, w)."""
    half = z.shape[1] // 2
    with _quiet():
        level = np.nanmedian(z, axis=1)
        trend = np.nanmean(z[:, half:], axis=1) - np.nanmean(z[:, :half], axis=1)
    return level, trend


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's all-NaN warnings: all-missing windows give NaN on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def instrument_features(
    z: np.ndarray, ref: np.ndarray | None = None, running: np.ndarray | None = None
) -> np.ndarray:
    """Features (:data:`FEATURES`) of standardised windows ``z`` (N, w) -> (N, 9).

    ``ref`` (N, w) is the standardised reference; None means a normal reference.
    ``running`` (N, w) bool marks the samples taken while the machine ran: the others
    are ignored (a stopped machine's sensor may legitimately read flat or nothing).
    All-missing windows give 0 for every feature but ``nan_frac``.
    """
    if running is not None:
        missing = np.sum(np.isnan(z) & running, axis=1) / np.maximum(running.sum(axis=1), 1)
        z = np.where(running, z, np.nan)
    else:
        missing = np.isnan(z).mean(axis=1)
    d = np.diff(z, axis=1)
    pair = ~np.isnan(d)
    n_pair = np.maximum(pair.sum(axis=1), 1)
    repeat = np.sum(pair & (d == 0), axis=1) / n_pair
    back = np.fmin(np.abs(d[:, :-1]), np.abs(d[:, 1:]))
    returns = np.sign(d[:, :-1]) * np.sign(d[:, 1:]) < 0
    spike = np.fmax.reduce(np.where(returns, back, 0.0), axis=1)
    with _quiet():
        jump = np.nanmax(np.where(pair, np.abs(d), np.nan), axis=1) - spike
        sd = np.nanstd(z, axis=1)
    level, trend = _level_trend(z)
    ref_level, ref_trend = _level_trend(ref) if ref is not None else (0 * level, 0 * level)
    feats = [missing, repeat, spike, np.abs(level), np.sign(level) * trend]
    feats += [jump, sd, np.sign(level) * ref_level, np.sign(level) * ref_trend]
    return np.nan_to_num(np.stack(feats, axis=1), nan=0.0)


def _ar_noise(rng: np.random.Generator, n: int, w: int) -> np.ndarray:
    """AR(1) noise with unit marginal sd and random persistence, (n, w)."""
    phi = rng.uniform(0.0, 0.8, size=(n, 1))
    eps = rng.normal(size=(n, w)) * np.sqrt(1 - phi**2)
    out = np.empty((n, w))
    out[:, 0] = rng.normal(size=n)
    for t in range(1, w):  # loop over the few samples of one window, all windows at once
        out[:, t] = phi[:, 0] * out[:, t - 1] + eps[:, t]
    return out * rng.uniform(0.7, 1.3, size=(n, 1))


def _onset_ramp(rng: np.random.Generator, n: int, w: int, abrupt: bool) -> np.ndarray:
    """Deviation of ``n`` windows: a step (abrupt) or a ramp of 3-12 sds, either sign."""
    t = np.arange(w)[None]
    start = rng.integers(0, w // 2, size=(n, 1))
    size = rng.uniform(3.0, 12.0, size=(n, 1)) * rng.choice([-1.0, 1.0], size=(n, 1))
    if abrupt:
        return np.where(t >= start, size, 0.0)
    offset = rng.uniform(0.0, 1.0, size=(n, 1)) * size  # a drift may predate the window
    return offset + (size - offset) * np.clip((t - start) / (w - start), 0.0, 1.0)


def synthetic_windows(
    n_per_class: int, window: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labelled synthetic windows: (z (N, w), reference (N, w), labels (N,) str).

    The values are already standardised (baseline sd = 1). Process faults are steps or
    ramps shared with the reference (half of the steps move the sensor alone: a process
    step seen by one sensor is still abrupt); drifts are ramps of the sensor alone.
    """
    rng = np.random.default_rng(seed)
    n, w = n_per_class, window
    z = {lab: _ar_noise(rng, n, w) for lab in LABELS}
    ref = {lab: _ar_noise(rng, n, w) for lab in LABELS}
    step = _onset_ramp(rng, n, w, abrupt=True)
    ramp = _onset_ramp(rng, n, w, abrupt=False)
    is_step = rng.random((n, 1)) < 0.5
    coupled = np.where(is_step, step, ramp)
    z["process"] += coupled
    shared = ~is_step | (rng.random((n, 1)) < 0.5)  # ramps always shared, steps half the time
    ref["process"] += np.where(shared, coupled * rng.uniform(0.5, 1.0, size=(n, 1)), 0.0)
    z["drift"] += _onset_ramp(rng, n, w, abrupt=False)
    t = np.arange(w)[None]
    start = rng.integers(0, w // 2, size=(n, 1))
    z["stuck"] = np.where(t >= start, np.take_along_axis(z["stuck"], start, axis=1), z["stuck"])
    idx = rng.integers(1, w - 1, size=(n, 3))
    size = rng.uniform(8.0, 20.0, size=(n, 3)) * rng.choice([-1.0, 1.0], size=(n, 3))
    size[:, 1:] *= rng.random((n, 2)) < 0.5  # 1-3 spikes
    np.put_along_axis(z["spike"], idx, np.take_along_axis(z["spike"], idx, axis=1) + size, 1)
    share = rng.uniform(0.3, 1.0, size=(n, 1))
    z["dropout"][rng.random((n, w)) < share] = np.nan
    labels = np.repeat(np.array(LABELS), n)
    return np.concatenate([z[k] for k in LABELS]), np.concatenate([ref[k] for k in LABELS]), labels


class InstrumentClassifier(BaseEstimator):
    """Label windows of univariate sensors as normal / process / stuck / drift / spike / dropout.

    Parameters
    ----------
    window : int
        Samples per window; windows are consecutive blocks from the first sample.
    n_per_class : int
        Synthetic training windows per label.
    n_estimators : int
        Trees of the random forest.
    min_scale : float
        Floor of a sensor's robust sd, in its unit.
    random_state : int
        Seed of the synthetic data and the forest.

    Attributes
    ----------
    model_ : RandomForestClassifier
        The fitted classifier.
    center_, scale_ : ndarray of shape (M,) or None
        Per-sensor baseline learned by ``fit(X)``; None when fitted without data (each
        ``predict`` call then uses the robust baseline of the data it classifies).
    """

    def __init__(
        self,
        *,
        window: int = 60,
        n_per_class: int = 300,
        n_estimators: int = 60,
        min_scale: float = 1e-6,
        random_state: int = 0,
    ) -> None:
        self.window = window
        self.n_per_class = n_per_class
        self.n_estimators = n_estimators
        self.min_scale = min_scale
        self.random_state = random_state

    def fit(self, X: np.ndarray | None = None, y: Any = None) -> InstrumentClassifier:
        """Train on synthetic windows; ``X`` (M, T) of normal data sets per-sensor baselines."""
        z, ref, labels = synthetic_windows(self.n_per_class, self.window, self.random_state)
        self.model_ = RandomForestClassifier(
            n_estimators=self.n_estimators, random_state=self.random_state, n_jobs=1
        ).fit(instrument_features(z, ref), labels)
        self.center_, self.scale_ = (None, None) if X is None else self._baseline(X)
        return self

    def _baseline(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        center, scale = robust_baseline(np.atleast_2d(np.asarray(X, dtype=np.float64))[..., None])
        return center[:, 0], np.fmax(scale[:, 0], self.min_scale)

    def _windows(
        self, X: np.ndarray, baseline: tuple[np.ndarray, np.ndarray] | None, run: np.ndarray
    ) -> np.ndarray:
        v = np.atleast_2d(np.asarray(X, dtype=np.float64))
        center, scale = (
            baseline if baseline is not None else self._baseline(np.where(run, v, np.nan))
        )
        n_w = v.shape[1] // self.window
        z = (v[:, : n_w * self.window] - center[:, None]) / scale[:, None]
        return z.reshape(v.shape[0] * n_w, self.window)

    def predict_proba(
        self,
        X: np.ndarray,
        reference: np.ndarray | None = None,
        running: np.ndarray | None = None,
    ) -> np.ndarray:
        """Class probabilities per sensor and window, (M, n_windows, len(classes_)).

        ``X`` (M, T) holds one sensor per row, NaN = missing. The optional ``reference``
        (M, T) holds each sensor's coupled signal or its peers' median. The optional
        ``running`` (M, T) bool marks samples taken while the machine ran; windows in
        which it ran less than a fifth of the time are "normal" with probability 1.
        A trailing partial window is not classified.
        """
        v = np.atleast_2d(np.asarray(X, dtype=np.float64))
        run = np.ones(v.shape, dtype=bool) if running is None else np.asarray(running, bool)
        base = None if self.center_ is None else (self.center_, self.scale_)
        z = self._windows(v, base, run)
        ref = None if reference is None else self._windows(reference, None, run)
        n_w = v.shape[1] // self.window
        run_w = run[:, : n_w * self.window].reshape(-1, self.window)
        proba = self.model_.predict_proba(instrument_features(z, ref, run_w))
        idle = run_w.mean(axis=1) < 0.2
        proba[idle] = self.classes_ == "normal"
        return proba.reshape(v.shape[0], n_w, proba.shape[1])

    @property
    def classes_(self) -> np.ndarray:
        """Labels in the order of ``predict_proba``'s last axis."""
        return self.model_.classes_

    def predict(
        self,
        X: np.ndarray,
        reference: np.ndarray | None = None,
        running: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(labels (M, n_windows) str, confidence (M, n_windows) in [0, 1])."""
        proba = self.predict_proba(X, reference, running)
        return self.classes_[proba.argmax(axis=2)], proba.max(axis=2)
