"""Correlated anomalies across a hall: many machines deviating together.

Air pressure sagging on every air-jet loom of a hall at once, or the hall's humidity
falling, is one cause with many symptoms. The hall detector looks at each time step
*across* machines: the per-machine robust z of every machine (see
:class:`~analytics.detectors.robust.RobustZ`) is summarised by a quantile over machines,

    up_t = q_{1-f}(z_{., t}),   down_t = q_f(z_{., t})     (f = ``min_fraction``)

i.e. a value that at least a fraction ``f`` of the machines exceed in the same direction
(f = 0.5 gives the median). One machine's fault moves neither quantile, so it never lights
up the hall score. The quantile's own normal spread is learned in training (a median over
10 machines varies ~3x less than one machine, and shared daily cycles vary more), so the
hall deviation is again in robust sds:

    dev_t = max(up_t - c, c - down_t, 0) / s

with ``c`` and ``s`` the median and scaled MAD of the training median series, ``s``
floored at ``min_hall_scale`` machine-sds.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(6.0, 0.1, size=(8, 300, 1))        # 8 looms, air supply in bar
>>> det = HallDetector().fit(x[:, :200])
>>> test = x[:, 200:].copy()
>>> test[3, 50:] -= 1.0                                # one loom's fault: not a hall event
>>> test[:, 80:] -= 0.4                                # the whole hall sags by 4 sds
>>> score = det.anomaly_score(test)
>>> score.shape, bool(score[50:80].max() < 0.5), bool(score[80:].min() > 0.9)
((100,), True, True)
>>> det.involved(test)[:, 90].sum()                    # machines involved at t = 90
np.int64(8)
"""

from __future__ import annotations

# ruff: noqa: N803  (X, the sklearn name of a data matrix)
import warnings
from typing import Any, ClassVar

import numpy as np
from sklearn.base import clone

from analytics.detectors.base import Detector, to_unit_score
from analytics.detectors.robust import MAD_TO_SD, RobustZ

__all__ = ["HallDetector"]


class HallDetector(Detector):
    """Hall-wide deviation per time step from per-machine z-scores.

    Parameters
    ----------
    base : RobustZ or None
        Per-machine detector turning values into z (default ``RobustZ()``); ignored when
        ``input_kind="z"``.
    input_kind : {"values", "z"}
        ``X`` holds raw values (z computed by ``base``) or already per-machine signed z.
    min_fraction : float
        Fraction of machines that must deviate in the same direction, in (0, 0.5].
    min_machines : int
        Time steps with fewer machines reporting score 0.
    min_hall_scale : float
        Floor of the hall statistic's scale, in machine sds.
    z_involved : float
        A machine counts as involved when its z is at least this, in the hall's direction.

    Attributes
    ----------
    base_ : RobustZ or None
        The fitted per-machine detector.
    hall_center_, hall_scale_ : ndarray of shape (d,)
        Median and robust sd of the training hall statistic per signal.
    """

    per_time: ClassVar[bool] = True

    def __init__(
        self,
        *,
        base: RobustZ | None = None,
        input_kind: str = "values",
        min_fraction: float = 0.5,
        min_machines: int = 3,
        min_hall_scale: float = 0.25,
        z_involved: float = 2.0,
    ) -> None:
        self.base = base
        self.input_kind = input_kind
        self.min_fraction = min_fraction
        self.min_machines = min_machines
        self.min_hall_scale = min_hall_scale
        self.z_involved = z_involved

    def _z(self, panel: np.ndarray) -> np.ndarray:
        return panel if self.base_ is None else self.base_.zscores(panel)

    def _quantiles(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(up, down) quantiles over machines, each (T, d); NaN where too few machines."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN time steps
            if self.min_fraction == 0.5:
                up = down = np.nanmedian(z, axis=0)
            else:
                up = np.nanquantile(z, 1.0 - self.min_fraction, axis=0)
                down = np.nanquantile(z, self.min_fraction, axis=0)
        few = np.sum(~np.isnan(z), axis=0) < self.min_machines
        return np.where(few, np.nan, up), np.where(few, np.nan, down)

    def _fit(self, panel: np.ndarray) -> None:
        if self.input_kind not in ("values", "z"):
            raise ValueError(f"input_kind must be 'values' or 'z', got {self.input_kind!r}")
        self.base_ = None if self.input_kind == "z" else clone(self.base or RobustZ()).fit(panel)
        up, down = self._quantiles(self._z(panel))
        mid = (up + down) / 2.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            center = np.nanmedian(mid, axis=0)
            mad = np.nanmedian(np.abs(mid - center), axis=0)
        self.hall_center_ = np.nan_to_num(center, nan=0.0)
        self.hall_scale_ = np.fmax(MAD_TO_SD * mad, self.min_hall_scale)

    def _signed(self, panel: np.ndarray) -> np.ndarray:
        """Signed hall deviation per (T, d): positive = the hall is high."""
        up, down = self._quantiles(self._z(panel))
        high = np.fmax((up - self.hall_center_) / self.hall_scale_, 0.0)
        low = np.fmax((self.hall_center_ - down) / self.hall_scale_, 0.0)
        return np.nan_to_num(np.where(high >= low, high, -low), nan=0.0)

    def _deviation(self, panel: np.ndarray) -> np.ndarray:
        return np.max(np.abs(self._signed(panel)), axis=1)

    def involved(self, X: Any, threshold: float = 0.5) -> np.ndarray:
        """Machines involved in a hall anomaly, (M, T) bool.

        True where the hall score is at least ``threshold`` and the machine's z (any
        signal) is at least ``z_involved`` in the direction the hall deviates.
        """
        self._check_fitted()
        panel = self._as_panel(X)
        signed = self._signed(panel)  # (T, d)
        alarmed = to_unit_score(np.abs(signed)) >= threshold
        z = self._z(panel)
        same_way = np.sign(signed)[None] * z >= self.z_involved
        return np.any(same_way & alarmed[None], axis=2)

    @staticmethod
    def _unit_test_params() -> list[dict[str, Any]]:
        """Parameter sets the contract suite checks."""
        return [{}, {"min_fraction": 0.3}]
