"""Weaving KPIs (domain spec §4): efficiency, stops per 10^5 picks, MTTR, MTBF.

Pure array functions, elementwise over (machines,) or (machines, windows) arrays;
:func:`stop_counts` groups a stop table into (machine, window, class) cells with one
``np.bincount``.

Example
-------
The textbook loom (spec §2): 20 warp, 15 weft, 6 other stops per 10^5 picks.

>>> import numpy as np
>>> stops_per_1e5(np.array([20.0, 15.0, 6.0]), np.array(100_000.0)).tolist()
[20.0, 15.0, 6.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analytics.intervals import StopTable, machine_index
from analytics.kpi.oee import ratio
from analytics.shifts import window_of

__all__ = [
    "efficiency",
    "efficiency_picks",
    "mtbf_s",
    "mttr_s",
    "stop_counts",
    "stops_per_1e5",
]


def efficiency(run_s: np.ndarray, stop_s: np.ndarray) -> np.ndarray:
    """Loom running efficiency = run time / (run time + stop time), unitless.

    ``stop_s`` is the time of the stops counted against the loom (``STOP_PROCESS``:
    warp, weft and other stops; the textbook figure leaves out beam changes and
    breakdowns). A loom at 96.2 % runs 962 s of every 1000 s.

    >>> efficiency(np.array([962.0]), np.array([38.0])).tolist()
    [0.962]
    """
    return ratio(run_s, np.asarray(run_s) + np.asarray(stop_s))


def efficiency_picks(picks: np.ndarray, nominal_rpm: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    """Picks-based efficiency = actual picks / (nominal picks/min x minutes), unitless.

    Equal to the time-based one when the loom runs at nominal speed over the same
    minutes (run + stop). 800 rpm for 60 min would insert 48,000 picks:

    >>> efficiency_picks(np.array([42_240.0]), np.array([800.0]), np.array([60.0])).tolist()
    [0.88]
    """
    return ratio(picks, np.asarray(nominal_rpm) * np.asarray(minutes))


def stops_per_1e5(stops: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Stops per 10^5 picks = 1e5 x stops / picks (per class or total).

    >>> stops_per_1e5(np.array([3.0]), np.array([50_000.0])).tolist()
    [6.0]
    """
    return ratio(1e5 * np.asarray(stops, dtype=np.float64), picks)


def mttr_s(repair_s: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Mean time to repair (s) = total repair time (s) / number of stops; NaN for none.

    >>> mttr_s(np.array([300.0, 0.0]), np.array([4.0, 0.0])).tolist()
    [75.0, nan]
    """
    return ratio(repair_s, stops)


def mtbf_s(run_s: np.ndarray, breakdowns: np.ndarray) -> np.ndarray:
    """Mean time between failures (s) = run time (s) / number of breakdowns; NaN for none.

    >>> mtbf_s(np.array([36_000.0]), np.array([2.0])).tolist()
    [18000.0]
    """
    return ratio(run_s, breakdowns)


def stop_counts(
    stops: StopTable,
    machines: Sequence[str],
    starts: np.ndarray,
    ends: np.ndarray,
    classes: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Number of stops and their summed repair time (s) per machine, window and class.

    A stop belongs to the window its start falls in; open episodes (NaN duration) count
    as stops but add no repair time. Returns two arrays of shape (M, W, C).

    >>> from analytics.intervals import StopTable
    >>> t = StopTable(np.array(["a", "a", "b"]), np.array(["STOP_PROCESS"] * 3),
    ...               np.array(["WARP", "WARP", "DOFF"]), np.array(["warp", "warp", "other"]),
    ...               np.array([10, 20, 15]), np.array([60.0, 30.0, np.nan]))
    >>> n, rep = stop_counts(t, ["a", "b"], np.array([0]), np.array([100]), ["warp", "other"])
    >>> n[:, 0].tolist(), rep[:, 0].tolist()
    ([[2.0, 0.0], [0.0, 1.0]], [[90.0, 0.0], [0.0, 0.0]])
    """
    m, w = machine_index(stops.machine, machines), window_of(stops.start_ms, starts, ends)
    lookup = {c: k for k, c in enumerate(classes)}
    c = np.array([lookup.get(x, -1) for x in stops.cls.tolist()], dtype=np.int64)
    keep = (m >= 0) & (w >= 0) & (c >= 0)
    shape = (len(machines), len(starts), len(classes))
    flat = np.ravel_multi_index((m[keep], w[keep], c[keep]), shape)
    size = int(np.prod(shape))
    counts = np.bincount(flat, minlength=size).astype(np.float64)
    repair = np.bincount(flat, np.nan_to_num(stops.duration_s[keep]), minlength=size)
    return counts.reshape(shape), repair.reshape(shape)
