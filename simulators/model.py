"""What every simulated machine group shares: the step contract and the fault hooks.

A machine group holds all machines of one type in one factory as numpy arrays and
advances them together. Faults (``simulators.faults``) do not reach into a model's
internals: each step they hand the group a :class:`GroupEffects`, whose arrays say how
much each machine's process deviates (a worn bearing multiplies vibration, a compressor
sag subtracts pressure, a fouled heat exchanger slows heating). Instrument faults act on
the readings after the step, so the process itself stays healthy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from gateway.inputs.base import Reading
from millwatch.contract import MachineAddress


@dataclass
class GroupEffects:
    """Per-machine deviations for one step of one group; every array has shape (n,).

    ``mul`` and ``add`` act on process quantities named by the group (a contract field
    such as ``vib_rms_mm_s``, or a model knob such as ``heating_gradient`` that the
    group documents in its ``EFFECT_KEYS``): ``value * mul + add``. ``stop_rate_mul``
    multiplies the rate of a stop class (e.g. ``"warp"``). ``breakdown`` marks machines
    a fault holds in ``BREAKDOWN`` this step.
    """

    n: int
    mul: dict[str, np.ndarray] = field(default_factory=dict)
    add: dict[str, np.ndarray] = field(default_factory=dict)
    stop_rate_mul: dict[str, np.ndarray] = field(default_factory=dict)
    breakdown: np.ndarray | None = None

    def scale(self, key: str) -> np.ndarray | float:
        """Multiplier for ``key`` (1.0 when no fault touches it)."""
        return self.mul.get(key, 1.0)

    def shift(self, key: str) -> np.ndarray | float:
        """Offset for ``key`` (0.0 when no fault touches it)."""
        return self.add.get(key, 0.0)

    def apply(self, key: str, value: np.ndarray) -> np.ndarray:
        """``value * mul + add`` for ``key``."""
        return value * self.scale(key) + self.shift(key)

    def rate(self, stop_class: str) -> np.ndarray | float:
        """Stop-rate multiplier for a stop class."""
        return self.stop_rate_mul.get(stop_class, 1.0)

    def held_down(self) -> np.ndarray:
        """Boolean mask of machines a fault holds in breakdown."""
        return self.breakdown if self.breakdown is not None else np.zeros(self.n, dtype=bool)


class MachineGroup(Protocol):
    """All machines of one type in one factory, advanced together.

    ``step`` receives the tick's UTC time, its length ``dt`` in seconds, whether the
    factory's shift calendar plans production now (``planned``: when False, machines go
    to ``OFF_NOPLAN`` or ``PLANNED_MAINT`` as ``maintenance`` says), and the faults'
    effects; it returns one :class:`Reading` with one value per machine per field and
    the events (state changes, stops with reasons, steps) of this tick.
    """

    machine_type: str
    machines: Sequence[MachineAddress]
    EFFECT_KEYS: frozenset[str]

    def step(
        self, ts_ms: int, dt: float, planned: bool, maintenance: bool, effects: GroupEffects
    ) -> Reading:
        """Advance every machine by ``dt`` seconds."""
        ...
