"""One call for integrators: score any timestamped series of their own sensors.

:func:`score_series` takes a univariate ``(n,)`` or multivariate ``(n, d)`` series with its
timestamps, learns the normal behaviour from the leading part (``train_fraction`` of the
samples, or everything before ``train_until_ms``) and returns an anomaly score in [0, 1]
for EVERY sample, computed causally: a sample's score depends only on the samples up to
it. After the training span the fitted detector scores each sample (its baseline comes
from earlier samples only; CUSUM sums and window features run forward in time). Inside
the training span the fitted baseline would peek ahead, so those samples are scored
against the expanding mean and sd of the samples before them (the first ``min_periods``
score 0). :meth:`SeriesScores.alarms` then says which signal, how far from baseline (in
robust sds), and since when.

With ``train_fraction`` the span depends on the series' length; when a series grows
(scoring again as data arrives), pass a fixed ``train_until_ms`` so earlier scores stay put.

Example
-------
>>> import numpy as np
>>> ts = 1_767_168_000_000 + 60_000 * np.arange(600)          # 10 h of 1-min samples
>>> rng = np.random.default_rng(0)
>>> x = np.column_stack([rng.normal(4.0, 0.2, 600), rng.normal(70.0, 1.0, 600)])
>>> x[400:, 1] += np.linspace(0.0, 8.0, 200)                  # signal 1 drifts upward
>>> out = score_series(ts, x, signals=["vib_mm_s", "temp_c"], detector="cusum")
>>> out.score.shape, out.train_end
((600,), 120)
>>> alarm = out.alarms(min_duration_ms=600_000)[0]
>>> alarm.signal, alarm.z > 3, alarm.start_ms > int(ts[400]), round(alarm.baseline)
('temp_c', True, True, 70)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone

from analytics.detectors.alarms import Alarm, episodes
from analytics.detectors.base import Detector, to_unit_score
from analytics.detectors.filters import ThresholdFilter
from analytics.detectors.forest import ForestDetector
from analytics.detectors.robust import RobustZ

__all__ = ["SeriesScores", "make_detector", "score_series"]


@dataclass
class SeriesScores:
    """Scores of one series; arrays are aligned with the input samples.

    Attributes
    ----------
    ts_ms : ndarray of int64, shape (n,)
        Sample timestamps, UTC epoch ms.
    score : ndarray, shape (n,)
        Anomaly score in [0, 1], higher = worse, causal.
    z : ndarray, shape (n, d)
        Signed deviation of each signal from its baseline, in robust sds.
    baseline : ndarray, shape (d,)
        Normal value of each signal (training median), in the signal's unit.
    signals : list of str
        Signal names.
    train_end : int
        Index of the first sample after the training span.
    """

    ts_ms: np.ndarray
    score: np.ndarray
    z: np.ndarray
    baseline: np.ndarray
    signals: list[str] = field(default_factory=list)
    train_end: int = 0

    def alarms(
        self,
        threshold: float = 0.5,
        *,
        min_duration_ms: int = 0,
        merge_gap_ms: int = 0,
        include_training: bool = False,
    ) -> list[Alarm]:
        """Alarm episodes where ``score >= threshold``: which signal, how far, since when.

        Each episode's signal is the one with the largest ``|z|`` in it; ``z`` is that
        signal's signed deviation at its peak and ``baseline`` its normal value.
        """
        mask = self.score >= threshold
        if not include_training:
            mask[: self.train_end] = False
        ep = episodes(mask, self.ts_ms, min_duration_ms=min_duration_ms, merge_gap_ms=merge_gap_ms)
        absz = np.nan_to_num(np.abs(self.z), nan=0.0)
        out = []
        for start, end in zip(ep.start.tolist(), ep.end.tolist(), strict=True):
            part = absz[start : end + 1]
            t, j = np.unravel_index(int(np.argmax(part)), part.shape)
            out.append(
                Alarm(
                    signal=self.signals[j],
                    start_ms=int(self.ts_ms[start]),
                    end_ms=int(self.ts_ms[end]),
                    peak_score=float(self.score[start : end + 1].max()),
                    z=float(self.z[start + t, j]),
                    baseline=float(self.baseline[j]),
                )
            )
        return out


def make_detector(detector: str | Detector = "robust", **params: Any) -> Detector:
    """A detector by name ("robust", "cusum", "forest") or a clone of an instance."""
    if isinstance(detector, Detector):
        return clone(detector).set_params(**params)
    if detector == "robust":
        return RobustZ(**params)
    if detector == "cusum":
        return RobustZ(mode="cusum", **params)
    if detector == "forest":
        return ForestDetector(**params)
    raise ValueError(f"unknown detector {detector!r}; use 'robust', 'cusum' or 'forest'")


def expanding_z(x: np.ndarray, min_periods: int = 10) -> np.ndarray:
    """Causal z of each sample against the mean and sd of the samples BEFORE it, (n, d).

    NaN samples are skipped; the first ``min_periods`` valid samples of a signal get NaN.
    """
    valid = ~np.isnan(x)
    xv = np.where(valid, x, 0.0)
    n = np.cumsum(valid, axis=0) - valid  # samples strictly before
    s1 = np.cumsum(xv, axis=0) - xv
    s2 = np.cumsum(xv * xv, axis=0) - xv * xv
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        sd = np.sqrt(np.maximum(s2 / n - mean**2, 0.0) * n / (n - 1))
        z = (x - mean) / np.fmax(sd, 1e-9 + 1e-3 * np.abs(mean))
    return np.where(n >= min_periods, z, np.nan)


def _train_end(ts: np.ndarray, train_until_ms: int | None, train_fraction: float) -> int:
    if train_until_ms is not None:
        return int(np.searchsorted(ts, train_until_ms, side="left"))
    return int(np.ceil(train_fraction * len(ts)))


def score_series(
    ts_ms: np.ndarray,
    values: np.ndarray,
    *,
    train_until_ms: int | None = None,
    train_fraction: float = 0.2,
    detector: str | Detector = "robust",
    signals: list[str] | None = None,
    protect: bool = True,
    min_periods: int = 10,
    **params: Any,
) -> SeriesScores:
    """Score every sample of a timestamped series causally, learning from its leading part.

    Parameters
    ----------
    ts_ms : ndarray of int, shape (n,)
        Increasing timestamps (UTC epoch ms); need not be evenly spaced.
    values : ndarray, shape (n,) or (n, d)
        The series; NaN = missing sample (scored 0, never learned).
    train_until_ms : int, optional
        Samples with ``ts < train_until_ms`` form the training span.
    train_fraction : float
        Otherwise the first ``ceil(train_fraction * n)`` samples do.
    detector : str or Detector
        "robust" (level z), "cusum" (z plus drift evidence), "forest", or an instance.
    signals : list of str, optional
        Names of the d signals (default "0", "1", ...).
    protect : bool
        Wrap the detector in a :class:`ThresholdFilter` so anomalies inside the training
        span are trimmed from the baseline.
    min_periods : int
        Training-span samples scored 0 before the expanding estimates settle.
    **params
        Parameters of the detector.

    Returns
    -------
    SeriesScores
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    x = np.asarray(values, dtype=np.float64)
    x2 = x[:, None] if x.ndim == 1 else x
    end = _train_end(ts, train_until_ms, train_fraction)
    if end < 2:
        raise ValueError("the training span holds fewer than 2 samples")
    det = make_detector(detector, **params)
    det = ThresholdFilter(det).fit(x2[:end]) if protect else det.fit(x2[:end])
    ref = ThresholdFilter(RobustZ()).fit(x2[:end]).detector_ if protect else RobustZ().fit(x2[:end])
    z = ref.zscores(x2)
    score = det.anomaly_score(x2)
    z_train = expanding_z(x2[:end], min_periods)
    z[:end] = z_train
    score[:end] = to_unit_score(np.nan_to_num(np.fmax.reduce(np.abs(z_train), axis=1), nan=0.0))
    names = signals if signals is not None else [str(j) for j in range(x2.shape[1])]
    return SeriesScores(ts, score, z, ref.center_[0], names, end)
