"""A small simulated factory: air-jet looms, circular knitting machines and jet dyeing.

Each machine group keeps its state in numpy arrays and advances every machine of the
group in one vectorised step; the same seed gives the same data. Rates and ranges come
from ``shared/domain/textile-telemetry.md`` (§1, §2). This is the foundation model the
gateway needs to be exercised; the realistic fleet with faults is its own module.

Example
-------
>>> fleet = Fleet(FactorySpec("c1", "f01", looms=3, knitting=2, dyeing=1), seed=7)
>>> [(r.machine_type, len(r.machines)) for r in fleet.step(1_767_168_000_000)]
[('loom_airjet', 3), ('knit_circular', 2), ('dye_jet', 1)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.inputs.base import Reading
from millwatch.contract import STATES, MachineAddress

RUN, STOP = STATES["RUN"], STATES["STOP_PROCESS"]


@dataclass(frozen=True)
class FactorySpec:
    """How many machines of each kind one simulated factory has."""

    cluster: str
    factory: str
    looms: int = 20
    knitting: int = 0
    dyeing: int = 0


def _addresses(spec: FactorySpec, hall: str, prefix: str, n: int) -> list[MachineAddress]:
    return [MachineAddress(spec.cluster, spec.factory, hall, f"{prefix}{i:04d}") for i in range(n)]


class _StopModel:
    """Random stops per machine: class drawn by rate, lognormal repair durations."""

    def __init__(self, reasons: list[str], medians_s: np.ndarray, n: int) -> None:
        self.reasons = reasons
        self.medians_s = medians_s
        self.state = np.full(n, RUN, dtype=np.int64)
        self.remaining_s = np.zeros(n)
        self.started_ms = np.zeros(n, dtype=np.int64)

    def step(
        self, rng: np.random.Generator, rates: np.ndarray, dt: float, ts_ms: int
    ) -> tuple[list[tuple[int, dict[str, Any]]], np.ndarray]:
        """Advance one tick; ``rates`` shape (n, classes) in stops per tick while running.

        Returns the events and the index of the stop class per machine (-1: none).
        """
        events: list[tuple[int, dict[str, Any]]] = []
        stopped = self.state == STOP
        self.remaining_s[stopped] -= dt
        for i in np.flatnonzero(stopped & (self.remaining_s <= 0)):
            duration_s = float(ts_ms - self.started_ms[i]) / 1000
            record = {"ts": ts_ms, "kind": "state", "code": "RUN", "duration_s": duration_s}
            events.append((int(i), record))
        self.state[stopped & (self.remaining_s <= 0)] = RUN
        p_stop = 1 - np.exp(-rates.sum(axis=1))
        new_stop = (self.state == RUN) & (rng.random(len(self.state)) < p_stop)
        cls = np.full(len(self.state), -1)
        if new_stop.any():
            weights = rates[new_stop] / rates[new_stop].sum(axis=1, keepdims=True)
            cls[new_stop] = (rng.random((int(new_stop.sum()), 1)) > weights.cumsum(1)).sum(1)
            durations = self.medians_s[cls[new_stop]] * rng.lognormal(0, 0.7, new_stop.sum())
            self.remaining_s[new_stop] = durations
            self.started_ms[new_stop] = ts_ms
            self.state[new_stop] = STOP
            for i in np.flatnonzero(new_stop):
                reason = self.reasons[cls[i]]
                events.append(
                    (
                        int(i),
                        {"ts": ts_ms, "kind": "stop", "code": "STOP_PROCESS", "reason": reason},
                    )
                )
        return events, cls


class LoomGroup:
    """Air-jet looms: picks, stops per 10^5 picks by class, air, vibration, energy."""

    machine_type = "loom_airjet"
    # Stops per 10^5 picks (warp, weft, other) and median repair minutes, spec §2.
    STOP_RATES = np.array([3.0, 6.0, 1.0])
    REPAIR_MEDIAN_S = np.array([2.5, 0.7, 3.0]) * 60

    def __init__(self, spec: FactorySpec, rng: np.random.Generator) -> None:
        n = spec.looms
        self.machines = _addresses(spec, "weave1", "l", n)
        self.rng = rng
        self.rpm = rng.uniform(600, 900, n)
        self.picks = rng.integers(1_000_000, 50_000_000, n).astype(np.float64)
        self.stops_by_class = np.zeros((n, 3))
        self.energy = rng.uniform(1_000, 20_000, n)
        self.vib_base = rng.uniform(1.0, 2.5, n)
        self.air_base = rng.uniform(40, 70, n)
        self.stops = _StopModel(["WARP", "WEFT_SHORT", "MANUAL"], self.REPAIR_MEDIAN_S, n)

    def step(self, ts_ms: int, dt: float) -> Reading:
        """Advance every loom by ``dt`` seconds and read them at ``ts_ms``."""
        n, rng = len(self.machines), self.rng
        picks_per_tick = self.rpm / 60 * dt
        rates = np.outer(picks_per_tick, self.STOP_RATES) / 1e5
        events, cls = self.stops.step(rng, rates, dt, ts_ms)
        running = self.stops.state == RUN
        self.stops_by_class[cls >= 0, cls[cls >= 0]] += 1
        self.picks += np.where(running, np.floor(picks_per_tick), 0)
        power = np.where(running, 4.0 * self.rpm / 800, 0.4) + rng.normal(0, 0.05, n)
        self.energy += power * dt / 3600
        noise = rng.normal(0, 1, (6, n))
        fields = {
            "speed_rpm": np.where(running, self.rpm + noise[0] * 2, 0.0),
            "picks_total": self.picks.copy(),
            "warp_stops_total": self.stops_by_class[:, 0].copy(),
            "weft_stops_total": self.stops_by_class[:, 1].copy(),
            "other_stops_total": self.stops_by_class[:, 2].copy(),
            "warp_tension_kn": 3.0 + noise[1] * 0.03,
            "air_supply_bar": 6.2 + noise[2] * 0.05,
            "air_flow_nm3h": np.where(running, self.air_base + noise[3], 2.0),
            "weft_arrival_deg": 238 + noise[4] * 3,
            "motor_power_kw": power,
            "vib_rms_mm_s": np.where(running, self.vib_base + noise[5] * 0.1, 0.2),
            "energy_kwh_total": self.energy.copy(),
            "state_code": self.stops.state.astype(np.float64),
        }
        return Reading(self.machine_type, self.machines, ts_ms, fields, events)


class KnitGroup:
    """Circular knitting machines: revolutions, fabric kg, yarn stops, cam temperature."""

    machine_type = "knit_circular"
    STOPS_PER_HOUR = np.array([2.5, 2 / 24])
    REPAIR_MEDIAN_S = np.array([90.0, 360.0])

    def __init__(self, spec: FactorySpec, rng: np.random.Generator) -> None:
        n = spec.knitting
        self.machines = _addresses(spec, "knit1", "k", n)
        self.rng = rng
        self.rpm = rng.uniform(25, 35, n)
        self.kg_per_rev = rng.uniform(0.012, 0.018, n)
        self.revs = rng.integers(100_000, 5_000_000, n).astype(np.float64)
        self.kg = self.revs * self.kg_per_rev
        self.energy = rng.uniform(1_000, 40_000, n)
        self.oil = rng.integers(1_000, 500_000, n).astype(np.float64)
        self.stops = _StopModel(["YARN_IN", "NEEDLE"], self.REPAIR_MEDIAN_S, n)

    def step(self, ts_ms: int, dt: float) -> Reading:
        """Advance every knitting machine by ``dt`` seconds and read them at ``ts_ms``."""
        n, rng = len(self.machines), self.rng
        rates = np.tile(self.STOPS_PER_HOUR * dt / 3600, (n, 1))
        events, _ = self.stops.step(rng, rates, dt, ts_ms)
        running = self.stops.state == RUN
        revs = np.where(running, self.rpm / 60 * dt, 0.0)
        self.revs += revs
        self.kg += revs * self.kg_per_rev
        power = np.where(running, 3.6, 0.3) + rng.normal(0, 0.05, n)
        self.energy += power * dt / 3600
        self.oil += rng.random(n) < dt / 10
        noise = rng.normal(0, 1, (3, n))
        fields = {
            "speed_rpm": np.where(running, self.rpm + noise[0] * 0.2, 0.0),
            "revs_total": np.floor(self.revs),
            "fabric_kg_total": self.kg.copy(),
            "yarn_tension_cn": 4.0 + noise[1] * 0.2,
            "drive_power_kw": power,
            "cam_temp_c": 40 + noise[2] * 0.3,
            "oil_pulses_total": self.oil.copy(),
            "energy_kwh_total": self.energy.copy(),
            "state_code": self.stops.state.astype(np.float64),
        }
        return Reading(self.machine_type, self.machines, ts_ms, fields, events)


class DyeGroup:
    """Jet dyeing machines running an HT-polyester programme: heat, hold, cool, rinse."""

    machine_type = "dye_jet"
    # (step type, target °C, gradient °C/min, hold minutes), spec §1.3 [TP-ht].
    PROGRAMME = (
        ("FILL", 40.0, 0.0, 10.0),
        ("HEAT", 80.0, 2.5, 0.0),
        ("HEAT", 130.0, 1.25, 0.0),
        ("HOLD", 130.0, 0.0, 45.0),
        ("COOL", 75.0, -2.5, 0.0),
        ("RINSE", 50.0, 0.0, 20.0),
        ("UNLOAD", 40.0, 0.0, 15.0),
    )

    def __init__(self, spec: FactorySpec, rng: np.random.Generator) -> None:
        n = spec.dyeing
        self.machines = _addresses(spec, "wet1", "d", n)
        self.rng = rng
        self.step_no = rng.integers(0, len(self.PROGRAMME), n)
        self.step_elapsed_s = np.zeros(n)
        self.setpoint = np.full(n, 40.0)
        self.temp = np.full(n, 40.0)
        self.batch = np.arange(n) * 1000
        self.batch_kg = rng.uniform(200, 800, n)
        self.water = rng.uniform(1e5, 1e7, n)
        self.steam = rng.uniform(1e4, 1e6, n)
        self.energy = rng.uniform(1e3, 1e5, n)

    def _advance_programme(self, ts_ms: int, dt: float) -> list[tuple[int, dict[str, Any]]]:
        targets = np.array([p[1] for p in self.PROGRAMME])[self.step_no]
        gradients = np.array([p[2] for p in self.PROGRAMME])[self.step_no]
        holds = np.array([p[3] for p in self.PROGRAMME])[self.step_no] * 60
        ramp = gradients != 0
        self.setpoint = np.where(ramp, self.setpoint + gradients * dt / 60, targets)
        self.setpoint = np.where(gradients > 0, np.minimum(self.setpoint, targets), self.setpoint)
        self.setpoint = np.where(gradients < 0, np.maximum(self.setpoint, targets), self.setpoint)
        self.step_elapsed_s += dt
        done = np.where(ramp, self.setpoint == targets, self.step_elapsed_s >= holds)
        events = []
        for i in np.flatnonzero(done):
            self.step_no[i] = (self.step_no[i] + 1) % len(self.PROGRAMME)
            self.step_elapsed_s[i] = 0
            if self.step_no[i] == 0:
                self.batch[i] += 1
            record = {
                "ts": ts_ms,
                "kind": "step",
                "code": self.PROGRAMME[self.step_no[i]][0],
                "step_no": int(self.step_no[i]),
                "batch_id": f"b{self.batch[i]:06d}",
            }
            events.append((int(i), record))
        return events

    def step(self, ts_ms: int, dt: float) -> Reading:
        """Advance every dyeing machine by ``dt`` seconds and read them at ``ts_ms``."""
        n, rng = len(self.machines), self.rng
        events = self._advance_programme(ts_ms, dt)
        lag = 1 - np.exp(-dt / 30)
        self.temp += (self.setpoint - self.temp) * lag + rng.normal(0, 0.05, n)
        heating = np.clip(self.setpoint - self.temp, 0, None)
        self.steam += heating * 0.5 * dt
        self.energy += 15 * dt / 3600
        rinsing = np.array([self.PROGRAMME[s][0] in ("FILL", "RINSE") for s in self.step_no])
        self.water += rinsing * 2.0 * dt
        fields = {
            "liquor_temp_c": self.temp.copy(),
            "temp_sp_c": self.setpoint.copy(),
            "pressure_bar": np.clip((self.temp - 100) * 0.05, 0, None),
            "ph": 4.6 + rng.normal(0, 0.02, n),
            "conductivity_ms_cm": 3.0 + rng.normal(0, 0.05, n),
            "pump_speed_pct": np.full(n, 85.0),
            "flow_m3h": 210 + rng.normal(0, 2, n),
            "nozzle_bar": 1.2 + rng.normal(0, 0.02, n),
            "reel_speed_m_min": 310 + rng.normal(0, 3, n),
            "cycle_time_s": 62 + rng.normal(0, 0.5, n),
            "level_l": 4800 + rng.normal(0, 10, n),
            "water_l_total": self.water.copy(),
            "steam_kg_total": self.steam.copy(),
            "energy_kwh_total": self.energy.copy(),
            "step_no": self.step_no.astype(np.float64),
            "batch_kg": self.batch_kg.copy(),
            "state_code": np.full(n, float(RUN)),
        }
        return Reading(self.machine_type, self.machines, ts_ms, fields, events)


class Fleet:
    """Every machine group of one factory, stepped together at 1-s resolution."""

    def __init__(self, spec: FactorySpec, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        kinds = ((LoomGroup, spec.looms), (KnitGroup, spec.knitting), (DyeGroup, spec.dyeing))
        self.groups = [cls(spec, rng) for cls, count in kinds if count > 0]
        self.last_ts_ms: int | None = None

    @property
    def machines(self) -> list[MachineAddress]:
        """Every simulated machine's address."""
        return [m for g in self.groups for m in g.machines]

    def step(self, ts_ms: int) -> list[Reading]:
        """Advance to ``ts_ms`` (UTC epoch ms) and read every group once."""
        dt = 1.0 if self.last_ts_ms is None else max((ts_ms - self.last_ts_ms) / 1000, 0.0)
        self.last_ts_ms = ts_ms
        return [group.step(ts_ms, dt) for group in self.groups]
