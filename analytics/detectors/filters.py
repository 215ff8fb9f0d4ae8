"""Protection wrappers: a detector must not learn anomalies as the new normal.

The idea of river's ``AnomalyFilter(protect_anomaly_detector=True)``: a sample that scores
as anomalous is not learned. A loom that starts breaking threads keeps scoring high for as
long as it keeps breaking them instead of fading into its own baseline. Choose to learn
anomalies (``protect_anomaly_detector=False``) only when a lasting change is expected and
accepted, e.g. after a re-calibration or a new article on the machine.

* Streaming: each time step is scored first; machines scoring at or above the threshold
  get their row replaced by NaN before ``update``, and detectors never learn NaN rows.
  Learning resumes only after ``patience`` consecutive normal samples: the rare sample
  of a long fault that dips under the threshold would otherwise be learned, widen the
  baseline a little, let the next one in, and the fault would creep into the normal.
* Batch: ``fit`` trims iteratively: fit, score the training data, blank the samples that
  score at or above the threshold, refit (``n_refits`` times). A fault inside the training
  span therefore does not widen the baseline.

Example
-------
>>> import numpy as np
>>> from analytics.detectors.robust import RobustZ
>>> rng = np.random.default_rng(1)
>>> x = rng.normal(0.0, 1.0, 400)
>>> x[200:] += 8.0                           # a persistent fault half-way
>>> det = ThresholdFilter(RobustZ(adapt_rate=0.05)).fit(x[:100])
>>> scores = []
>>> for v in x[100:]:                        # score first, then learn (if not anomalous)
...     scores.append(det.score_one(v))
...     _ = det.learn_one(v)
>>> bool(np.mean(scores[150:]) > 0.8)       # still alarmed 200 samples into the fault
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone

from analytics.detectors.base import Detector, as_step
from analytics.detectors.robust import RobustZ

__all__ = ["QuantileFilter", "ThresholdFilter"]


class ThresholdFilter(Detector):
    """Learn only samples whose anomaly score is below ``threshold``.

    Parameters
    ----------
    detector : Detector
        The protected detector (cloned on ``fit``; the argument itself is never modified).
    threshold : float
        Anomaly score in [0, 1] at or above which a sample is not learned.
    protect_anomaly_detector : bool
        False learns everything (no protection), as river's flag of the same name.
    n_refits : int
        Trimming rounds of the batch ``fit``.
    patience : int
        Consecutive samples below the threshold before a machine learns again.

    Attributes
    ----------
    detector_ : Detector
        The fitted (and streaming-updated) copy of ``detector``.
    threshold_ : float
        The threshold in force.
    quiet_ : ndarray of shape (M,) or None
        Consecutive normal samples per machine (streaming), None until the first update.
    """

    def __init__(
        self,
        detector: Detector | None = None,
        *,
        threshold: float = 0.5,
        protect_anomaly_detector: bool = True,
        n_refits: int = 2,
        patience: int = 10,
    ) -> None:
        self.detector = detector
        self.threshold = threshold
        self.protect_anomaly_detector = protect_anomaly_detector
        self.n_refits = n_refits
        self.patience = patience

    @property
    def streaming(self) -> bool:  # type: ignore[override]
        """Streaming when the wrapped detector is."""
        return self._inner().streaming

    @property
    def per_time(self) -> bool:  # type: ignore[override]
        """Per time step when the wrapped detector is."""
        return self._inner().per_time

    def _inner(self) -> Detector:
        return self.detector if self.detector is not None else RobustZ()

    def _threshold(self, train_scores: np.ndarray) -> float:
        return self.threshold

    def _fit(self, panel: np.ndarray) -> None:
        det = clone(self._inner()).fit(panel)
        self.threshold_ = self._threshold(det.anomaly_score(panel))
        for _ in range(self.n_refits if self.protect_anomaly_detector else 0):
            bad = det.anomaly_score(panel) >= self.threshold_
            if not bad.any():
                break
            trimmed = panel.astype(np.float64, copy=True)
            if det.per_time:
                trimmed[:, bad] = np.nan
            else:
                trimmed[bad] = np.nan
            det = clone(self._inner()).fit(trimmed)
        self.detector_ = det
        self.quiet_ = None

    def _deviation(self, panel: np.ndarray) -> np.ndarray:
        return self.detector_.deviation(panel)

    def _score_step(self, step: np.ndarray) -> np.ndarray:
        if not hasattr(self, "detector_"):
            return np.zeros(step.shape[0])
        return self.detector_._score_step(step)

    def _update(self, step: np.ndarray) -> None:
        if not hasattr(self, "detector_"):
            self.quiet_ = None
            self.detector_ = clone(self._inner())
            self.threshold_ = self.threshold
            self.n_features_in_ = step.shape[1]
        if self.protect_anomaly_detector:
            if self.quiet_ is None:
                self.quiet_ = np.full(step.shape[0], self.patience)
            bad = self.detector_.score(step) >= self.threshold_
            seen = ~np.isnan(step).all(axis=1)
            self.quiet_ = np.where(bad, 0, self.quiet_ + seen)
            step = np.where((self.quiet_ < self.patience)[:, None], np.nan, step)
        self.detector_.update(as_step(step))

    @staticmethod
    def _unit_test_params() -> list[dict[str, Any]]:
        """Parameter sets the contract suite checks."""
        return [{}, {"detector": RobustZ(mode="cusum")}]


class QuantileFilter(ThresholdFilter):
    """Like :class:`ThresholdFilter`, threshold = the ``q``-quantile of training scores.

    The threshold never drops below ``threshold`` (the floor), so a clean training span
    whose scores are all ~0 does not stop the detector from learning anything.

    Parameters
    ----------
    detector : Detector
        The protected detector.
    q : float
        Quantile in (0, 1) of the training anomaly scores.
    threshold : float
        Lowest threshold allowed.
    protect_anomaly_detector : bool
        False learns everything.
    n_refits : int
        Trimming rounds of the batch ``fit``.
    patience : int
        Consecutive samples below the threshold before a machine learns again.
    """

    def __init__(
        self,
        detector: Detector | None = None,
        *,
        q: float = 0.99,
        threshold: float = 0.3,
        protect_anomaly_detector: bool = True,
        n_refits: int = 2,
        patience: int = 10,
    ) -> None:
        super().__init__(
            detector,
            threshold=threshold,
            protect_anomaly_detector=protect_anomaly_detector,
            n_refits=n_refits,
            patience=patience,
        )
        self.q = q

    def _threshold(self, train_scores: np.ndarray) -> float:
        return max(float(np.quantile(train_scores, self.q)), self.threshold)

    @staticmethod
    def _unit_test_params() -> list[dict[str, Any]]:
        """Parameter sets the contract suite checks."""
        return [{}]
