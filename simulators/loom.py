"""Air-jet and rapier looms: picks, stops per 10^5 picks, beams, cloth rolls and drive signals.

Numbers follow ``shared/domain/textile-telemetry.md`` §1.1 and §2 (E values tuned here
say so). Per machine, drawn once: top speed, reed width, weft feeders, motor, vibration
baseline, thermal rise, air consumption, MTBF, and a spread of the style's stop rates.
Each style (:class:`LoomArticle`) sets picks/cm, the share of top speed and the stop
rates; on a style change the loom gets a new style from the group's list.

Stops are drawn per pick, so stops per 10^5 picks are the style's rates whatever the
speed. Warp breaks follow the beam: high just after a beam change (preparation
faults) and rising as it empties (tension drift). The beam's diameter falls with the
square root of the warp left on it; at the core the loom stops with ``BEAM_OUT`` and a
``SETUP`` (a beam change, or now and then a style change) brings a full beam. The
cloth roll grows with the picks until a ``DOFF`` stop cuts it.

Every field is emitted every tick, including the 10-s ones of §1.1 (beam diameter,
cloth roll, temperatures, energy); the gateway may thin them. Rapier looms have no air
and weft-arrival fields. ``other_stops_total`` counts ``STOP_PROCESS`` stops that are
neither warp nor weft, doffs included; beam and style changes, breakdowns and waits are
not stops of any counter (they are ``SETUP``, ``BREAKDOWN`` and ``WAIT`` episodes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass

import numpy as np

from gateway.inputs.base import Reading
from millwatch.contract import MachineAddress
from simulators.model import GroupEffects
from simulators.states import StateMachine, StopClass, ramp_mean, ramp_speed

__all__ = ["DEFAULT_ARTICLES", "LoomArticle", "LoomGroup"]


@dataclass(frozen=True)
class LoomArticle:
    """A woven style: density, speed and its warp/weft/other stops per 10^5 picks."""

    name: str
    picks_per_cm: float
    speed_share: float  # of the loom's top speed
    warp_per_1e5: float
    weft_per_1e5: float
    other_per_1e5: float
    tension_kn: float  # whole warp sheet, §1.1: 1-6 kN by style (E)


#: Cotton styles; the air-jet ones average the spec's default 3/6/1 stops per 10^5 picks.
DEFAULT_ARTICLES: dict[str, tuple[LoomArticle, ...]] = {
    "loom_airjet": (
        LoomArticle("aj-poplin-133", 28.0, 0.95, 3.0, 6.0, 1.0, 3.0),
        LoomArticle("aj-sheeting-ct", 24.0, 1.00, 2.5, 6.5, 1.0, 2.5),
        LoomArticle("aj-twill-drill", 22.0, 0.85, 3.5, 5.5, 1.0, 4.5),
    ),
    "loom_rapier": (
        LoomArticle("rp-shirting-yd", 30.0, 0.90, 4.0, 8.0, 1.2, 2.5),
        LoomArticle("rp-dobby", 26.0, 0.85, 4.5, 7.0, 1.2, 3.0),
        LoomArticle("rp-upholstery", 18.0, 0.80, 3.5, 6.5, 1.5, 5.0),
    ),
}


@dataclass(frozen=True)
class _LoomKind:
    rpm: tuple[float, float]
    widths_cm: tuple[float, ...]
    feeders: tuple[int, ...]
    rate_bounds: tuple[tuple[float, float], ...]  # warp, weft, other per 10^5 picks
    weft_reasons: dict[str, float]
    other_reasons: dict[str, float]
    air: bool


_KINDS = {
    "loom_airjet": _LoomKind(
        (500.0, 1000.0),
        (190.0, 220.0, 250.0, 280.0, 340.0),
        (2, 4, 4, 6, 8),
        ((1.0, 8.0), (2.0, 15.0), (0.3, 3.0)),
        {"WEFT_SHORT": 35, "WEFT_LONG": 15, "WEFT_BROKEN": 25, "WEFT_SUPPLY": 15, "WEFT_ACCUM": 10},
        {"MANUAL": 50, "SELVEDGE": 35, "AIR_LOW": 15},
        air=True,
    ),
    "loom_rapier": _LoomKind(
        (300.0, 600.0),
        (190.0, 230.0, 280.0, 340.0),
        (4, 6, 8, 12),
        ((1.5, 10.0), (2.0, 18.0), (0.4, 4.0)),  # E: rapiers break a bit more
        {"WEFT_BROKEN": 45, "WEFT_SHORT": 25, "WEFT_SUPPLY": 20, "WEFT_ACCUM": 10},
        {"MANUAL": 60, "SELVEDGE": 40},
        air=False,
    ),
}

HOUR = 3600.0
WARP, WEFT, OTHER, DOFF, BEAM, STYLE, BREAK, WAIT = range(8)
RAMP_S = 1.0  # §1.1: speed ramps up over ~1 s after a restart (E)
CRIMP = 0.08  # warp length per cloth length - 1 (E)
BEAM_DAYS = (3.0, 10.0)  # §2: a beam change every 3-10 days
STYLE_SHARE = 0.2  # E: share of beam-outs that are also a style change
ROLL_M = (500.0, 1500.0)  # §1.1 cloth roll length (E)
MTBF_H = (300.0, 1500.0)  # §2 loom breakdowns, run hours
WAIT_EVERY_H = 48.0  # E: waits for a beam, weft or an operator are occasional
CORE_MM, FULL_MM = 180.0, (800.0, 1000.0)


def _weights(reasons: dict[str, float]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    return tuple(reasons), tuple(reasons.values())


def stop_classes(machine_type: str) -> list[StopClass]:
    """The loom's episodes in class-index order (warp, weft, other, doff, beam, ...).

    Repair medians are the spec's 2.5 / 0.7 / 3 min for warp / weft / other; setups
    and breakdowns take §2's 1-4 h (beam), 4-8 h (style) and an MTTR of 0.5-4 h.
    """
    kind = _KINDS[machine_type]
    return [
        StopClass("warp", "STOP_PROCESS", ("WARP",), median_s=150.0),
        StopClass("weft", "STOP_PROCESS", *_weights(kind.weft_reasons), 42.0, feeder=True),
        StopClass("other", "STOP_PROCESS", *_weights(kind.other_reasons), 180.0),
        StopClass("doff", "STOP_PROCESS", ("DOFF",), range_s=(180.0, 420.0)),
        StopClass("beam", "SETUP", ("BEAM_OUT",), range_s=(1 * HOUR, 4 * HOUR)),
        StopClass("style", "SETUP", ("STYLE_CHANGE",), range_s=(4 * HOUR, 8 * HOUR)),
        StopClass("breakdown", "BREAKDOWN", ("MECH", "ELEC"), (7, 3), 1.4 * HOUR, 0.6),
        StopClass("wait", "WAIT", ("NO_OPERATOR", "NO_BEAM", "NO_YARN"), (5, 2, 3), 900.0, 0.8),
    ]


class LoomGroup:
    """All looms of one type in one factory, advanced together (a ``MachineGroup``).

    >>> from millwatch.contract import MachineAddress
    >>> looms = [MachineAddress("c1", "f01", "weave1", f"l{i:04d}") for i in range(3)]
    >>> group = LoomGroup("loom_airjet", looms, np.random.default_rng(7))
    >>> reading = group.step(1_767_168_000_000, 1.0, True, False, GroupEffects(3))
    >>> reading.fields["state_code"].tolist(), [e["code"] for _, e in reading.events]
    ([1.0, 1.0, 1.0], ['RUN', 'RUN', 'RUN'])
    >>> bool((reading.fields["speed_rpm"] > 400).all())
    True
    """

    STOP_CLASSES = frozenset({"warp", "weft", "other"})

    def __init__(
        self,
        machine_type: str,
        machines: Sequence[MachineAddress],
        rng: np.random.Generator,
        articles: Sequence[LoomArticle] | None = None,
    ) -> None:
        if machine_type not in _KINDS:
            raise ValueError(f"machine_type must be one of {sorted(_KINDS)}")
        self.machine_type, self.machines, self.rng = machine_type, list(machines), rng
        self.kind = kind = _KINDS[machine_type]
        self.articles = tuple(articles or DEFAULT_ARTICLES[machine_type])
        keys = {"vib_rms_mm_s", "vib_peak_mm_s", "bearing_temp_c", "motor_temp_c"}
        keys |= {"motor_current_a", "motor_power_kw", "warp_tension_kn"}
        if kind.air:
            keys |= {"air_flow_nm3h", "air_supply_bar", "weft_arrival_deg", "weft_arrival_sd"}
        self.EFFECT_KEYS = frozenset(keys)
        self.n = n = len(self.machines)
        self._draw_machines(n, rng)
        self.states = StateMachine(n, stop_classes(machine_type), rng, self.feeders)
        self._expected = np.zeros((n, len(self.states.classes)))

    def _draw_machines(self, n: int, rng: np.random.Generator) -> None:
        kind = self.kind
        self.rpm_top = rng.uniform(*kind.rpm, n)
        self.width_m = rng.choice(kind.widths_cm, n) / 100
        self.feeders = rng.choice(kind.feeders, n).astype(np.float64)
        self.rate_spread = rng.lognormal(-0.045, 0.3, (n, 3))  # mean 1: rates stay the style's
        self.article = rng.integers(0, len(self.articles), n)
        self.picks_cm, self.nominal, self.tension_kn = np.empty((3, n))
        self.rates = np.empty((n, 3))
        self._apply_articles(np.arange(n))
        # Drive: §1.1 modern wide looms 3-7 kW; idle draw when stopped (E).
        self.motor_kw = (1.2 + 2.0 * self.width_m * self.rpm_top / 1000) * rng.uniform(0.9, 1.1, n)
        self.run_kw = self.motor_kw * rng.uniform(0.65, 0.85, n)
        self.idle_kw = rng.uniform(0.3, 0.5, n)
        self.vib_base = rng.uniform(1.0, 2.5, n)  # §1.1 healthy 1-3 mm/s
        self.crest = rng.uniform(3.5, 5.0, n)  # beat-up is impulsive
        self.ambient = rng.uniform(27.0, 31.0, n)
        self.bearing_rise = rng.uniform(12.0, 28.0, n)  # ambient +10-35 °C
        self.motor_rise = rng.uniform(18.0, 32.0, n)
        self.bearing_c = self.ambient + self.bearing_rise
        self.motor_c = self.ambient + self.motor_rise
        self.tension_spread = rng.uniform(0.9, 1.1, n)
        self.air_k = rng.uniform(0.85, 1.15, n)  # weft count, nozzle set
        self.air_static = rng.uniform(5.9, 6.6, n)  # §1.1 5.5-7 bar at the loom
        self.arrival_mean = rng.uniform(225.0, 255.0, n)  # §1.1 mean 220-260 °
        self.arrival_sd = rng.uniform(2.0, 6.0, n)
        self.mtbf_s = rng.uniform(*MTBF_H, n) * HOUR
        self.full_mm = rng.uniform(*FULL_MM, n)
        self.roll_m = rng.uniform(*ROLL_M, n)
        self.beam_m = self._beam_length(np.arange(n))
        self.beam_left = self.beam_m * rng.uniform(0.02, 1.0, n)
        self.cloth_m = self.roll_m * rng.uniform(0.0, 1.0, n)
        self.picks = rng.uniform(1e7, 4e8, n)
        # Counters start from a plausible history; only their differences matter.
        self.counter_base = np.floor(self.picks[:, None] * self.rates / 1e5)
        self.energy = self.picks / self.nominal * self.run_kw / 60

    def _apply_articles(self, idx: np.ndarray) -> None:
        # Columns: picks/cm, speed share, warp, weft, other, tension (the fields after name).
        table = np.array([astuple(a)[1:] for a in self.articles])[self.article[idx]]
        self.picks_cm[idx] = table[:, 0]
        self.nominal[idx] = self.rpm_top[idx] * table[:, 1]
        low, high = np.array(self.kind.rate_bounds).T
        self.rates[idx] = np.clip(table[:, 2:5] * self.rate_spread[idx], low, high)
        self.tension_kn[idx] = table[:, 5]

    def _beam_length(self, idx: np.ndarray) -> np.ndarray:
        """Warp on a full beam: enough for 3-10 days at a typical 85 % efficiency."""
        days = self.rng.uniform(*BEAM_DAYS, idx.size)
        picks = days * 24 * 60 * self.nominal[idx] * 0.85
        return picks / (self.picks_cm[idx] * 100) * (1 + CRIMP)

    def _warp_beam_factor(self) -> np.ndarray:
        """Warp-break multiplier along the beam; 1 on average over a whole beam."""
        used = 1 - np.clip(self.beam_left / self.beam_m, 0.0, 1.0)
        return (1 + np.exp(-used / 0.03) + 0.8 * used**2) / 1.2967

    def _expected_stops(self, picks: np.ndarray, run_s: np.ndarray, fx: GroupEffects) -> np.ndarray:
        e = self._expected
        per_pick = picks / 1e5
        e[:, WARP] = per_pick * self.rates[:, 0] * self._warp_beam_factor() * fx.rate("warp")
        e[:, WEFT] = per_pick * self.rates[:, 1] * fx.rate("weft")
        e[:, OTHER] = per_pick * self.rates[:, 2] * fx.rate("other")
        e[:, BREAK] = run_s / self.mtbf_s
        e[:, WAIT] = run_s / (WAIT_EVERY_H * HOUR)
        return e

    def _triggers(self, ran: np.ndarray) -> np.ndarray:
        trigger = np.where(ran & (self.cloth_m >= self.roll_m), DOFF, -1)
        out = np.flatnonzero(ran & (self.beam_left <= 0))
        if out.size:
            style = self.rng.random(out.size) < STYLE_SHARE
            trigger[out] = np.where(style, STYLE, BEAM)
        return trigger

    def _after_transitions(self, started: np.ndarray, completed: np.ndarray) -> None:
        self.cloth_m[started == DOFF] = 0.0  # the roll is cut when the doff starts
        restyled = np.flatnonzero(completed == STYLE)
        if restyled.size:
            self.article[restyled] = self.rng.integers(0, len(self.articles), restyled.size)
            self._apply_articles(restyled)
        rebeamed = np.flatnonzero((completed == BEAM) | (completed == STYLE))
        if rebeamed.size:
            self.beam_m[rebeamed] = self._beam_length(rebeamed)
            self.beam_left[rebeamed] = self.beam_m[rebeamed]

    def step(
        self, ts_ms: int, dt: float, planned: bool, maintenance: bool, effects: GroupEffects
    ) -> Reading:
        """Advance every loom by ``dt`` seconds and read them at ``ts_ms``."""
        sm, fx = self.states, effects
        ran = sm.running()
        run_s = np.where(ran, dt * ramp_mean(sm.run_age_s(ts_ms, dt), dt, RAMP_S), 0.0)
        picks = self.nominal / 60 * run_s
        cloth = picks / (self.picks_cm * 100)
        self.picks += picks
        self.cloth_m += cloth
        self.beam_left -= cloth * (1 + CRIMP)
        expected = self._expected_stops(picks, run_s, fx)
        tick = sm.step(
            ts_ms, dt, expected, planned, maintenance, fx.held_down(), self._triggers(ran)
        )
        self._after_transitions(tick.started, tick.completed)
        mean_kw = self.idle_kw + (self.run_kw - self.idle_kw) * run_s / max(dt, 1e-9)
        self.energy += fx.apply("motor_power_kw", mean_kw) * dt / HOUR
        return Reading(
            self.machine_type, self.machines, ts_ms, self._fields(ts_ms, dt, fx), tick.events
        )

    def _fields(self, ts_ms: int, dt: float, fx: GroupEffects) -> dict[str, np.ndarray]:
        sm, n = self.states, self.n
        running = sm.running()
        share = np.where(running, ramp_speed(sm.age_s(ts_ms), RAMP_S), 0.0)
        noise = self.rng.standard_normal((11, n))
        rpm = self.nominal * share * (1 + 0.002 * noise[0])
        kw = (self.idle_kw + (self.run_kw - self.idle_kw) * share) * (1 + 0.015 * noise[1])
        amps = (kw * 1.7 + 0.3) * (1 + 0.01 * noise[2])  # 400 V, cos φ 0.85
        base = np.where(running, self.vib_base * share**1.5, 0.08)  # stopped: neighbours
        rms = base * np.abs(1 + 0.05 * noise[3])
        peak = rms * np.where(running, self.crest, 2.0) * np.abs(1 + 0.06 * noise[4])
        self._warm_up(share, dt, fx)
        used = 1 - np.clip(self.beam_left / self.beam_m, 0.0, 1.0)
        tension = self.tension_kn * self.tension_spread * (1 + 0.03 * used)
        tension *= np.where(running, 1 + 0.007 * noise[5], 0.9 + 0.004 * noise[5])
        left = np.clip(self.beam_left / self.beam_m, 0.0, 1.0)
        fields = {
            "speed_rpm": rpm,
            "picks_total": np.floor(self.picks),
            "warp_stops_total": self.counter_base[:, 0] + sm.counts[:, WARP],
            "weft_stops_total": self.counter_base[:, 1] + sm.counts[:, WEFT],
            "other_stops_total": self.counter_base[:, 2] + sm.counts[:, OTHER] + sm.counts[:, DOFF],
            "warp_tension_kn": fx.apply("warp_tension_kn", tension),
            "beam_diameter_mm": np.sqrt(CORE_MM**2 + (self.full_mm**2 - CORE_MM**2) * left),
            "cloth_roll_m": self.cloth_m.copy(),
            "motor_power_kw": fx.apply("motor_power_kw", kw),
            "motor_current_a": fx.apply("motor_current_a", amps),
            "vib_rms_mm_s": fx.apply("vib_rms_mm_s", rms),
            "vib_peak_mm_s": fx.apply("vib_peak_mm_s", peak),
            "bearing_temp_c": self.bearing_c + 0.1 * noise[6],
            "motor_temp_c": self.motor_c + 0.1 * noise[7],
            "energy_kwh_total": self.energy.copy(),
            "state_code": sm.state.astype(np.float64),
        }
        if self.kind.air:
            fields |= self._air_fields(running, share, noise[8:], fx)
        return fields

    def _warm_up(self, share: np.ndarray, dt: float, fx: GroupEffects) -> None:
        """Bearing and motor temperatures follow the load with 20- and 30-min lags."""
        bearing = fx.apply("bearing_temp_c", self.ambient + self.bearing_rise * share**2)
        motor = fx.apply("motor_temp_c", self.ambient + self.motor_rise * share)
        self.bearing_c += (bearing - self.bearing_c) * -np.expm1(-dt / 1200)
        self.motor_c += (motor - self.motor_c) * -np.expm1(-dt / 1800)

    def _air_fields(
        self,
        running: np.ndarray,
        share: np.ndarray,
        noise: np.ndarray,
        fx: GroupEffects,
    ) -> dict[str, np.ndarray]:
        """Air-jet only: flow grows with speed x width; arrival is the 1-s mean of picks.

        Flow is 12 Nm³/h of auxiliary air plus 24 per (m of reed x 1,000 picks/min),
        E, tuned to §1.1's 30-90 Nm³/h for 190-340 cm looms; 2 Nm³/h when stopped.
        """
        flow = np.where(running, (12 + 24 * self.width_m * self.nominal * share / 1000), 2.0)
        flow *= self.air_k * (1 + 0.01 * noise[0])
        bar = self.air_static - 0.15 * share + 0.02 * noise[1]
        picks_per_s = np.maximum(self.nominal * share / 60, 1.0)
        sd = fx.apply("weft_arrival_sd", self.arrival_sd) / np.sqrt(picks_per_s)
        arrival = np.where(running, self.arrival_mean + sd * noise[2], np.nan)
        return {
            "air_supply_bar": fx.apply("air_supply_bar", bar),
            "air_flow_nm3h": fx.apply("air_flow_nm3h", flow),
            "weft_arrival_deg": fx.apply("weft_arrival_deg", arrival),
        }
