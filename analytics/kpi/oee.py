"""OEE = availability x performance x quality (domain spec §2, §4), on arrays.

Every function is elementwise over arrays of any shape (machines, machines x windows),
so one call rates a whole hall for every shift. A ratio with a zero or missing
denominator is NaN, never a warning or an infinity.

Example
-------
>>> import numpy as np
>>> s = np.zeros((1, 8)); s[0, [0, 1, 2, 3]] = [3600, 6 * 3600, 1800, 1800]
>>> a = availability(run_seconds(s), planned_seconds(s))
>>> a.round(4).tolist(), oee(a, performance(np.array([760.0]), np.array([800.0]))).round(4).tolist()
([0.8571], [0.8143])
"""

from __future__ import annotations

from typing import Final

import numpy as np

from millwatch.contract import STATES

__all__ = [
    "NOT_PLANNED",
    "availability",
    "oee",
    "performance",
    "planned_seconds",
    "quality",
    "ratio",
    "run_seconds",
]

#: State codes outside planned time: no plan, planned maintenance, no order.
NOT_PLANNED: Final = (STATES["OFF_NOPLAN"], STATES["PLANNED_MAINT"], STATES["IDLE_READY"])
_PLANNED: Final = np.array([c not in NOT_PLANNED for c in range(len(STATES))])


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, NaN where the denominator is 0 or NaN.

    >>> ratio(np.array([1.0, 1.0]), np.array([4.0, 0.0])).tolist()
    [0.25, nan]
    """
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    ok = den > 0
    return np.where(ok, num / np.where(ok, den, 1.0), np.nan)


def planned_seconds(state_s: np.ndarray) -> np.ndarray:
    """Planned time (s): all states except OFF_NOPLAN, PLANNED_MAINT and IDLE_READY.

    ``state_s`` has shape (..., 8), seconds per state code; result shape (...).

    >>> planned_seconds(np.array([[10.0, 20, 30, 0, 0, 0, 40, 50]])).tolist()
    [50.0]
    """
    return np.asarray(state_s)[..., _PLANNED].sum(axis=-1)


def run_seconds(state_s: np.ndarray) -> np.ndarray:
    """Run time (s): the RUN column of seconds per state code (..., 8).

    >>> run_seconds(np.array([[10.0, 20, 30, 0, 0, 0, 40, 50]])).tolist()
    [20.0]
    """
    return np.asarray(state_s)[..., STATES["RUN"]]


def availability(run_s: np.ndarray, planned_s: np.ndarray) -> np.ndarray:
    """A = run time / planned time (both s); unitless in [0, 1], NaN without plan.

    >>> availability(np.array([6.0]), np.array([8.0])).tolist()
    [0.75]
    """
    return ratio(run_s, planned_s)


def performance(actual_rate: np.ndarray, target_rate: np.ndarray) -> np.ndarray:
    """P = actual rate / target rate, capped at 1 (any rate unit, the same for both).

    Looms and knitting: picks or revolutions per run minute against the nominal rpm;
    dyeing: standard / actual cycle time (pass them as ``target``/``actual`` inverted,
    or use :func:`analytics.kpi.dye.cycle_ratio`).

    >>> performance(np.array([700.0, 900.0]), np.array([800.0, 800.0])).tolist()
    [0.875, 1.0]
    """
    return np.minimum(ratio(actual_rate, target_rate), 1.0)


def quality(
    good: np.ndarray | None = None, total: np.ndarray | None = None, shape: tuple[int, ...] = ()
) -> np.ndarray:
    """Q = good output / total output; 1 where there is no quality data.

    Without ``good``/``total`` the result is ones of ``shape`` (no inspection data is
    read yet, so Q does not pull OEE down).

    >>> quality(np.array([90.0, 0.0]), np.array([100.0, 0.0])).tolist()
    [0.9, 1.0]
    >>> quality(shape=(2,)).tolist()
    [1.0, 1.0]
    """
    if good is None or total is None:
        return np.ones(shape)
    q = ratio(good, total)
    return np.where(np.isnan(q), 1.0, q)


def oee(
    availability: np.ndarray, performance: np.ndarray, quality: np.ndarray | float = 1.0
) -> np.ndarray:
    """OEE = A x P x Q, unitless in [0, 1]; NaN where A or P is unknown.

    >>> oee(np.array([0.9]), np.array([0.95]), np.array([0.99])).round(4).tolist()
    [0.8464]
    """
    return np.asarray(availability) * np.asarray(performance) * np.asarray(quality)
