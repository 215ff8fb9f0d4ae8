"""The one contract every anomaly detector follows: sklearn for batch, river for streaming.

Sign conventions (they are OPPOSITE, as in the libraries they come from):

* **Batch, scikit-learn style.** ``__init__`` only stores its keyword parameters (no
  logic, no validation), ``fit(X) -> self`` sets learned attributes whose names end in
  ``_``, and ``score_samples(X)`` follows :meth:`sklearn.ensemble.IsolationForest.score_samples`:
  **LOWER = more abnormal**. ``predict(X)`` returns +1 (inlier) / -1 (outlier).
* **Streaming, river style.** ``learn_one(x)`` / ``score_one(x)`` for one series and the
  vectorised ``update(x)`` / ``score(x)`` for one time step of many machines at once:
  **HIGHER = more abnormal**.
* **What the API, Grafana and alarms see:** ``anomaly_score(X)`` and the streaming scores,
  in [0, 1], higher = worse, always made by the single function :func:`to_unit_score`
  from the detector's raw *deviation*. Every detector expresses that deviation in the same
  unit — "robust standard deviations away from the normal seen in training" — so one
  mapping (and one alarm threshold) fits all of them.

Shapes of ``X`` (floats, NaN = missing sample):

============  ====================  ===============================================
``X``         meaning               per-sample outputs (``score_samples`` etc.)
============  ====================  ===============================================
``(n,)``      one univariate series ``(n,)``
``(n, d)``    one series, d signals ``(n,)`` (sklearn: rows are samples)
``(M, T, d)`` across machines       ``(M, T)``; the machines of one class on one
                                    time grid (a :class:`analytics.frame.Panel`
                                    stacked over fields). A univariate panel
                                    ``(M, T)`` is passed as ``X[..., None]``.
============  ====================  ===============================================

Internally everything is a panel: :func:`as_panel` turns ``(n,)`` into ``(1, n, 1)`` and
``(n, d)`` into ``(1, n, d)``. Detectors whose samples are *time steps of a hall* (see
:class:`~analytics.detectors.hall.HallDetector`, ``per_time = True``) take ``(M, T)`` or
``(M, T, d)`` (a single series means nothing to them) and return ``(T,)``.

Streaming shapes: ``update(x)`` / ``score(x)`` take one time step ``(M, d)`` (or ``(M,)``
for d = 1); ``learn_one(x)`` / ``score_one(x)`` take ``(d,)`` or a scalar (M = 1).

Example
-------
>>> import numpy as np
>>> to_unit_score(np.array([0.0, 2.0, 4.0, 8.0])).round(2).tolist()
[0.0, 0.0, 0.63, 0.95]
>>> as_panel(np.zeros(5)).shape, as_panel(np.zeros((5, 3))).shape
((1, 5, 1), (1, 5, 3))
"""

# ruff: noqa: N803  (X, the sklearn name of a data matrix)
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

__all__ = [
    "SCORE_OFFSET",
    "SCORE_SCALE",
    "Detector",
    "as_panel",
    "from_panel",
    "to_unit_score",
]

#: Deviation (robust sds) below which the unit score is exactly 0.
SCORE_OFFSET = 2.0
#: e-folding width (robust sds) of the unit score above the offset: score 0.5 at ~3.4 sds.
SCORE_SCALE = 2.0


def to_unit_score(
    raw: np.ndarray, scale: float = SCORE_SCALE, offset: float = SCORE_OFFSET
) -> np.ndarray:
    """Map a raw deviation (robust sds, >= 0, higher = worse) to an anomaly score in [0, 1].

    ``score = 1 - exp(-max(raw - offset, 0) / scale)``: deviations inside the normal band
    (``offset`` sds) score 0, then the score rises and saturates at 1. NaN maps to 0
    (a missing sample is no evidence). Monotone, so it never reorders samples.

    Parameters
    ----------
    raw : ndarray
        Deviation in robust standard deviations, any shape.
    scale, offset : float
        Width and start of the ramp, in the same unit as ``raw``.

    Returns
    -------
    ndarray
        Same shape as ``raw``, in [0, 1].

    >>> float(to_unit_score(np.array(2.0 + 2.0 * np.log(2.0))))
    0.5
    """
    raw = np.asarray(raw)
    excess = np.array(raw, dtype=np.result_type(raw.dtype, np.float32))  # a copy, also 0-d
    excess -= offset
    np.fmax(excess, 0.0, out=excess)  # fmax: NaN -> 0
    excess *= -1.0 / scale  # in place: one temporary for the whole mapping
    np.expm1(excess, out=excess)
    return np.negative(excess, out=excess)


def as_panel(X: Any) -> np.ndarray:
    """``X`` as a float panel ``(M, T, d)``: ``(n,)`` -> ``(1, n, 1)``, ``(n, d)`` -> ``(1, n, d)``.

    Floating arrays keep their dtype (float32 halves the memory of a long history).
    """
    arr = np.asarray(X)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if arr.ndim == 1:
        return arr[None, :, None]
    if arr.ndim == 2:
        return arr[None]
    if arr.ndim == 3:
        return arr
    raise ValueError(f"X must have shape (n,), (n, d) or (M, T, d); got {arr.shape}")


def from_panel(per_sample: np.ndarray, X: Any) -> np.ndarray:
    """Reshape a per-sample ``(M, T)`` result back to the caller's form of ``X``."""
    return per_sample[0] if np.ndim(X) < 3 else per_sample


def as_step(x: Any) -> np.ndarray:
    """One streaming time step as ``(M, d)``: ``(M,)`` -> ``(M, 1)``."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        return arr[:, None]
    if arr.ndim == 2:
        return arr
    raise ValueError(f"a time step must have shape (M,) or (M, d); got {arr.shape}")


class Detector(BaseEstimator):
    """Base class: subclasses implement ``_fit(P)`` and ``_deviation(P)`` on panels.

    ``_deviation`` returns the raw deviation in robust sds, ``(M, T)`` (or ``(T,)`` for
    ``per_time`` detectors), >= 0, 0 for missing samples. Streaming detectors also
    implement ``_update(x)`` and ``_score_step(x) -> (M,)`` deviations on ``(M, d)`` steps,
    with NaN rows neither scored nor learned (that is how filters protect them).
    """

    #: True when the detector supports ``update`` / ``score`` / ``learn_one`` / ``score_one``.
    streaming: ClassVar[bool] = False
    #: True when a "sample" is a time step of the whole panel: outputs have shape (T,).
    per_time: ClassVar[bool] = False

    # -- batch (scikit-learn) -------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> Detector:
        """Learn the normal behaviour from ``X`` (shapes in the module docstring)."""
        panel = self._as_panel(X)
        self.n_features_in_ = panel.shape[2]
        self._fit(panel)
        return self

    def deviation(self, X: Any) -> np.ndarray:
        """Raw deviation in robust sds, >= 0, higher = more abnormal (per sample)."""
        self._check_fitted()
        panel = self._as_panel(X)
        if panel.shape[2] != self.n_features_in_:
            raise ValueError(f"X has {panel.shape[2]} features, fitted on {self.n_features_in_}")
        dev = self._deviation(panel)
        return dev if self.per_time else from_panel(dev, X)

    def score_samples(self, X: Any) -> np.ndarray:
        """Opposite of :meth:`deviation`: LOWER = more abnormal (the sklearn sign)."""
        return -self.deviation(X)

    def anomaly_score(self, X: Any) -> np.ndarray:
        """Anomaly score in [0, 1], higher = worse: ``to_unit_score(deviation(X))``."""
        return to_unit_score(self.deviation(X))

    def predict(self, X: Any, threshold: float = 0.5) -> np.ndarray:
        """+1 for inliers, -1 for outliers (``anomaly_score >= threshold``), as in sklearn."""
        return np.where(self.anomaly_score(X) >= threshold, -1, 1)

    # -- streaming (river) ----------------------------------------------------------------
    def update(self, x: Any) -> Detector:
        """Learn one time step ``x`` of shape (M, d) (or (M,)); NaN rows are not learned."""
        self._check_streaming()
        self._update(as_step(x))
        return self

    def score(self, x: Any) -> np.ndarray:
        """Anomaly scores in [0, 1] (HIGHER = worse) of one time step, shape (M,)."""
        self._check_streaming()
        return to_unit_score(self._score_step(as_step(x)))

    def learn_one(self, x: Any) -> Detector:
        """River-style ``learn_one`` for a single series: ``x`` is (d,) or a scalar."""
        return self.update(np.atleast_1d(np.asarray(x, dtype=np.float64))[None, :])

    def score_one(self, x: Any) -> float:
        """River-style ``score_one``: anomaly score in [0, 1] of one sample, HIGHER = worse."""
        return float(self.score(np.atleast_1d(np.asarray(x, dtype=np.float64))[None, :])[0])

    def _as_panel(self, X: Any) -> np.ndarray:
        """:func:`as_panel`, except that a 2-D ``X`` of a per-time detector is (M, T)."""
        if self.per_time and np.ndim(X) == 2:
            return as_panel(np.asarray(X)[..., None])
        return as_panel(X)

    # -- hooks ----------------------------------------------------------------------------
    def _fit(self, panel: np.ndarray) -> None:
        raise NotImplementedError

    def _deviation(self, panel: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _update(self, step: np.ndarray) -> None:
        raise NotImplementedError

    def _score_step(self, step: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(X) first")

    def _check_streaming(self) -> None:
        # no fit needed: a streaming detector may start learning from scratch (river style)
        if not self.streaming:
            raise NotImplementedError(f"{type(self).__name__} has no streaming mode")
