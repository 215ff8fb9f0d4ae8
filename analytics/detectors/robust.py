"""Robust per-signal z-scores, vectorised across many machines at once.

Each machine gets its own baseline per signal from a training span: the median and the
MAD (scaled by 1.4826 so it estimates the sd of normal noise). A sample's deviation is

    z = (x - median) / (MAD + floor),    floor = max(min_scale, rel_min_scale * |median|)

in robust sds; the floor keeps a signal that hardly moved in training (MAD ~ 0) from
turning every rounding step into an alarm. With ``mode="cusum"`` a two-sided CUSUM of z
(``S+ = max(0, S+ + z - k)``, ``S- = max(0, S- - z - k)``) accumulates evidence, so a slow
drift of 1-2 sds (bearing wear over days, a 5-15 % tension drift) still reaches an alarm;
the deviation is then ``max(|z|, max(S+, S-) / cusum_scale)``.

Streaming (``update`` / ``score``) continues from the fitted baseline (or starts from
scratch) with an exponentially weighted mean and variance, updated ONLY with samples whose
``|z| <= protect_z``: a machine that starts breaking threads never becomes the new normal.
Missing samples (NaN) change nothing: they score 0 in level mode, hold the CUSUM, and are
never learned.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> train = rng.normal(10.0, 1.0, size=(3, 500, 1))        # 3 machines, 500 samples
>>> det = RobustZ().fit(train)
>>> test = train[:, -4:].copy()
>>> test[1, -1, 0] = 20.0                                  # machine 1 jumps by 10 sds
>>> det.anomaly_score(test).round(1)[:, -1].tolist()
[0.0, 1.0, 0.0]
"""

# ruff: noqa: N803  (X, the sklearn name of a data matrix)
from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np

from analytics.detectors.base import Detector, as_panel, from_panel, to_unit_score

__all__ = ["MAD_TO_SD", "RobustZ", "check_machines", "cusum", "robust_baseline"]

#: 1 / Phi^-1(3/4): scales a MAD to the sd of normal data.
MAD_TO_SD = 1.4826
#: Samples per scoring block: a block's temporaries fit in a core's L2 cache.
BLOCK_ELEMENTS = 32_768


def robust_baseline(panel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and scaled MAD over time of a panel (M, T, d) -> two (M, d) arrays.

    NaN samples are ignored; a machine/signal with no sample gets NaN (and later scores 0).
    """
    if not np.isnan(panel).any():
        center = np.median(panel, axis=1)
        return center, MAD_TO_SD * np.median(np.abs(panel - center[:, None]), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices -> NaN, on purpose
        center = np.nanmedian(panel, axis=1)
        mad = np.nanmedian(np.abs(panel - center[:, None]), axis=1)
    return center, MAD_TO_SD * mad


def check_machines(panel: np.ndarray, per_machine: np.ndarray) -> None:
    """Raise ValueError unless ``panel`` (M, T, d) has the M machines of the fitted baseline."""
    if panel.shape[0] != per_machine.shape[0]:
        raise ValueError(
            f"X holds {panel.shape[0]} machines, the detector was fitted on "
            f"{per_machine.shape[0]}: each machine has its own baseline, keep the same order"
        )


def cusum(z: np.ndarray, k: float, axis: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided CUSUM of ``z`` along ``axis``, vectorised, starting from 0.

    Uses the closed form of Lindley's recursion ``S_t = max(0, S_{t-1} + z_t - k)``:
    ``S_t = C_t - min(0, min_{s<=t} C_s)`` with ``C = cumsum(z - k)``. NaN increments are
    0, so a missing sample holds the sums.

    >>> up, down = cusum(np.array([[0.0, 3.0, 3.0, np.nan, -1.0]]), k=1.0)
    >>> up.tolist(), down.tolist()
    ([[0.0, 2.0, 4.0, 4.0, 2.0]], [[0.0, 0.0, 0.0, 0.0, 0.0]])
    """
    sums = []
    for inc in (z - k, -z - k):
        c = np.cumsum(np.nan_to_num(inc, nan=0.0), axis=axis)
        sums.append(c - np.minimum(np.minimum.accumulate(c, axis=axis), 0.0))
    return sums[0], sums[1]


class RobustZ(Detector):
    """Median/MAD z-score per machine and signal; level or CUSUM mode; protected streaming.

    Parameters
    ----------
    mode : {"level", "cusum"}
        ``"level"`` scores ``|z|``; ``"cusum"`` also accumulates drift evidence.
    cusum_k : float
        CUSUM allowance in sds: drifts smaller than ``k`` sds accumulate nothing.
    cusum_scale : float
        Sums are divided by this to become a deviation in sds.
    min_scale, rel_min_scale : float
        Absolute floor and floor relative to ``|median|`` of the denominator.
    adapt_rate : float
        Streaming learning rate per sample (e.g. 1e-3 = a memory of ~1000 samples).
    protect_z : float
        Streaming samples with ``|z| > protect_z`` are not learned.
    warmup : int
        Samples a machine learns unprotected when streaming starts from scratch.

    Attributes
    ----------
    center_, scale_ : ndarray of shape (M, d)
        Baseline median and robust sd per machine and signal.
    count_ : ndarray of shape (M, d)
        Samples learned per machine and signal.
    cusum_up_, cusum_down_ : ndarray of shape (M, d)
        Streaming CUSUM state.
    """

    streaming: ClassVar[bool] = True

    def __init__(
        self,
        *,
        mode: str = "level",
        cusum_k: float = 1.0,
        cusum_scale: float = 2.0,
        min_scale: float = 1e-9,
        rel_min_scale: float = 0.001,
        adapt_rate: float = 1e-3,
        protect_z: float = 4.0,
        warmup: int = 30,
    ) -> None:
        self.mode = mode
        self.cusum_k = cusum_k
        self.cusum_scale = cusum_scale
        self.min_scale = min_scale
        self.rel_min_scale = rel_min_scale
        self.adapt_rate = adapt_rate
        self.protect_z = protect_z
        self.warmup = warmup

    # -- batch ----------------------------------------------------------------------------
    def _fit(self, panel: np.ndarray) -> None:
        if self.mode not in ("level", "cusum"):
            raise ValueError(f"mode must be 'level' or 'cusum', got {self.mode!r}")
        center, scale = robust_baseline(panel)
        self.center_ = center.astype(np.float64)
        self.scale_ = scale.astype(np.float64)
        self.count_ = np.sum(~np.isnan(panel), axis=1).astype(np.float64)
        self.cusum_up_ = np.zeros_like(self.center_)
        self.cusum_down_ = np.zeros_like(self.center_)

    def _denominator(self) -> np.ndarray:
        floor = np.maximum(self.min_scale, self.rel_min_scale * np.abs(self.center_))
        return self.scale_ + floor

    def zscores(self, X: Any) -> np.ndarray:
        """Signed z per sample and signal, the shape of ``X`` ((n,), (n, d) or (M, T, d))."""
        self._check_fitted()
        panel = as_panel(X)
        check_machines(panel, self.center_)
        dtype = panel.dtype
        center = self.center_.astype(dtype)[:, None]
        inv = (1.0 / self._denominator()).astype(dtype)[:, None]
        z = (panel - center) * inv
        return z.reshape(np.shape(X))

    def _deviation(self, panel: np.ndarray) -> np.ndarray:
        if self.mode == "level":
            return self._level_blocks(panel, unit=False)
        z = self.zscores(panel)
        up, down = cusum(z, self.cusum_k, axis=1)
        dev = np.fmax(np.abs(z), np.maximum(up, down) / self.cusum_scale)
        return np.nan_to_num(np.fmax.reduce(dev, axis=2), nan=0.0, copy=False)

    def _level_blocks(self, panel: np.ndarray, unit: bool) -> np.ndarray:
        """Level deviation (or its unit score) in cache-sized blocks of time steps.

        Same result as ``max_j |z_j|``, but each block's few temporaries stay in the CPU
        cache (a long history is memory-bound otherwise: as in sklearn's chunked
        ``score_samples``).
        """
        m, t, d = panel.shape
        check_machines(panel, self.center_)
        dtype = np.result_type(panel.dtype, np.float32)
        center = self.center_.astype(dtype)[:, None]
        inv = (1.0 / self._denominator()).astype(dtype)[:, None]
        out = np.empty((m, t), dtype=dtype)
        step = max(1, BLOCK_ELEMENTS // max(m * d, 1))
        for lo in range(0, t, step):  # a few dozen blocks per panel, not per sample
            buf = np.subtract(panel[:, lo : lo + step], center, dtype=dtype)
            buf *= inv
            np.abs(buf, out=buf)
            dev = buf[:, :, 0] if d == 1 else np.fmax.reduce(buf, axis=2)
            out[:, lo : lo + step] = to_unit_score(dev) if unit else np.fmax(dev, 0.0)
        return out

    def anomaly_score(self, X: Any) -> np.ndarray:
        """Anomaly score in [0, 1] (``to_unit_score`` of the deviation), block by block."""
        if self.mode != "level":
            return super().anomaly_score(X)
        self._check_fitted()
        return from_panel(self._level_blocks(as_panel(X), unit=True), X)

    # -- streaming ------------------------------------------------------------------------
    def _init_state(self, step: np.ndarray) -> None:
        self.n_features_in_ = step.shape[1]
        self.center_ = np.full(step.shape, np.nan)
        self.scale_ = np.zeros(step.shape)
        self.count_ = np.zeros(step.shape)
        self.cusum_up_ = np.zeros(step.shape)
        self.cusum_down_ = np.zeros(step.shape)

    def _step_z(self, step: np.ndarray) -> np.ndarray:
        if not hasattr(self, "center_"):
            return np.full(step.shape, np.nan)
        return (step - self.center_) / self._denominator()

    def _next_cusum(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        up = np.where(np.isnan(z), self.cusum_up_, np.maximum(self.cusum_up_ + z - self.cusum_k, 0))
        down = np.where(
            np.isnan(z), self.cusum_down_, np.maximum(self.cusum_down_ - z - self.cusum_k, 0)
        )
        return up, down

    def _score_step(self, step: np.ndarray) -> np.ndarray:
        z = self._step_z(step)
        dev = np.abs(z)
        if self.mode == "cusum" and hasattr(self, "cusum_up_"):
            up, down = self._next_cusum(z)
            dev = np.fmax(dev, np.maximum(up, down) / self.cusum_scale)
        if hasattr(self, "count_"):  # still warming up from scratch: no evidence yet
            dev = np.where(self.count_ < self.warmup, np.nan, dev)
        return np.nan_to_num(np.fmax.reduce(dev, axis=1), nan=0.0)

    def _update(self, step: np.ndarray) -> None:
        if not hasattr(self, "center_"):
            self._init_state(step)
        z = self._step_z(step)
        if self.mode == "cusum":
            self.cusum_up_, self.cusum_down_ = self._next_cusum(z)
        first = ~np.isnan(step) & (self.count_ == 0)
        self.center_ = np.where(first, step, self.center_)
        learn = ~np.isnan(step) & ~first
        learn &= (self.count_ < self.warmup) | (np.abs(z) <= self.protect_z)
        rate = np.maximum(1.0 / (self.count_ + 1.0), self.adapt_rate)
        resid = np.where(learn, step - self.center_, 0.0)
        self.center_ = self.center_ + rate * resid
        var = np.where(learn, (1 - rate) * (self.scale_**2 + rate * resid**2), self.scale_**2)
        self.scale_ = np.sqrt(var)
        self.count_ = self.count_ + (learn | first)

    @staticmethod
    def _unit_test_params() -> list[dict[str, Any]]:
        """Parameter sets the contract suite checks."""
        return [{}, {"mode": "cusum"}]
