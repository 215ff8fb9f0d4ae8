"""A multivariate model per machine class: IsolationForest on trailing-window features.

Signals of one machine move together (a loom's speed, warp tension and vibration), so a
fault can show in their combination before any one signal leaves its band. Each machine's
signals are first standardised by *its own* training baseline (median, scaled MAD), which
puts all machines of a class on one scale, so ONE model is trained across the class's
machines (more data, and a new machine is scored from its first day). The features per
machine, time step and signal are computed over the trailing ``window`` samples (causal):

* ``mean``  — mean of z,
* ``sd``    — standard deviation of z,
* ``trend`` — mean of the later half minus mean of the earlier half (sds per half-window).

:class:`sklearn.ensemble.IsolationForest` is trained on a seeded subsample of those rows.
Its ``score_samples`` (lower = more abnormal) is calibrated against the training rows into
a deviation in robust sds, ``dev = max((median_train - s) / tail_scale, 0)``, where the
tail scale puts the training 99.5 % quantile at 2.576 sds, as for normal data.
An isolation forest hardly notices a point far out in ONE of many features (random
feature choice: a 26-sd shift of one window mean moved its score by ~1.5 sds in our test),
so a guard statistic ``g = max_j |f_j - med_j| / (1.4826 MAD_j)`` over the features is
calibrated the same way, and the deviation is the larger of the two.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(0.0, 1.0, size=(4, 400, 2))        # 4 machines, 2 signals
>>> det = ForestDetector(n_estimators=50, random_state=0).fit(x[:, :300])
>>> test = x[:, 300:].copy()
>>> test[2, 50:, 1] += 6.0                              # machine 2, signal 1 shifts
>>> score = det.anomaly_score(test)
>>> score.shape, bool(score[2, 60:].mean() > 0.8), bool(score[[0, 1, 3], 60:].mean() < 0.2)
((4, 100), True, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest

from analytics.detectors.base import Detector
from analytics.detectors.robust import MAD_TO_SD, check_machines, robust_baseline

__all__ = ["ForestDetector", "window_features"]

#: Training quantile of the forest and guard statistics that maps to TAIL_SDS sds.
TAIL_QUANTILE = 0.995
#: Phi^-1(0.995): where the same quantile of a normal statistic lies.
TAIL_SDS = 2.576


def _trailing_sum(a: np.ndarray, w: int) -> np.ndarray:
    """Sum over the trailing ``w`` samples along axis 1 (partial windows at the start)."""
    c = np.concatenate([np.zeros_like(a[:, :1]), np.cumsum(a, axis=1)], axis=1)
    idx = np.arange(1, a.shape[1] + 1)
    return c[:, idx] - c[:, np.maximum(idx - w, 0)]


def window_features(z: np.ndarray, window: int) -> np.ndarray:
    """Trailing-window mean, sd and trend of a panel z (M, T, d) -> (M, T, 3d).

    NaN samples are left out of each window; a window with fewer than ``window // 2``
    samples in either half gives NaN features.

    >>> f = window_features(np.arange(8.0)[None, :, None], 4)
    >>> f[0, -1].tolist()                                 # mean, sd, trend of 4, 5, 6, 7
    [5.5, 1.118033988749895, 2.0]
    """
    half = max(window // 2, 1)
    valid = ~np.isnan(z)
    zv = np.where(valid, z, 0.0)
    n_w, n_h = _trailing_sum(valid.astype(float), window), _trailing_sum(valid.astype(float), half)
    s_w, s_h = _trailing_sum(zv, window), _trailing_sum(zv, half)
    q_w = _trailing_sum(zv * zv, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s_w / n_w
        sd = np.sqrt(np.maximum(q_w / n_w - mean**2, 0.0))
        trend = s_h / n_h - (s_w - s_h) / (n_w - n_h)
    enough = (n_h >= max(half // 2, 1)) & (n_w - n_h >= max(half // 2, 1))
    feats = np.concatenate([mean, sd, trend], axis=2)
    return np.where(np.tile(enough, (1, 1, 3)), feats, np.nan)


class ForestDetector(Detector):
    """IsolationForest over per-machine-standardised window features of a machine class.

    ``fit(X)`` takes the class's panel ``(M, T, d)`` (or one series); scoring expects the
    same machines in the same order, since each keeps its own baseline.

    Parameters
    ----------
    window : int
        Trailing window in samples (e.g. 15 one-minute buckets).
    n_estimators, max_samples : int
        Passed to :class:`~sklearn.ensemble.IsolationForest`.
    max_train_rows : int
        Training rows subsampled (seeded) from all machines and times.
    min_scale : float
        Floor of a machine's robust sd, in the signal's unit.
    random_state : int
        Seed of the subsample and the forest: same seed, same scores.

    Attributes
    ----------
    center_, scale_ : ndarray of shape (M, d)
        Per-machine baseline.
    forest_ : IsolationForest
        The class model.
    feature_center_, feature_scale_ : ndarray of shape (3d,)
        Median and robust sd of each training feature.
    calibration_ : ndarray of shape (2, 2)
        Median and tail scale of the training forest score and guard statistic.
    """

    def __init__(
        self,
        *,
        window: int = 15,
        n_estimators: int = 100,
        max_samples: int = 256,
        max_train_rows: int = 20_000,
        min_scale: float = 1e-6,
        random_state: int = 0,
    ) -> None:
        self.window = window
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_train_rows = max_train_rows
        self.min_scale = min_scale
        self.random_state = random_state

    def _features(self, panel: np.ndarray) -> np.ndarray:
        check_machines(panel, self.center_)
        z = (panel - self.center_[:, None]) / self.scale_[:, None]
        return window_features(z.astype(np.float64), self.window)

    def _fit(self, panel: np.ndarray) -> None:
        center, scale = robust_baseline(panel)
        self.center_ = center.astype(np.float64)
        self.scale_ = np.fmax(scale, self.min_scale)
        rows = self._features(panel).reshape(-1, 3 * panel.shape[2])
        rows = rows[~np.isnan(rows).any(axis=1)]
        rng = np.random.default_rng(self.random_state)
        if len(rows) > self.max_train_rows:
            rows = rows[rng.choice(len(rows), self.max_train_rows, replace=False)]
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(rows)),
            random_state=self.random_state,
        ).fit(rows)
        self.feature_center_ = np.median(rows, axis=0)
        mad = np.median(np.abs(rows - self.feature_center_), axis=0)
        self.feature_scale_ = np.fmax(MAD_TO_SD * mad, 1e-6)
        self.calibration_ = np.array([_location_scale(s) for s in self._statistics(rows)])

    def _statistics(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(forest outlyingness, guard) per row: both higher = more abnormal."""
        guard = np.abs(rows - self.feature_center_) / self.feature_scale_
        return -self.forest_.score_samples(rows), guard.max(axis=1)

    def _deviation(self, panel: np.ndarray) -> np.ndarray:
        feats = self._features(panel)
        rows = feats.reshape(-1, feats.shape[2])
        ok = ~np.isnan(rows).any(axis=1)
        dev = np.zeros(len(rows))
        if ok.any():
            for stat, (loc, scale) in zip(
                self._statistics(rows[ok]), self.calibration_, strict=True
            ):
                dev[ok] = np.maximum(dev[ok], (stat - loc) / scale)
        return dev.reshape(feats.shape[:2])

    @staticmethod
    def _unit_test_params() -> list[dict[str, Any]]:
        """Parameter sets the contract suite checks."""
        return [{"n_estimators": 30, "window": 8}]


def _location_scale(stat: np.ndarray) -> tuple[float, float]:
    """Median and tail scale of a training statistic: its 99.5 % quantile sits at 2.576 sds.

    Calibrating on the upper tail, not on the MAD, matters for skewed statistics such as
    a maximum over features: the MAD of the core would put ~3 % of normal rows above the
    alarm threshold.
    """
    loc = float(np.median(stat))
    return loc, max((float(np.quantile(stat, TAIL_QUANTILE)) - loc) / TAIL_SDS, 1e-6)
