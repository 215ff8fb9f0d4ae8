"""Monotonic counters as per-sample increases, with gaps and controller restarts handled.

Production and consumption counters (picks, revolutions, stops, water, steam, kWh) are
totals (domain spec §0). KPIs need what was produced in a window, so they difference
the totals. Two things break a naive ``np.diff``:

- a lost sample (NaN). The total keeps counting, so the production between the two
  valid samples around the gap lands on the next valid sample. Nothing is lost.
- a backwards step: the controller restarted and counts again from 0. The increase at
  that sample is the new value (counts since the restart), never a negative delta.

Every function works along the last axis, on a (T,) series or an (M, T) matrix.

Example
-------
>>> import numpy as np
>>> counter_delta(np.array([10.0, 12.0, np.nan, 17.0, 3.0, 5.0])).tolist()
[0.0, 2.0, 0.0, 5.0, 3.0, 2.0]
>>> count_resets(np.array([[10.0, 12.0, 3.0, 1.0]])).tolist()
[2]
"""

from __future__ import annotations

import numpy as np

__all__ = ["count_resets", "counter_delta", "counter_increase", "forward_fill"]


def forward_fill(values: np.ndarray) -> np.ndarray:
    """Each NaN replaced by the last valid value before it along axis -1.

    Leading NaNs (no valid value yet) stay NaN.

    >>> forward_fill(np.array([np.nan, 1.0, np.nan, 3.0])).tolist()
    [nan, 1.0, 1.0, 3.0]
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.shape[-1]
    if n == 0:
        return v.copy()
    index = np.where(np.isnan(v), 0, np.arange(n))
    np.maximum.accumulate(index, axis=-1, out=index)
    return np.take_along_axis(v, index, axis=-1)


def _compressed_steps(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Valid samples (row-major), their steps from the row's previous one, their rows.

    The step of a row's first valid sample is 0. Working on the valid samples only (one
    boolean compress) makes a gap need no forward fill: the previous valid sample is
    simply the previous element.
    """
    n = v.shape[-1] if v.ndim else 1
    valid = ~np.isnan(v)
    kept = v[valid]
    step = np.zeros_like(kept)
    np.subtract(kept[1:], kept[:-1], out=step[1:])
    per_row = valid.reshape(-1, n).sum(axis=1)
    row = np.repeat(np.arange(len(per_row)), per_row)
    starts = (np.cumsum(per_row) - per_row)[per_row > 0]
    step[starts] = 0.0
    return kept, step, row


def counter_delta(values: np.ndarray) -> np.ndarray:
    """Increase of a monotonic counter at every sample, same shape as ``values``.

    ``delta[t] = v[t] - v[p]`` where ``p`` is the last valid sample before ``t``;
    ``delta[t] = v[t]`` when that is negative (a restart: counted from 0 since);
    0 at NaN samples and at the first valid sample (no baseline). So
    ``delta.sum(-1)`` is the production between the first and the last valid sample,
    in the counter's own unit.

    Parameters
    ----------
    values
        Raw totals, shape (T,) or (M, T); NaN = lost sample.

    Returns
    -------
    numpy.ndarray
        Non-negative increases, shape of ``values``.

    Examples
    --------
    A gap carries over, a restart counts from zero:

    >>> counter_delta(np.array([[5.0, np.nan, np.nan, 9.0, 2.0]])).tolist()
    [[0.0, 0.0, 0.0, 4.0, 2.0]]
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return np.zeros_like(v)
    if not np.isnan(v).any():  # the common case: no copy of the valid samples
        out = np.zeros_like(v)
        np.subtract(v[..., 1:], v[..., :-1], out=out[..., 1:])
        np.copyto(out, v, where=out < 0)
        return out
    kept, step, _ = _compressed_steps(v)
    np.copyto(step, kept, where=step < 0)
    out = np.zeros_like(v)
    out[~np.isnan(v)] = step
    return out


def count_resets(values: np.ndarray) -> np.ndarray:
    """Number of backwards steps (controller restarts) along axis -1.

    Gaps are skipped: a restart is a valid sample below the last valid one.

    >>> count_resets(np.array([[1.0, 5.0, np.nan, 2.0], [1.0, 2.0, 3.0, 4.0]])).tolist()
    [1, 0]
    """
    v = np.asarray(values, dtype=np.float64)
    rows = int(np.prod(v.shape[:-1])) if v.ndim > 1 else 1
    if v.size == 0:
        return np.zeros(v.shape[:-1], dtype=np.int64)
    _, step, row = _compressed_steps(v)
    counts = np.bincount(row[step < 0], minlength=rows)
    return counts.reshape(v.shape[:-1]) if v.ndim > 1 else counts[0]


def counter_increase(first: np.ndarray, maximum: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per-bucket increase of a counter aggregated to ``:first``/``:max``/``:last``.

    The series ``first_0, max_0, last_0, first_1, ...`` is the counter seen at three
    instants per bucket in time order (the max lies between first and last), so
    :func:`counter_delta` over it gives the bucket's increase, including the
    production between the previous bucket's last sample and this bucket's first.
    A restart inside a bucket shows as ``max -> last`` going down: ``first -> max``
    is counted before it and ``last`` after it. (Production after a restart that
    climbs above the pre-restart maximum within the same bucket is under-counted:
    three numbers cannot tell it apart.)

    Parameters
    ----------
    first, maximum, last
        Shape (M, T) (or (T,)); NaN for empty buckets.

    Returns
    -------
    numpy.ndarray
        Increase per bucket, shape of ``first``, in the counter's unit.

    Examples
    --------
    Bucket 1 holds a restart (100 -> 120, then 0 -> 10); bucket 2 is empty, so bucket 3
    gets 10 -> 14 -> 20:

    >>> f = np.array([90.0, 100.0, np.nan, 14.0])
    >>> m = np.array([98.0, 120.0, np.nan, 20.0])
    >>> l = np.array([98.0, 10.0, np.nan, 20.0])
    >>> counter_increase(f, m, l).tolist()
    [8.0, 32.0, 0.0, 10.0]
    """
    stacked = np.stack([np.asarray(a, dtype=np.float64) for a in (first, maximum, last)], axis=-1)
    shape = stacked.shape
    flat = stacked.reshape(*shape[:-2], shape[-2] * 3)
    return counter_delta(flat).reshape(shape).sum(axis=-1)
