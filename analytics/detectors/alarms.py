"""Alarms: which signal, how far from baseline, since when.

A per-sample boolean mask (``score >= threshold``) becomes *episodes* — runs of alarmed
samples — with :func:`episodes`, vectorised via ``np.diff`` over many machines at once.
Runs separated by at most ``merge_gap_ms`` are merged first (a flickering score is one
alarm, not ten), then runs shorter than ``min_duration_ms`` are dropped.

Example
-------
>>> import numpy as np
>>> ts = np.arange(8) * 60_000
>>> mask = np.array([0, 1, 1, 0, 1, 0, 0, 1], dtype=bool)
>>> ep = episodes(mask, ts, merge_gap_ms=120_000)
>>> ep.start.tolist(), ep.end.tolist()
([1, 7], [4, 7])
>>> ep = episodes(mask, ts, merge_gap_ms=120_000, min_duration_ms=60_000)
>>> ep.start.tolist(), ep.end.tolist()
([1], [4])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["Alarm", "Episodes", "episodes"]


@dataclass(frozen=True)
class Alarm:
    """One alarm episode of one signal.

    Attributes
    ----------
    signal : str
        Name of the signal that deviates most during the episode.
    start_ms, end_ms : int
        Timestamps (UTC epoch ms) of the first and the last alarmed sample.
    peak_score : float
        Highest anomaly score in [0, 1] during the episode.
    z : float
        Signed deviation at the peak, in robust sds from the baseline.
    baseline : float
        The signal's normal value (training median), in the signal's unit.
    machine : str or None
        The machine, when the alarm comes from a panel.
    """

    signal: str
    start_ms: int
    end_ms: int
    peak_score: float
    z: float
    baseline: float
    machine: str | None = None


class Episodes(NamedTuple):
    """Episodes as index arrays: ``row`` (machine, 0 for a 1-D mask), ``start``, ``end``.

    ``start`` and ``end`` are inclusive sample indices into the time axis.
    """

    row: np.ndarray
    start: np.ndarray
    end: np.ndarray


def _runs(mask: np.ndarray) -> Episodes:
    """Maximal runs of True per row of a (M, T) mask."""
    m, t = mask.shape
    padded = np.zeros((m, t + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # row-major order: pairs with the starts
    return Episodes(rows, starts, ends - 1)


def episodes(
    mask: np.ndarray,
    ts_ms: np.ndarray,
    *,
    min_duration_ms: int = 0,
    merge_gap_ms: int = 0,
) -> Episodes:
    """Turn a boolean alarm mask into episodes.

    Parameters
    ----------
    mask : ndarray of bool, shape (T,) or (M, T)
        True where a sample is alarmed.
    ts_ms : ndarray of int, shape (T,)
        Sample timestamps (UTC epoch ms), increasing.
    min_duration_ms : int
        Episodes with ``ts[end] - ts[start] < min_duration_ms`` are dropped (after merging).
    merge_gap_ms : int
        Consecutive episodes of one row whose gap ``ts[next.start] - ts[prev.end]`` is at
        most this are merged.

    Returns
    -------
    Episodes
        ``row``, ``start``, ``end`` index arrays, sorted by row then time.
    """
    mask2 = np.atleast_2d(np.asarray(mask, dtype=bool))
    ts = np.asarray(ts_ms, dtype=np.int64)
    runs = _runs(mask2)
    if len(runs.row) > 1:
        same_row = runs.row[1:] == runs.row[:-1]
        gap = ts[runs.start[1:]] - ts[runs.end[:-1]]
        joined = same_row & (gap <= merge_gap_ms)
        keep_start = np.concatenate([[True], ~joined])
        keep_end = np.concatenate([~joined, [True]])
        runs = Episodes(runs.row[keep_start], runs.start[keep_start], runs.end[keep_end])
    long_enough = ts[runs.end] - ts[runs.start] >= min_duration_ms
    return Episodes(runs.row[long_enough], runs.start[long_enough], runs.end[long_enough])
