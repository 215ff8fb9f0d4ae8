"""Stenter KPIs (domain spec §1.4, §4): exhaust-humidity compliance.

The exhaust humidity is the main energy-waste indicator of a stenter: 0.10-0.15 kg
water per kg dry air is the optimum [BREF]; below it the line heats air it throws
away, above it drying slows.

Example
-------
>>> import numpy as np
>>> h = np.array([[0.12, 0.05, 0.11, np.nan, 0.20]])
>>> run = np.array([[True, True, True, True, False]])
>>> humidity_compliance_pct(h, run).round(2).tolist()  # 2 of 3 valid running samples in band
[66.67]
"""

from __future__ import annotations

from typing import Final

import numpy as np

from analytics.kpi.oee import ratio

__all__ = ["HUMIDITY_BAND", "humidity_compliance_pct", "humidity_in_band"]

#: Optimal exhaust humidity, kg water per kg dry air (inclusive bounds).
HUMIDITY_BAND: Final = (0.10, 0.15)


def humidity_in_band(humidity: np.ndarray, band: tuple[float, float] = HUMIDITY_BAND) -> np.ndarray:
    """True where humidity (kg/kg) lies in ``band`` (inclusive); False for NaN.

    >>> humidity_in_band(np.array([0.1, 0.151, np.nan])).tolist()
    [True, False, False]
    """
    h = np.asarray(humidity, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (h >= band[0]) & (h <= band[1])


def humidity_compliance_pct(
    humidity: np.ndarray, running: np.ndarray, band: tuple[float, float] = HUMIDITY_BAND
) -> np.ndarray:
    """Compliance % = 100 x running samples in band / running samples with a value.

    Reduced along the last axis: (M, T) -> (M,). With equally spaced samples this is
    the share of run time in band; NaN when the machine never ran.

    >>> humidity_compliance_pct(np.array([0.12, 0.13]), np.array([False, False])).tolist()
    nan
    """
    h = np.asarray(humidity, dtype=np.float64)
    counted = np.asarray(running, dtype=bool) & ~np.isnan(h)
    inside = counted & humidity_in_band(h, band)
    return 100.0 * ratio(inside.sum(axis=-1), counted.sum(axis=-1))
