"""Instrument faults: a sensor lies while the process it watches stays healthy.

Analytics must tell these from process faults (domain spec §3), so they act on the
readings after a group's step and never on its state. Each function rewrites one
machine's value of one field in place; the caller passes a copy of the field array
when the group might still hold it.

Example
-------
>>> import numpy as np
>>> values = np.array([20.0, 21.0])
>>> freeze(values, 1, np.array([17.5]))
>>> values.tolist()
[20.0, 17.5]
>>> counter_fields("knit_circular")
('revs_total', 'fabric_kg_total', 'oil_pulses_total', 'energy_kwh_total')
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from millwatch.contract import MACHINE_TYPES, FieldKind
from simulators.signatures import BASELINE, baseline_key

__all__ = [
    "analog_fields",
    "counter_fields",
    "drift",
    "dropout",
    "freeze",
    "noise_scale",
    "spike",
]

#: Setpoints and batch metadata: not sensors, so no instrument fault hits them.
NOT_SENSORS = frozenset({"temp_sp_c", "width_set_cm", "batch_kg"})
#: Spike rate (per hour) and size (in baseline sds) at severity 0 and 1, E.
SPIKES_PER_HOUR = (4.0, 20.0)
SPIKE_SDS = (8.0, 20.0)
#: Drift reached at the end of a ``sensor_drift``, in baseline sds, E.
DRIFT_SDS = (4.0, 12.0)


@cache
def analog_fields(machine_type: str) -> tuple[str, ...]:
    """Measured float fields of a machine type, the ones a sensor fault may hit.

    >>> analog_fields("hall_env")
    ('temp_c', 'rh_pct')
    """
    fields = MACHINE_TYPES[machine_type].fields
    return tuple(
        name
        for name, kind in fields.items()
        if kind is FieldKind.FLOAT and not name.endswith("_total") and name not in NOT_SENSORS
    )


@cache
def counter_fields(machine_type: str) -> tuple[str, ...]:
    """Monotonic totals of a machine type, the ones a controller restart resets."""
    return tuple(name for name in MACHINE_TYPES[machine_type].fields if name.endswith("_total"))


def noise_scale(field: str, value: float) -> float:
    """A field's baseline sd (``signatures.BASELINE``), else 1 % of its value.

    >>> noise_scale("cam_temp_c", 41.0), noise_scale("speed_rpm", 800.0)
    (0.3, 8.0)
    """
    known = BASELINE.get(baseline_key("add", field))
    if known is not None:
        return known[1]
    return max(0.01 * abs(value), 1e-3) if math.isfinite(value) else 1.0


def freeze(values: np.ndarray, i: int, frozen: np.ndarray) -> None:
    """``sensor_stuck``: the value stays at the one captured at onset."""
    values[i] = frozen[0]


def drift(values: np.ndarray, i: int, p: float, severity: float, sign: float, scale: float) -> None:
    """``sensor_drift``: an additive ramp that reaches 4-12 sds at the fault's end."""
    lo, hi = DRIFT_SDS
    values[i] += sign * (lo + (hi - lo) * severity) * scale * p


def spike(
    values: np.ndarray, i: int, dt: float, severity: float, scale: float, rng: np.random.Generator
) -> None:
    """``sensor_spike``: rare single-sample outliers of 8-20 sds, either sign."""
    per_hour = SPIKES_PER_HOUR[0] + (SPIKES_PER_HOUR[1] - SPIKES_PER_HOUR[0]) * severity
    if rng.random() < -math.expm1(-per_hour * dt / 3600):
        size = SPIKE_SDS[0] + (SPIKE_SDS[1] - SPIKE_SDS[0]) * severity
        values[i] += (1.0 if rng.random() < 0.5 else -1.0) * size * scale


def dropout(values: np.ndarray, i: int) -> None:
    """``sensor_dropout``: no value at all (NaN, JSON null on the wire)."""
    values[i] = np.nan
