"""Circular knitting machines: revolutions, fabric kg, yarn feed, stops by stop motion.

Numbers follow ``shared/domain/textile-telemetry.md`` §1.2 and §2 (E values are tuned
estimates). Per machine, drawn once: diameter, gauge and feeders (3-4 per inch), top
speed 25-35 rpm, drive power, cam heating, vibration baseline, oil-pulse interval,
its own yarn-stop rate (1-4 per run hour), needle-stop rate (1-3 per run day) and
doff size. Each article (:class:`KnitArticle`) sets loop length, yarn count and speed.

Fabric follows §1.2: kg per revolution = pi D G F l tex / 10^9 (D in inches, G needles
per inch, F feeders, l loop length in mm, tex in g/km), so kg/h at full speed is that
times rpm x 60, and efficiency losses come from the states. A roll is doffed when it
reaches its size (every 0.5-1.5 h at full speed, §2), a short ``ROLL_DOFF`` stop.

Every field is emitted every tick, including the 10-s ones of §1.2 (fabric kg, oil
pulses). Knitting has no stop counters in the contract: stops are events only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass

import numpy as np

from gateway.inputs.base import Reading
from millwatch.contract import MachineAddress
from simulators.model import GroupEffects
from simulators.states import StateMachine, StopClass, ramp_mean, ramp_speed

__all__ = ["DEFAULT_ARTICLES", "KnitArticle", "KnitGroup", "kg_per_rev"]


@dataclass(frozen=True)
class KnitArticle:
    """A knitted article: loop length, yarn count, speed and yarn-stop proneness."""

    name: str
    stitch_mm: float  # loop length l
    yarn_tex: float
    speed_share: float  # of the machine's top speed
    yarn_stop_mul: float  # on the machine's own yarn-stop rate
    tension_cn: float  # §1.2: 2-8 cN on instrumented feeders (E)


DEFAULT_ARTICLES: tuple[KnitArticle, ...] = (
    KnitArticle("sj-160", 2.7, 30.0, 1.00, 1.0, 4.0),
    KnitArticle("sj-140-fine", 2.5, 20.0, 1.00, 1.2, 3.0),
    KnitArticle("pique-200", 2.9, 37.0, 0.95, 0.9, 5.0),
    KnitArticle("rib-220", 3.1, 30.0, 0.90, 1.0, 5.5),
)

HOUR = 3600.0
YARN, NEEDLE, LINT, OTHER, DOFF, CHANGE, BREAK, WAIT = range(8)
RAMP_S = 3.0  # E: a circular machine takes a few seconds to come up to speed
DIAMETERS_IN = (26.0, 28.0, 30.0, 30.0, 32.0, 34.0)
GAUGES_NPI = (18.0, 20.0, 24.0, 24.0, 28.0)
YARN_PER_H = (1.0, 4.0)  # §2 simulator defaults
NEEDLE_PER_DAY = (1.0, 3.0)
DOFF_EVERY_H = (0.5, 1.5)
LINT_EVERY_H = 8.0  # E: a lint blow-down about once per shift
OTHER_PER_H = 0.25  # E: doors, take-down, oil, manual
CHANGE_EVERY_H = 14 * 24.0  # E: a needle change every couple of weeks of running
MTBF_H = (500.0, 2000.0)  # E
WAIT_EVERY_H = 48.0  # E

#: The machine's episodes in class-index order (yarn, needle, lint, other, doff, ...).
STOP_CLASSES: tuple[StopClass, ...] = (
    StopClass(
        "yarn",
        "STOP_PROCESS",
        ("YARN_IN", "YARN_OUT", "LYCRA"),
        (5, 4, 1),
        range_s=(60.0, 120.0),
        feeder=True,
    ),
    StopClass("needle", "STOP_PROCESS", ("NEEDLE", "HOLE"), (3, 1), range_s=(180.0, 600.0)),
    StopClass("lint", "STOP_PROCESS", ("LINT_CLEAN",), range_s=(300.0, 600.0)),
    StopClass(
        "other",
        "STOP_PROCESS",
        ("DOOR", "TAKEDOWN", "OIL", "MANUAL"),
        (3, 2, 1, 4),
        range_s=(60.0, 240.0),
    ),
    StopClass("doff", "STOP_PROCESS", ("ROLL_DOFF",), range_s=(120.0, 300.0)),
    StopClass("needle_change", "SETUP", ("NEEDLE",), range_s=(1 * HOUR, 3 * HOUR)),
    StopClass("breakdown", "BREAKDOWN", ("MECH", "ELEC"), (7, 3), 1.4 * HOUR, 0.6),
    StopClass("wait", "WAIT", ("NO_YARN", "NO_OPERATOR"), (3, 2), 900.0, 0.8),
)


def kg_per_rev(
    diameter_in: np.ndarray,
    gauge_npi: np.ndarray,
    feeders: np.ndarray,
    stitch_mm: np.ndarray,
    tex: np.ndarray,
) -> np.ndarray:
    """Fabric knitted per revolution (§1.2 [TT-cap] without the rpm, time and efficiency).

    >>> rate = kg_per_rev(np.array([30.0]), np.array([24.0]), np.array([96.0]),
    ...                   np.array([2.7]), np.array([30.0]))
    >>> round(float(rate[0] * 30 * 60 * 0.88), 1)  # spec: 30 in E24, 96 F, 30 rpm ~ 28 kg/h
    27.9
    """
    return np.pi * diameter_in * gauge_npi * feeders * stitch_mm * tex / 1e9


class KnitGroup:
    """All circular knitting machines of one factory, advanced together (``MachineGroup``).

    >>> from millwatch.contract import MachineAddress
    >>> machines = [MachineAddress("c1", "f01", "knit1", f"k{i:04d}") for i in range(2)]
    >>> group = KnitGroup(machines, np.random.default_rng(3))
    >>> reading = group.step(1_767_168_000_000, 1.0, True, False, GroupEffects(2))
    >>> reading.fields["state_code"].tolist(), sorted(reading.fields)[:3]
    ([1.0, 1.0], ['cam_temp_c', 'drive_power_kw', 'energy_kwh_total'])
    """

    machine_type = "knit_circular"
    EFFECT_KEYS = frozenset({"vib_rms_mm_s", "drive_power_kw", "cam_temp_c", "yarn_tension_cn"})
    STOP_CLASSES = frozenset({"yarn", "needle", "lint"})

    def __init__(
        self,
        machines: Sequence[MachineAddress],
        rng: np.random.Generator,
        articles: Sequence[KnitArticle] | None = None,
    ) -> None:
        self.machines, self.rng = list(machines), rng
        self.articles = tuple(articles or DEFAULT_ARTICLES)
        self.n = n = len(self.machines)
        self.diameter_in = rng.choice(DIAMETERS_IN, n)
        self.gauge_npi = rng.choice(GAUGES_NPI, n)
        self.feeders = np.round(self.diameter_in * rng.uniform(3.0, 4.0, n))
        self.article = rng.integers(0, len(self.articles), n)
        art = np.array([astuple(a)[1:] for a in self.articles])[self.article]
        self.stitch_mm, self.tex, share, yarn_mul, tension = art.T
        self.nominal = rng.uniform(25.0, 35.0, n) * share
        self.kg_rev = kg_per_rev(
            self.diameter_in, self.gauge_npi, self.feeders, self.stitch_mm, self.tex
        )
        needles = np.pi * self.diameter_in * self.gauge_npi
        self.feed_m_per_rev = needles * self.stitch_mm / 1000  # per feeder
        self.yarn_per_s = rng.uniform(*YARN_PER_H, n) * yarn_mul / HOUR
        self.needle_per_s = rng.uniform(*NEEDLE_PER_DAY, n) / (24 * HOUR)
        self.mtbf_s = rng.uniform(*MTBF_H, n) * HOUR
        self.doff_kg = self.kg_rev * self.nominal * 60 * rng.uniform(*DOFF_EVERY_H, n)
        self.roll_kg = self.doff_kg * rng.uniform(0.0, 1.0, n)
        self.tension_cn = tension * rng.uniform(0.9, 1.1, n)
        self.run_kw = rng.uniform(2.5, 5.5, n)  # §1.2 drive 2-6 kW (E)
        self.idle_kw = rng.uniform(0.2, 0.4, n)
        self.vib_base = rng.uniform(1.0, 2.5, n)  # §1.2 1-3 mm/s (E)
        self.ambient = rng.uniform(26.0, 30.0, n)
        self.cam_rise = rng.uniform(8.0, 18.0, n)  # §1.2 cams at 30-50 °C (E)
        self.cam_c = self.ambient + self.cam_rise
        self.oil_every_s = rng.uniform(20.0, 60.0, n)
        self.revs = rng.uniform(1e6, 5e7, n)
        # Totals start from a plausible history; only their differences matter.
        self.fabric_kg = self.revs * self.kg_rev
        self.oil = self.revs / self.nominal * 60 / self.oil_every_s
        self.energy = self.revs / self.nominal / 60 * self.run_kw
        self.states = StateMachine(n, STOP_CLASSES, rng, self.feeders)
        self._expected = np.zeros((n, len(STOP_CLASSES)))

    def _expected_stops(self, run_s: np.ndarray, fx: GroupEffects) -> np.ndarray:
        e = self._expected
        e[:, YARN] = run_s * self.yarn_per_s * fx.rate("yarn")
        e[:, NEEDLE] = run_s * self.needle_per_s * fx.rate("needle")
        e[:, LINT] = run_s / (LINT_EVERY_H * HOUR) * fx.rate("lint")
        e[:, OTHER] = run_s * OTHER_PER_H / HOUR * fx.rate("other")
        e[:, CHANGE] = run_s / (CHANGE_EVERY_H * HOUR)
        e[:, BREAK] = run_s / self.mtbf_s
        e[:, WAIT] = run_s / (WAIT_EVERY_H * HOUR)
        return e

    def step(
        self, ts_ms: int, dt: float, planned: bool, maintenance: bool, effects: GroupEffects
    ) -> Reading:
        """Advance every knitting machine by ``dt`` seconds and read them at ``ts_ms``."""
        sm, fx = self.states, effects
        ran = sm.running()
        run_s = np.where(ran, dt * ramp_mean(sm.run_age_s(ts_ms, dt), dt, RAMP_S), 0.0)
        revs = self.nominal / 60 * run_s
        kg = revs * self.kg_rev
        self.revs += revs
        self.fabric_kg += kg
        self.roll_kg += kg
        self.oil += run_s / self.oil_every_s
        trigger = np.where(ran & (self.roll_kg >= self.doff_kg), DOFF, -1)
        expected = self._expected_stops(run_s, fx)
        tick = sm.step(ts_ms, dt, expected, planned, maintenance, fx.held_down(), trigger)
        self.roll_kg[tick.started == DOFF] = 0.0
        mean_kw = self.idle_kw + (self.run_kw - self.idle_kw) * run_s / max(dt, 1e-9)
        self.energy += fx.apply("drive_power_kw", mean_kw) * dt / HOUR
        fields = self._fields(ts_ms, dt, fx)
        return Reading(self.machine_type, self.machines, ts_ms, fields, tick.events)

    def _fields(self, ts_ms: int, dt: float, fx: GroupEffects) -> dict[str, np.ndarray]:
        sm = self.states
        running = sm.running()
        share = np.where(running, ramp_speed(sm.age_s(ts_ms), RAMP_S), 0.0)
        noise = self.rng.standard_normal((5, self.n))
        rpm = self.nominal * share * (1 + 0.003 * noise[0])
        kw = (self.idle_kw + (self.run_kw - self.idle_kw) * share) * (1 + 0.02 * noise[1])
        tension = self.tension_cn * np.where(running, 1 + 0.05 * noise[2], 0.6)
        vib = np.where(running, self.vib_base * share**1.5, 0.06) * np.abs(1 + 0.05 * noise[3])
        cam = fx.apply("cam_temp_c", self.ambient + self.cam_rise * share)
        self.cam_c += (cam - self.cam_c) * -np.expm1(-dt / 1200)  # 20-min thermal lag
        return {
            "speed_rpm": rpm,
            "revs_total": np.floor(self.revs),
            "fabric_kg_total": self.fabric_kg.copy(),
            "yarn_feed_m_min": self.feed_m_per_rev * rpm,
            "yarn_tension_cn": fx.apply("yarn_tension_cn", tension),
            "drive_power_kw": fx.apply("drive_power_kw", kw),
            "cam_temp_c": self.cam_c + 0.1 * noise[4],
            "vib_rms_mm_s": fx.apply("vib_rms_mm_s", vib),
            "oil_pulses_total": np.floor(self.oil),
            "energy_kwh_total": self.energy.copy(),
            "state_code": sm.state.astype(np.float64),
        }
