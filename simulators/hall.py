"""Hall climate: one ``hall_env`` sensor per hall, temperature with a daily cycle and RH.

§1.1/§1.2 of ``shared/domain/textile-telemetry.md``: halls run at 26-32 °C (E);
cotton weaving is humidified to 80-85 % RH at warp level (the sensor's height, since
that RH drives warp breaks) and knitting halls to 55 +- 5 %. The humidification plant
holds RH near its target, so RH dips a little as the afternoon warms the hall. Slow
random weather on top is an AR(1) process with a 30-min memory, which keeps the
readings' statistics the same whatever ``dt``.

The hall type comes from the sensor's hall id (``weave*``, ``knit*``, ``wet*``,
``finish*``). Readings are emitted every tick although §1.1 samples halls each 60 s.
Halls have no machine state: calendar and ``held_down`` do not apply to them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gateway.inputs.base import Reading
from millwatch.contract import MachineAddress
from simulators.model import GroupEffects

__all__ = ["RH_TARGETS", "HallEnvGroup"]

#: RH target range (%) by hall id prefix; other halls get ``DEFAULT_RH`` (E).
RH_TARGETS: dict[str, tuple[float, float]] = {
    "weave": (80.0, 85.0),
    "knit": (50.0, 60.0),
    "wet": (65.0, 75.0),
    "finish": (55.0, 65.0),
}
DEFAULT_RH = (55.0, 65.0)
PEAK_HOUR = 15.0  # local time of the warmest hour (E)
MEMORY_S = 1800.0
TEMP_SD, RH_SD = 0.4, 1.0


def _rh_range(hall: str) -> tuple[float, float]:
    return next((v for k, v in RH_TARGETS.items() if hall.startswith(k)), DEFAULT_RH)


class HallEnvGroup:
    """Every hall's climate sensor of one factory (a ``MachineGroup`` of ``hall_env``).

    ``utc_offset_h`` places the daily cycle in the factory's local time (the warmest
    hour is 15:00 local).

    >>> from millwatch.contract import MachineAddress
    >>> halls = [MachineAddress("c1", "f01", h, f"env-{h}") for h in ("weave1", "knit1")]
    >>> group = HallEnvGroup(halls, np.random.default_rng(0), utc_offset_h=5.5)
    >>> r = group.step(1_767_168_000_000, 60.0, True, False, GroupEffects(2))
    >>> weave, knit = r.fields["rh_pct"]
    >>> bool(75 < weave < 90 and 45 < knit < 65), bool((abs(r.fields["temp_c"] - 29) < 3.5).all())
    (True, True)
    """

    machine_type = "hall_env"
    EFFECT_KEYS = frozenset({"temp_c", "rh_pct"})

    def __init__(
        self,
        machines: Sequence[MachineAddress],
        rng: np.random.Generator,
        utc_offset_h: float = 0.0,
    ) -> None:
        self.machines, self.rng, self.utc_offset_h = list(machines), rng, utc_offset_h
        n = len(self.machines)
        ranges = np.array([_rh_range(m.hall) for m in self.machines]).reshape(n, 2)
        self.rh_target = rng.uniform(ranges[:, 0], ranges[:, 1])
        self.temp_mean = rng.uniform(28.0, 30.0, n)
        self.temp_swing = rng.uniform(1.0, 2.0, n)  # amplitude: 26-32 °C over a day
        self.rh_per_c = rng.uniform(0.5, 1.0, n)  # RH the plant loses per °C above mean
        self._weather = rng.standard_normal((2, n))  # AR(1) states, unit variance

    def step(
        self, ts_ms: int, dt: float, planned: bool, maintenance: bool, effects: GroupEffects
    ) -> Reading:
        """Advance every hall by ``dt`` seconds and read its climate at ``ts_ms``."""
        keep = np.exp(-dt / MEMORY_S)
        fresh = self.rng.standard_normal(self._weather.shape)
        self._weather = keep * self._weather + np.sqrt(1 - keep * keep) * fresh
        hour = (ts_ms / 3.6e6 + self.utc_offset_h) % 24
        cycle = np.cos(2 * np.pi * (hour - PEAK_HOUR) / 24)
        warm = self.temp_swing * cycle + TEMP_SD * self._weather[0]
        rh = self.rh_target - self.rh_per_c * warm + RH_SD * self._weather[1]
        fields = {
            "temp_c": effects.apply("temp_c", self.temp_mean + warm),
            "rh_pct": np.clip(effects.apply("rh_pct", rh), 0.0, 100.0),
        }
        return Reading(self.machine_type, self.machines, ts_ms, fields)
