"""Stenter frames: continuous drying and heat-setting lines (domain spec §1.4, §2).

A stenter runs batch after batch of one article; each article sets the zone
temperatures, the dwell time in the heated length (so the speed), width, overfeed and
weight. The drying is kept causal: how dry the fabric leaves depends on the zone
temperatures, the dwell and the exhaust humidity, so a burner that drops one zone or
a weak exhaust fan shows up in ``residual_moisture_pct``. The exhaust fan is driven
to a humidity setpoint (0.10-0.15 kg/kg on a well-run line; some lines sit at
0.05-0.07 and pay for it in gas, [BREF]); the gas burners supply evaporation, air
heating, fabric heating and shell losses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.inputs.base import Reading
from millwatch.contract import STATES, MachineAddress
from simulators.model import GroupEffects
from simulators.states import EpisodeEvents

__all__ = ["ARTICLES", "Article", "StenterGroup", "dwell_time_s"]

Span = tuple[float, float]
# Phases: what the line is doing; each maps to a state code and an event reason.
RUNNING, STOPPED, BROKEN, WAITING, CHANGEOVER, HEAT_UP, THREADING, OFF = range(8)
PHASE_STATE = np.array([1, 2, 3, 5, 4, 4, 4, 0])
AMBIENT_C, AIR_H = 30.0, 0.012  # hall air: °C and kg water per kg dry air
GAS_KJ_NM3, BURNER_EFF, LATENT_KJ_KG = 35_900.0, 0.92, 2_600.0


def dwell_time_s(heated_length_m: float | np.ndarray, speed_m_min: float | np.ndarray) -> Any:
    """Seconds the fabric spends in the heated length.

    >>> dwell_time_s(24.0, 40.0)  # spec §1.4: 24 m at 40 m/min
    36.0
    """
    return 60.0 * heated_length_m / speed_m_min


@dataclass(frozen=True)
class Article:
    """What a stenter is set to for one article; spans are drawn per changeover."""

    article_id: str
    temp_c: Span  # main-zone setpoint
    dwell_s: Span  # required time in the heated length
    width_cm: Span
    overfeed_pct: Span
    gsm: Span
    heat_set: bool  # heat-setting profile (cool entry and exit zones) or drying
    weight: float


#: Drying 120-160 °C; PES heat-setting 180-210 °C for 20-60 s ([FS-st], [HS-tab]).
ARTICLES = (
    Article("CO-KNIT-DRY", (130, 150), (40, 80), (160, 200), (10, 25), (140, 220), False, 0.4),
    Article("CO-WOVEN-FIN", (140, 160), (30, 60), (150, 180), (2, 6), (110, 180), False, 0.2),
    Article("PES-HEATSET", (190, 205), (20, 45), (150, 180), (2, 8), (80, 150), True, 0.25),
    Article("PES-EL-HEATSET", (180, 195), (30, 50), (150, 170), (15, 30), (160, 240), True, 0.15),
)
#: Stop reasons (§2): share of stops, phase, median minutes; FABRIC_OFF_PIN and TEAR
#: are the ``"process"`` class a fault can scale, the rest ``"mechanical"``.
STOPS = (
    ("FABRIC_OFF_PIN", 0.45, STOPPED, 3.0),
    ("TEAR", 0.2, STOPPED, 10.0),
    ("WAIT_BATCH", 0.12, WAITING, 20.0),
    ("BURNER", 0.07, BROKEN, 30.0),
    ("CHAIN", 0.07, BROKEN, 45.0),
    ("EXHAUST_FAN", 0.05, BROKEN, 40.0),
    ("THERMAL_OIL", 0.04, BROKEN, 60.0),
)
#: Fault hooks besides ``zoneN_temp_c``: fields, then the knobs ``width_noise`` (scales
#: the width error) and ``exhaust_air`` (scales the exhaust air a fan moves).
EFFECT_FIELDS = ("burner_pct", "residual_moisture_pct", "exhaust_humidity_kg_kg", "gas_nm3h")
EFFECT_FIELDS += ("width_act_cm", "width_noise", "exhaust_air")
#: Reasons on state events (index 0: none); ``MECH`` is a fault's hold, as in states.py.
REASONS = (None, *(s[0] for s in STOPS), "CHANGEOVER", "HEAT_UP", "THREADING", "MECH")
_PROCESS_STOP = np.array([s[0] in ("FABRIC_OFF_PIN", "TEAR") for s in STOPS])
_COLD_STOP = np.array([s[0] in ("BURNER", "THERMAL_OIL") for s in STOPS])  # heat goes off


def _profile(zones: int, heat_set: bool) -> np.ndarray:
    """Setpoint offsets (°C) per zone from the main temperature, shape (zones,)."""
    offsets = np.zeros(zones)
    entry, exit_ = ((-45, -30, -5), (-5, -35)) if heat_set else ((-10, -5), (-10,))
    offsets[: len(entry)] = entry[:zones]
    offsets[zones - len(exit_) :] = np.minimum(offsets[zones - len(exit_) :], exit_)
    return offsets


class StenterGroup(EpisodeEvents):
    """The stenters of one finishing hall, advanced together.

    Per machine, drawn once: zone time constants and offsets, padder pressure, exhaust
    control quality (30 % of lines over-extract), fan, drive and burner sizes, stop rate
    0.2-1 per hour. Per article (at a changeover): temperatures, dwell, width, overfeed
    and weight. Every batch seam slows the line for 30-90 s (``SEAM_SLOW`` step event).
    ``EFFECT_KEYS`` lists the fault hooks, ``STOP_CLASSES`` the stop rates a fault scales.
    Zone, humidity and residual-moisture effects act on the process, so the rest follows:
    a cold zone leaves the fabric wetter, humidity pulled down means more air to heat.

    Examples
    --------
    >>> machines = [MachineAddress("c1", "f01", "finish1", f"s{i:04d}") for i in range(2)]
    >>> group = StenterGroup(machines, np.random.default_rng(3), zones=8)
    >>> reading = group.step(1_767_168_000_000, 5.0, True, False, GroupEffects(2))
    >>> sorted(k for k in reading.fields if k.startswith("zone"))[:3]
    ['zone1_temp_c', 'zone2_temp_c', 'zone3_temp_c']
    >>> float(group.heated_length_m[0]), len(reading.fields)
    (24.0, 25)
    """

    machine_type = "stenter"
    STOP_CLASSES = frozenset({"process", "mechanical"})
    ZONE_LENGTH_M = 3.0
    POOR_CONTROL_SHARE = 0.3
    P_CHANGEOVER = 0.15
    BATCH_M = (800.0, 3000.0)

    def __init__(
        self, machines: Sequence[MachineAddress], rng: np.random.Generator, zones: int = 8
    ) -> None:
        if not 1 <= zones <= 12:
            raise ValueError(f"zones must be 1..12 (contract fields zone1..zone12), not {zones}")
        self.machines, self.rng, self.zones = list(machines), rng, zones
        self._zone_keys = [f"zone{k + 1}_temp_c" for k in range(zones)]
        self.EFFECT_KEYS = frozenset((*self._zone_keys, *EFFECT_FIELDS))
        n, u = len(self.machines), rng.uniform
        self.heated_length_m = np.full(n, zones * self.ZONE_LENGTH_M)
        self._tau_s = u(300, 600, n)
        self._zone_bias = rng.normal(0, 0.8, (n, zones))
        self.padder_bar = u(3.0, 5.0, n)
        self.well_controlled = rng.random(n) >= self.POOR_CONTROL_SHARE
        self._h_sp = np.where(self.well_controlled, u(0.11, 0.14, n), u(0.05, 0.07, n))
        self._width_sd = u(0.0015, 0.003, n)  # relative; ±1 % is about 3-6 sd
        self._circ_kw = u(7.5, 11.0, n) * zones
        self._exhaust_kw, self._drive_kw = u(11, 15, n), u(7.5, 15, n)
        self._shell_kw = u(8, 12, n) * zones  # at 150 K above the hall
        self._zone_kj_k = 500.0 * zones
        self._air_max = u(4500, 6000, n) * zones / 8  # kg dry air per hour
        self._burner_kw = u(700, 900, n) * zones / 8
        self._circ_pct = u(85, 100, n)
        self._oil = rng.random(n) < 0.3  # thermal-oil heated lines report oil temperature
        self.stops_per_h = u(0.2, 1.0, n)
        self._stop_p = np.array([s[1] for s in STOPS])
        # Line state.
        self.phase = np.full(n, HEAT_UP)
        self.timer_s, self.slow_s, self.metres_left = np.zeros((3, n))
        self.reason = np.full(n, -1)
        self.article = np.zeros(n, dtype=int)
        self.temp_sp, self.dwell, self.width_set, self.overfeed, self.gsm = np.zeros((5, n))
        self.speed_set, self.slow_factor, self.residual_nom, self.moisture_in = np.zeros((4, n))
        self.temp = np.full((n, zones), AMBIENT_C)
        self.sp = np.zeros((n, zones))
        self.width_err, self.h = np.zeros(n), self._h_sp.copy()
        self.oil_c = np.full(n, AMBIENT_C)
        self.batch_no = rng.integers(1, 20_000, n)
        self.batch_id = np.full(n, None, dtype=object)
        self.energy_kwh = u(5e4, 5e5, n)
        self.state = np.full(n, -1)
        self.since_ms = np.zeros(n, dtype=np.int64)
        self._reason, self._episode = np.zeros((2, n), dtype=int)
        self._held = np.zeros(n, dtype=bool)
        self._stop_weights = np.zeros((n, len(STOPS)))
        self._ts, self._events = 0, list[tuple[int, dict[str, Any]]]()
        for i in range(n):
            self._new_article(i)
            self._new_batch(i)
            self.temp[i] = self.sp[i] + rng.normal(0, 1, zones)  # already hot: running
            self.phase[i] = RUNNING

    # -- the few machines with an event this tick ------------------------------------

    def _new_article(self, i: int) -> None:
        rng, a = self.rng, int(self.rng.choice(len(ARTICLES), p=_weights()))
        art = ARTICLES[a]
        self.article[i] = a
        self.temp_sp[i] = rng.uniform(*art.temp_c)
        self.sp[i] = self.temp_sp[i] + _profile(self.zones, art.heat_set)
        self.dwell[i] = rng.uniform(*art.dwell_s)
        self.width_set[i], self.gsm[i] = rng.uniform(*art.width_cm), rng.uniform(*art.gsm)
        self.overfeed[i] = rng.uniform(*art.overfeed_pct)

    def _new_batch(self, i: int) -> None:
        rng = self.rng
        self.batch_no[i] += 1
        self.batch_id[i] = f"{self.machines[i].machine}-{self.batch_no[i]:06d}"
        self.metres_left[i] = rng.uniform(*self.BATCH_M)
        speed = dwell_time_s(self.heated_length_m[i], self.dwell[i]) * rng.uniform(0.98, 1.02)
        self.speed_set[i] = np.clip(speed, 10.0, 60.0)
        self.moisture_in[i] = np.clip(65 - 3 * self.padder_bar[i] + rng.normal(0, 1.5), 45, 65)
        self.residual_nom[i] = rng.uniform(4.5, 7.5)

    def _emit(self, i: int, kind: str, code: str, **extra: Any) -> None:
        rec = {"ts": self._ts, "kind": kind, "code": code, "batch_id": self.batch_id[i], **extra}
        self._events.append((i, rec))

    def _seam(self, i: int) -> None:
        """End of a batch: the next one is sewn on, or the line changes article."""
        if self.rng.random() < self.P_CHANGEOVER:
            self._new_article(i)
            self.phase[i], self.timer_s[i] = CHANGEOVER, 60 * self.rng.uniform(20, 60)
            self._episode[i] = REASONS.index("CHANGEOVER")
            self._new_batch(i)
        else:
            self._new_batch(i)
            self.slow_s[i], self.slow_factor[i] = (
                self.rng.uniform(30, 90),
                self.rng.uniform(0.3, 0.5),
            )
            self._emit(i, "step", "SEAM_SLOW")

    def _stop(self, i: int) -> None:
        k = int(self.rng.choice(len(STOPS), p=self._stop_weights[i]))
        self.reason[i], self.phase[i], self._episode[i] = k, STOPS[k][2], 1 + k
        self.timer_s[i] = 60 * STOPS[k][3] * self.rng.lognormal(0, 0.7)

    def _resume(self, i: int, planned: bool) -> None:
        """A phase ran out: decide the next one."""
        p = self.phase[i]
        hot = np.abs(self.temp[i] - self.sp[i]).max() < 5.0
        if not planned:
            self.phase[i] = OFF
        elif p in (OFF, CHANGEOVER) or (p != THREADING and not hot):
            self.phase[i] = HEAT_UP if not hot else THREADING
            self.timer_s[i] = 60 * self.rng.uniform(5, 15)
        elif p == HEAT_UP or (p == STOPPED and STOPS[self.reason[i]][0] == "TEAR"):
            self.phase[i], self.timer_s[i] = THREADING, 60 * self.rng.uniform(5, 15)
        else:
            self.phase[i] = RUNNING
        self.reason[i] = -1 if self.phase[i] != p else self.reason[i]

    # -- one tick --------------------------------------------------------------------

    def step(
        self, ts_ms: int, dt: float, planned: bool, maintenance: bool, effects: GroupEffects
    ) -> Reading:
        """Advance every line by ``dt`` seconds and read it at ``ts_ms``."""
        n, rng = len(self.machines), self.rng
        self._ts, self._events = ts_ms, []
        free = ~effects.held_down()
        self.timer_s = np.where(free, self.timer_s - dt, self.timer_s)
        self.slow_s = np.maximum(self.slow_s - dt, 0.0)
        if not planned:
            self.phase[free], self.reason[free] = OFF, -1
        hot = (np.abs(self.temp - self.sp) < 5.0).all(axis=1)
        due = free & (self.phase != RUNNING) & (self.timer_s <= 0) & (planned or self.phase != OFF)
        for i in np.flatnonzero(due & ((self.phase != HEAT_UP) | hot)).tolist():
            self._resume(i, planned)
        running = free & (self.phase == RUNNING)
        speed = running * self.speed_set * np.where(self.slow_s > 0, self.slow_factor, 1.0)
        speed = np.where(free & (self.phase == THREADING), 4.0, speed)  # crawl to thread
        self.metres_left -= speed * dt / 60
        for i in np.flatnonzero(running & (self.metres_left <= 0)).tolist():
            self._seam(i)
        rate = np.where(_PROCESS_STOP, _column(effects.rate("process"), n), 1.0)
        rate = rate * np.where(_PROCESS_STOP, 1.0, _column(effects.rate("mechanical"), n))
        weights = self.stops_per_h[:, None] * self._stop_p * rate
        self._stop_weights = weights / weights.sum(axis=1, keepdims=True)
        p_stop = 1 - np.exp(-weights.sum(axis=1) * dt / 3600)
        for i in np.flatnonzero(running & (rng.random(n) < p_stop)).tolist():
            self._stop(i)
        fields = self._process(dt, ~free, speed, effects)
        self._emit_states(~free, maintenance)
        fields["state_code"] = self.state.astype(np.float64)
        fields["batch_id"] = self.batch_id.copy()
        return Reading(self.machine_type, self.machines, ts_ms, fields, self._events)

    def _process(
        self, dt: float, held: np.ndarray, speed: np.ndarray, fx: GroupEffects
    ) -> dict[str, np.ndarray]:
        """Zones, drying, exhaust and gas for this tick, and the readings."""
        n, rng = len(self.machines), self.rng
        off = ~held & (self.phase == OFF)
        cold = off | held | ((self.phase == BROKEN) & _COLD_STOP[self.reason])
        target = np.where(cold[:, None], AMBIENT_C, self.sp)
        before = self.temp.mean(axis=1)
        tau = np.where(cold, 3 * self._tau_s, self._tau_s)[:, None]  # cools slower
        self.temp += (target - self.temp) * (1 - np.exp(-dt / tau)) + rng.normal(
            0, 0.1, (n, self.zones)
        )
        zones = self.temp + self._zone_bias
        for k, key in enumerate(self._zone_keys):
            zones[:, k] = fx.apply(key, zones[:, k])
        t_mean = zones.mean(axis=1)
        moving = speed > 0
        # Drying: the batch was set up to leave residual_nom; disturbances move it.
        nominal = np.maximum(self.sp.mean(axis=1) - 90, 5)
        dry = self.speed_set / np.maximum(speed, 1) * np.maximum(t_mean - 90, 5) / nominal
        dry *= np.clip(1 - 1.5 * (self.h - self._h_sp), 0.5, 1.5)  # humid air dries slower
        residual = self.moisture_in * (self.residual_nom / self.moisture_in) ** dry
        residual = fx.apply("residual_moisture_pct", residual)
        fabric_kg_h = speed * 60 * self.width_set / 100 * self.gsm / 1000
        evap = fabric_kg_h * np.maximum(self.moisture_in - residual, 0) / 100
        # Exhaust: the fan is driven to the humidity setpoint; a weak fan moves less air.
        want = np.where(moving, evap / (self._h_sp - AIR_H), 0.2 * self._air_max)
        fan = np.where(off, 0.0, np.clip(want / self._air_max * 100, 15, 100))
        air = self._air_max * fan / 100 * fx.apply("exhaust_air", np.ones(n))
        h = evap / np.maximum(air, 1.0) + AIR_H + rng.normal(0, 0.002, n)
        self.h = np.where(off, AIR_H, fx.apply("exhaust_humidity_kg_kg", h))
        air = np.where(moving & ~off, evap / np.maximum(self.h - AIR_H, 0.01), air)
        # Heat: evaporation, exhaust air, fabric, shell losses, warming the zones.
        warm = np.maximum(t_mean - AMBIENT_C, 0)
        heat_kw = (evap * LATENT_KJ_KG + (air * 1.01 + fabric_kg_h * 1.4) * warm) / 3600
        heat_kw += (
            self._shell_kw * warm / 150 + self._zone_kj_k * np.maximum(t_mean - before, 0) / dt
        )
        heat_kw = np.where(cold, 0.0, np.minimum(heat_kw, self._burner_kw))
        gas = fx.apply("gas_nm3h", heat_kw * 3600 / (GAS_KJ_NM3 * BURNER_EFF))
        self.oil_c += (np.where(cold, AMBIENT_C, self.sp.max(axis=1) + 20) - self.oil_c) * (
            1 - np.exp(-dt / 900)
        )
        circ = np.where(off, 0.0, np.where(moving, self._circ_pct, 60.0))
        kw = self._circ_kw * (circ / 100) ** 3 + self._exhaust_kw * (fan / 100) ** 3
        self.energy_kwh += (kw + self._drive_kw * speed / 60 + 2.0 * ~off) * dt / 3600
        return self._read(dt, zones, speed, residual, fan, circ, heat_kw, gas, off, fx)

    def _read(
        self,
        dt: float,
        zones: np.ndarray,
        speed: np.ndarray,
        residual: np.ndarray,
        fan: np.ndarray,
        circ: np.ndarray,
        heat_kw: np.ndarray,
        gas: np.ndarray,
        off: np.ndarray,
        fx: GroupEffects,
    ) -> dict[str, np.ndarray]:
        """Readings: fabric-side values are NaN while the fabric stands still."""
        n, z = len(self.machines), self.rng.standard_normal((6, len(self.machines)))
        phi = np.exp(-dt / 30)  # width error: slow AR(1), sd scaled by the chain's state
        sd = self._width_sd * fx.apply("width_noise", np.ones(n))
        self.width_err = phi * self.width_err + np.sqrt(1 - phi**2) * sd * z[0]
        moving = np.where(speed > 0, 1.0, np.nan)
        width = fx.apply("width_act_cm", self.width_set * (1 + self.width_err)) * moving
        fields = {key: zones[:, k] + 0.3 * z[1] for k, key in enumerate(self._zone_keys)}
        setting = np.where(off, np.nan, 1.0)
        fields |= {
            "speed_m_min": speed * (1 + 0.002 * z[2]),
            "width_set_cm": self.width_set * setting,
            "width_act_cm": width,
            "overfeed_pct": self.overfeed * setting,
            "padder_bar": (self.padder_bar + 0.05 * z[3]) * moving,
            "moisture_in_pct": (self.moisture_in + 0.5 * z[4]) * moving,
            "residual_moisture_pct": np.maximum(residual + 0.2 * z[5], 0.0) * moving,
            "exhaust_humidity_kg_kg": self.h * setting,
            "exhaust_fan_pct": fan,
            "circ_fan_pct": circ,
            "burner_pct": fx.apply("burner_pct", heat_kw / self._burner_kw * 100),
            "gas_nm3h": gas,
            "thermal_oil_c": np.where(self._oil, self.oil_c, np.nan),
            "gsm_act": self.gsm * self.width_set / width * (1 + 0.004 * z[1]),
            "energy_kwh_total": self.energy_kwh.copy(),
        }
        return fields

    def _emit_states(self, held: np.ndarray, maintenance: bool) -> None:
        """State events on every change of state or reason; stop events per episode."""
        off = STATES["PLANNED_MAINT"] if maintenance else STATES["OFF_NOPLAN"]
        state = np.where(held, STATES["BREAKDOWN"], PHASE_STATE[self.phase])
        state = np.where(~held & (self.phase == OFF), off, state)
        by_phase = np.where(
            self.phase >= CHANGEOVER, REASONS.index("CHANGEOVER") + self.phase - CHANGEOVER, 0
        )
        reason = np.where(self.reason >= 0, 1 + self.reason, by_phase)
        reason = np.where(held, len(REASONS) - 1, np.where(self.phase == OFF, 0, reason))
        self._emit_changes(state, reason, held, REASONS, len(REASONS) - 1)


def _weights() -> np.ndarray:
    w = np.array([a.weight for a in ARTICLES])
    return w / w.sum()


def _column(value: np.ndarray | float, n: int) -> np.ndarray:
    """A per-machine multiplier as a column of shape (n, 1)."""
    return np.broadcast_to(np.asarray(value, dtype=float), (n,))[:, None]
