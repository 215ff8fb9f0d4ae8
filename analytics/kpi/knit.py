"""Circular knitting KPIs (domain spec §1.2, §4): efficiency and kg/h.

Example
-------
>>> import numpy as np
>>> efficiency(np.array([12_750.0]), np.array([30.0]), np.array([500.0])).tolist()
[0.85]
"""

from __future__ import annotations

import numpy as np

from analytics.kpi.oee import ratio

__all__ = ["efficiency", "kg_per_h"]


def efficiency(revs: np.ndarray, nominal_rpm: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    """Knitting efficiency = actual revolutions / (nominal rev/min x minutes), unitless.

    ``minutes`` is the planned time, so every stop, wait and setup is a loss. A 30-rpm
    machine over a 500-min stretch could make 15,000 revolutions; 12,750 is 85 %.

    >>> efficiency(np.array([14_400.0]), np.array([30.0]), np.array([480.0])).tolist()
    [1.0]
    """
    return ratio(revs, np.asarray(nominal_rpm) * np.asarray(minutes))


def kg_per_h(kg: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Production rate (kg/h) = fabric kg / (seconds / 3600).

    >>> kg_per_h(np.array([224.0]), np.array([8 * 3600.0])).tolist()
    [28.0]
    """
    return ratio(kg, np.asarray(seconds) / 3600.0)
