"""Batch jet dyeing machines running recipe programmes (domain spec §1.3, §2, §4).

Each machine loads a batch (``SETUP``), runs its recipe's steps from
:mod:`simulators.programmes` and unloads; between batches it may wait for work or be
washed out. The physics is kept small but causal, so fault signatures emerge rather
than being painted on: the liquor temperature follows the setpoint through a
heat exchanger whose power is limited (a fouled one cannot keep the ramp, so the
tracking error grows and ``HEAT`` runs long); pressure is the vapour pressure of the
bath; dosing moves pH and conductivity toward the recipe's targets and each fresh
bath dilutes what the fabric carried over; the water meter counts every bath and the
steam meter the heat delivered (mass x cp x dT plus losses, over latent heat).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gateway.inputs.base import Reading
from millwatch.contract import STATES, MachineAddress
from simulators.model import GroupEffects
from simulators.programmes import (
    DEFAULT_RECIPES,
    FILL,
    KEEP,
    RINSE,
    STEP_CODES,
    Recipe,
    bath_filled,
    bath_level,
    compile_recipes,
)
from simulators.states import EpisodeEvents

__all__ = ["DyeGroup", "vapour_pressure_bar_g"]

RUN, STOP, DOWN = STATES["RUN"], STATES["STOP_PROCESS"], STATES["BREAKDOWN"]
SETUP, WAIT = STATES["SETUP"], STATES["WAIT"]
STEPPING, WAITING, LOADING, OFF = 0, 1, 2, 3  # what a machine does between interruptions
HEAT, HOLD, ADD, UNLOAD, CLEAN = (
    STEP_CODES.index(c) for c in ("HEAT", "HOLD", "ADD", "UNLOAD", "CLEAN")
)
WATER_CP, LATENT_KJ_KG, STEAM_OVERHEAD, AMBIENT_C = 4.19, 2100.0, 1.05, 30.0
TEMP_TIMEOUT_S = 4 * 3600.0  # an operator moves on a ramp that never gets there
ALARMS = ("TEMP_DEV", "STEAM_LOW", "LEVEL_LOW", "PRESSURE_HIGH")
STOP_REASONS = ("PUMP_TRIP", "LID_OPEN", "LEVEL_LOW")  # operator stops, alarm codes too
#: Reasons on state events (index 0: none); ``MECH`` is a fault's hold, as in states.py.
REASONS = (None, *STOP_REASONS, "BATCH", "LOAD", "UNLOAD", "CLEAN", "MECH")
#: Fault hooks: model knobs, then fields a fault scales or shifts (``GroupEffects``).
KNOBS = ("heating_gradient", "overshoot_c", "flow_noise", "current_noise", "dosing_efficiency")
FIELD_EFFECTS = ("flow_m3h", "nozzle_bar", "pump_current_a", "reel_speed_m_min", "cycle_time_s")
FIELD_EFFECTS += ("ph", "conductivity_ms_cm", "level_l")


def vapour_pressure_bar_g(temp_c: np.ndarray) -> np.ndarray:
    """Gauge pressure of a sealed water bath (Antoine equation), 0 below boiling.

    >>> round(float(vapour_pressure_bar_g(np.array([130.0]))[0]), 2)
    1.67
    """
    low = temp_c < 100
    a = np.where(low, 8.07131, 8.14019)
    b = np.where(low, 1730.63, 1810.94)
    c = np.where(low, 233.426, 244.485)
    p_abs = 10 ** (a - b / (c + temp_c)) * 1.01325 / 760
    return np.clip(p_abs - 1.01325, 0.0, None)


class DyeGroup(EpisodeEvents):
    """Jet dyeing machines (``dye_jet``) of one dyehouse, advanced together.

    Per machine, drawn once: capacity (10 to 1,500 kg), liquor ratio (around 1:7.5,
    clipped to 1:4..1:20), heat-exchanger and cooling power, pump, reel speed (200 to
    400 m/min) and its base rate of shade additions. Per batch: recipe (by weight),
    load (85 to 100 % of capacity) and id ``<machine>-<number>``. A ``SAMPLE`` leads to
    the recipe's ``ADD`` block with the machine's base probability, raised a lot when
    the batch's temperature tracking error exceeded 3 °C or a dosing missed its target.
    ``EFFECT_KEYS`` lists the fault hooks, ``STOP_CLASSES`` the stop rates a fault scales.
    Knobs: ``heating_gradient`` scales the exchanger's power (a fouled one saturates and
    falls behind near the top of a ramp, where the steam-side ΔT is smallest);
    ``overshoot_c`` bumps the liquor at the start of ``HOLD``; ``flow_noise`` and
    ``current_noise`` add relative noise sd; ``dosing_efficiency`` scales how far dosing
    gets. Field effects act on readings; ``cycle_time_s`` is derived from the reel speed
    after its effect, and ``LEVEL_LOW`` checks the level after its effect.

    Examples
    --------
    >>> from simulators.model import GroupEffects
    >>> machines = [MachineAddress("c1", "f01", "wet1", f"d{i:04d}") for i in range(3)]
    >>> group = DyeGroup(machines, np.random.default_rng(1))
    >>> reading = group.step(1_767_168_000_000, 5.0, True, False, GroupEffects(3))
    >>> reading.machine_type, reading.fields["liquor_temp_c"].shape
    ('dye_jet', (3,))
    >>> sorted({record["kind"] for _, record in reading.events})
    ['state', 'step']
    """

    machine_type = "dye_jet"
    STOP_CLASSES = frozenset({"process"})
    EFFECT_KEYS = frozenset((*KNOBS, *FIELD_EFFECTS))
    CAPACITIES_KG = (10, 25, 50, 100, 250, 500, 750, 1000, 1500)
    CAPACITY_SHARES = (0.02, 0.03, 0.05, 0.1, 0.2, 0.25, 0.15, 0.13, 0.07)
    PROCESS_STOPS_PER_H = 0.03  # pump trip, lid, level: about one per 5 batches (E)
    STOP_REASONS = STOP_REASONS
    STOP_MEDIAN_S = 480.0
    P_WAIT, WAIT_MEDIAN_S, LOAD_MIN = 0.15, 1800.0, (15.0, 30.0)

    def __init__(
        self,
        machines: Sequence[MachineAddress],
        rng: np.random.Generator,
        recipes: Sequence[Recipe] | None = None,
    ) -> None:
        self.machines = list(machines)
        self.rng = rng
        self.table = compile_recipes(tuple(recipes) if recipes else DEFAULT_RECIPES)
        n, t = len(self.machines), self.table
        weights = np.array([r.weight for r in t.recipes])
        self._weights = weights / weights.sum()
        self._code_names = t.code_names
        self._recipe_names = np.array([r.recipe_id for r in t.recipes], dtype=object)
        self._retention = np.array([r.retention_l_kg for r in t.recipes])
        self._cp = np.array([r.fabric_cp for r in t.recipes])
        self._draw_machines(n)
        # Batch and programme state, one entry per machine.
        self.batch_no = rng.integers(1, 5000, n)
        self.batch_id = np.full(n, None, dtype=object)
        self.has_batch, self.dose_missed = np.zeros((2, n), dtype=bool)
        self.phase, self.row, self.recipe, self.step_no, self.adds, self.stop_reason = np.zeros(
            (6, n), dtype=int
        )
        self.batch_kg, self.elapsed, self.duration, self.target, self.grad = np.zeros((5, n))
        self.direction, self.cond_add, self.ph0, self.cond0 = np.zeros((4, n))
        self.worst_error_c, self.stop_left = np.zeros((2, n))
        self.ph_target = np.full(n, np.nan)
        self.temp, self.sp = np.full((2, n), AMBIENT_C)
        self.ph, self.cond = np.full(n, 7.0), self._water_ms.copy()
        self.water_l = rng.uniform(1e5, 1e7, n)  # meters of machines with a history
        self.steam_kg = self.water_l * rng.uniform(0.03, 0.05, n)
        self.energy_kwh = self.water_l * rng.uniform(0.002, 0.004, n)
        self.state = np.full(n, -1)
        self._reason, self._episode = np.zeros((2, n), dtype=int)
        self.since_ms = np.zeros(n, dtype=np.int64)
        self._held = np.zeros(n, dtype=bool)
        self._dev_s, self._sat_s = np.zeros((2, n))
        self._alarm_on = {k: np.zeros(n, dtype=bool) for k in ALARMS}
        self._saturated = np.zeros(n, dtype=bool)
        self._ts, self._events = 0, list[tuple[int, dict[str, Any]]]()
        self._start_mid_programme()

    def _draw_machines(self, n: int) -> None:
        """Per-machine constants, drawn once (capacities, heat exchanger, pump, reel)."""
        u = self.rng.uniform
        self.capacity_kg = self.rng.choice(self.CAPACITIES_KG, n, p=self.CAPACITY_SHARES) * 1.0
        self.liquor_ratio = np.clip(np.exp(self.rng.normal(np.log(7.5), 0.25, n)), 4.0, 20.0)
        self._steel = 1.5 * self.capacity_kg  # kJ/K of vessel, heat exchanger, pipes
        c_nom = self.capacity_kg * (self.liquor_ratio * WATER_CP + 1.3) + self._steel
        # Heat exchanger sized for the programme (full bath): 3.0-3.4 °C/min at 75 °C,
        # 1.3-1.5 at 130 °C, as steam-to-liquor ΔT shrinks; kW per °C/min is c_nom / 60.
        self._heat_kw = c_nom * u(3.0, 3.4, n) / 60
        self._heat_drop = 1 - c_nom * u(1.3, 1.5, n) / 60 / self._heat_kw  # share lost at 130
        self._cool_kw = c_nom * u(4.5, 6.0, n) / 60
        self._ua = 0.015 * self._heat_kw / 100  # 1.5 % of the heater lost at 130 °C
        self._tau = u(60, 120, n)
        self._flow_nom = np.maximum(self.capacity_kg * u(0.3, 0.45, n), 3.0)
        self._nozzle_nom = u(1.2, 2.5, n)
        self._pump_kw = self.capacity_kg * u(0.03, 0.05, n) + 1.0
        self._reel_nom = u(200, 400, n)
        self._rope_m = self._reel_nom * u(55, 65, n) / 60  # one circuit in about a minute
        self._add_base = u(0.10, 0.20, n)
        self._p_alarm = u(2.4, 2.6, n)
        self._water_ms = u(0.2, 0.6, n)

    # -- programme: only the few machines that change step this tick pass here -------

    def _start_mid_programme(self) -> None:
        """Put every machine at a random step of a first batch, temperature to match."""
        t = self.table
        for i in range(len(self.machines)):
            self._new_batch(i)
            r = int(t.first_row[self.recipe[i]])
            k = int(self.rng.integers(0, len(t.recipes[self.recipe[i]].steps)))
            self.temp[i], self.step_no[i] = t.entry_c[r + k], k
            self._enter(i, r + k)
        self._events.clear()  # announced on the first tick

    def _new_batch(self, i: int) -> None:
        self.batch_no[i] += 1
        self.batch_id[i] = f"{self.machines[i].machine}-{self.batch_no[i]:06d}"
        self.recipe[i] = self.rng.choice(len(self._weights), p=self._weights)
        self.batch_kg[i] = self.capacity_kg[i] * self.rng.uniform(0.85, 1.0)
        self.has_batch[i] = True
        self.step_no[i] = self.adds[i] = 0
        self.worst_error_c[i], self.dose_missed[i] = 0.0, False

    def _enter(self, i: int, r: int) -> None:
        """Start row ``r`` on machine ``i``: draw its targets, dilute on a fresh bath."""
        t, rng = self.table, self.rng
        if self.phase[i] != STEPPING or not t.control[self.row[i]]:
            self.sp[i] = self.temp[i]  # the controller takes over from the actual
        self.phase[i], self.row[i], self.elapsed[i] = STEPPING, r, 0.0
        keep = np.isnan(t.target_lo[r])
        self.target[i] = self.sp[i] if keep else rng.uniform(t.target_lo[r], t.target_hi[r])
        self.direction[i] = np.sign(self.target[i] - self.sp[i])
        minutes = rng.uniform(t.minutes_lo[r], t.minutes_hi[r])
        self.grad[i], self.duration[i] = 0.0, 60 * minutes
        if t.until_temp[r]:  # a ramp at a gradient, or a COOL over a given time
            ramp = abs(self.target[i] - self.sp[i]) / max(minutes, 1.0)
            self.grad[i] = (
                ramp if np.isnan(t.grad_lo[r]) else rng.uniform(t.grad_lo[r], t.grad_hi[r])
            )
            self.duration[i] = TEMP_TIMEOUT_S
        if t.bath[r] in (FILL, RINSE):
            ret = self._retention[self.recipe[i]]
            carry = ret / (ret + self.liquor_ratio[i])
            self.ph[i] = 7.2 + (self.ph[i] - 7.2) * carry
            self.cond[i] = self.cond[i] * carry + self._water_ms[i]
        self.ph0[i], self.cond0[i] = self.ph[i], self.cond[i]
        has_ph = not np.isnan(t.ph_lo[r])
        self.ph_target[i] = rng.uniform(t.ph_lo[r], t.ph_hi[r]) if has_ph else np.nan
        self.cond_add[i] = rng.uniform(t.cond_lo[r], t.cond_hi[r])
        self.step_no[i] += 1
        self.adds[i] += t.code_idx[r] == ADD
        self._emit(i, "step", t.codes[t.code_idx[r]])

    def _emit(self, i: int, kind: str, code: str, **extra: Any) -> None:
        rec: dict[str, Any] = {"ts": self._ts, "kind": kind, "code": code, **extra}
        if self.has_batch[i]:
            rec["batch_id"] = self.batch_id[i]
        if self.phase[i] == STEPPING and self.row[i] > 0:
            rec["step_no"] = int(self.step_no[i])
        self._events.append((i, rec))

    def _finish(self, i: int, planned: bool) -> None:
        """Machine ``i`` completed its step or phase: decide what comes next."""
        t, r, rng = self.table, int(self.row[i]), self.rng
        if self.phase[i] == WAITING:
            self._load(i, planned)
        elif self.phase[i] == LOADING:
            self._enter(i, int(t.first_row[self.recipe[i]]))
        elif t.is_sample[r]:
            bad = (self.worst_error_c[i] > 3.0) + self.dose_missed[i]
            p = self._add_base[i] + t.recipes[self.recipe[i]].add_bias + 0.5 * bad
            p *= 0.3 if self.adds[i] else 1.0
            self._enter(i, int(t.add_row[r] if rng.random() < p else t.next_row[r]))
        elif t.next_row[r] >= 0:
            ph_off = abs(self.ph[i] - self.ph_target[i]) > 0.5  # False without a pH target
            if ph_off or self.cond[i] - self.cond0[i] < 0.75 * self.cond_add[i]:
                self.dose_missed[i] = True
                self._emit(i, "alarm", "DOSING_FAULT")
            self._enter(i, int(t.next_row[r]))
        elif r != t.clean_row and rng.random() < t.recipes[self.recipe[i]].clean_p:
            self._enter(i, t.clean_row)
        else:
            self.has_batch[i], self.row[i] = False, 0
            if planned and rng.random() < self.P_WAIT:
                self.phase[i], self.elapsed[i] = WAITING, 0.0
                self._episode[i] = REASONS.index("BATCH")
                self.duration[i] = self.WAIT_MEDIAN_S * rng.lognormal(0, 0.8)
            else:
                self._load(i, planned)

    def _load(self, i: int, planned: bool) -> None:
        self.row[i], self.elapsed[i] = 0, 0.0
        if not planned:
            self.phase[i], self.has_batch[i] = OFF, False
            return
        self._new_batch(i)
        self.phase[i], self.duration[i] = LOADING, self.rng.uniform(*self.LOAD_MIN) * 60

    # -- one tick: vectorised over all machines --------------------------------------

    def step(
        self, ts_ms: int, dt: float, planned: bool, maintenance: bool, effects: GroupEffects
    ) -> Reading:
        """Advance every machine by ``dt`` seconds and read it at ``ts_ms``."""
        t, self._ts, self._events = self.table, ts_ms, []
        if self.state[0] < 0:  # first tick: announce every machine's current step
            for i in np.flatnonzero(self.phase == STEPPING).tolist():
                self._emit(i, "step", t.codes[t.code_idx[self.row[i]]])
        held = effects.held_down()
        self._process_stops(dt, held, effects)
        moving = ~held & (self.stop_left == 0)
        stepping = moving & (self.phase == STEPPING)
        row, bath = self.row, t.bath[self.row]
        frac_old = np.clip(self.elapsed / np.maximum(self.duration, 1.0), 0, 1)
        self.elapsed = np.where(moving, self.elapsed + dt, self.elapsed)
        frac = np.clip(self.elapsed / np.maximum(self.duration, 1.0), 0, 1)
        volume = self.batch_kg * self.liquor_ratio
        added = volume * (bath_filled(bath, frac) - bath_filled(bath, frac_old)) * stepping
        self.water_l += added
        level = np.where(self.phase == STEPPING, volume * bath_level(bath, frac), 0.0)
        self._thermal(dt, stepping, level, added, effects)
        self._chemistry(stepping, effects)
        pump_on = stepping & (t.pump_pct[row] > 0) & (level >= 0.3 * volume)
        level = effects.apply("level_l", level)
        pressure = vapour_pressure_bar_g(self.temp) + np.where(self.temp > 90, 0.05, 0.0)
        self._alarms(dt, stepping, pump_on & (bath == KEEP) & (level < 0.6 * volume), pressure)
        fields = self._read(dt, pump_on, level, pressure, effects)
        reached = np.abs(self.temp - self.target) <= 1.0
        reached |= (self.direction != 0) & (self.direction * (self.temp - self.target) >= -1.0)
        done = (self.phase != OFF) & moving & (self.elapsed >= self.duration)
        done |= stepping & t.until_temp[row] & (self.sp == self.target) & reached
        for i in np.flatnonzero(done).tolist():
            self._finish(i, planned)
        idle = ((self.phase == WAITING) | (self.phase == LOADING)) & (not planned)
        self.phase[idle], self.has_batch[idle] = OFF, False
        for i in np.flatnonzero((self.phase == OFF) & planned).tolist():
            self._load(i, planned)
        self._emit_states(held, maintenance)
        fields.update(self._labels())
        return Reading(self.machine_type, self.machines, ts_ms, fields, self._events)

    def _process_stops(self, dt: float, held: np.ndarray, effects: GroupEffects) -> None:
        """Operator stops (pump trip, lid, level) freeze the programme for some minutes."""
        n, rng = len(self.machines), self.rng
        self.stop_left = np.maximum(self.stop_left - dt, 0.0)
        running = (self.phase == STEPPING) & ~held & (self.stop_left == 0)
        running &= self.table.bath[self.row] == KEEP
        rate = self.PROCESS_STOPS_PER_H * effects.rate("process") * dt / 3600
        for i in np.flatnonzero(running & (rng.random(n) < 1 - np.exp(-rate))).tolist():
            self.stop_reason[i] = rng.integers(len(self.STOP_REASONS))
            self.stop_left[i] = self.STOP_MEDIAN_S * rng.lognormal(0, 0.7)
            self._emit(i, "alarm", self.STOP_REASONS[self.stop_reason[i]])
            self._episode[i] = 1 + self.stop_reason[i]

    def _thermal(
        self, dt: float, on: np.ndarray, level: np.ndarray, added: np.ndarray, fx: GroupEffects
    ) -> None:
        """Mix in fresh water, ramp the setpoint, then heat or cool through the exchanger."""
        t, row, n = self.table, self.row, len(self.machines)
        c_fixed = self.batch_kg * self._cp[self.recipe] + self._steel
        c_liquor, c_fresh = level * WATER_CP + c_fixed, added * WATER_CP
        c_before = np.maximum(c_liquor - c_fresh, c_fixed)
        self.temp = (c_before * self.temp + c_fresh * t.water_c[row]) / (c_before + c_fresh)
        control = on & t.control[row]
        ramped = self.sp + self.direction * self.grad * dt / 60
        ramp = control & (self.grad > 0) & (self.direction * (ramped - self.target) < 0)
        self.sp = np.where(control, np.where(ramp, ramped, self.target), self.sp)
        sp_rate = ramp * self.direction * self.grad / 60
        bump = fx.shift("overshoot_c") * np.exp(-self.elapsed / 300) * (t.code_idx[row] == HOLD)
        gain = (1 - np.exp(-dt / self._tau)) / dt
        loss = self._ua * (self.temp - AMBIENT_C)
        want = c_liquor * (0.85 * sp_rate + (self.sp + bump - self.temp) * gain) + loss
        derate = 1 - self._heat_drop * np.clip((self.temp - 75) / 55, -1, 1.2)  # less ΔT
        p_max = np.maximum(self._heat_kw * derate * fx.apply("heating_gradient", np.ones(n)), 0)
        p_min = -self._cool_kw * np.clip((self.temp - 25) / 105, 0, 1)
        power = np.where(control, np.clip(want, p_min, p_max), 0.0)
        self.temp = self.temp + (power - loss) * dt / c_liquor
        self.steam_kg += np.maximum(power, 0) * dt / LATENT_KJ_KG * STEAM_OVERHEAD
        self._saturated = control & (power > 0) & (power >= 0.999 * p_max)

    def _chemistry(self, stepping: np.ndarray, effects: GroupEffects) -> None:
        """Progressive dosing toward the step's pH and conductivity targets."""
        dose = stepping & (~np.isnan(self.ph_target) | (self.cond_add > 0))
        eff = effects.apply("dosing_efficiency", np.ones(len(self.machines)))
        f = np.clip(self.elapsed / np.maximum(0.85 * self.duration, 1.0), 0, 1) * eff
        ph = self.ph0 + (self.ph_target - self.ph0) * f
        self.ph = np.where(dose & ~np.isnan(ph), ph, self.ph)
        self.cond = np.where(dose, self.cond0 + self.cond_add * f, self.cond)

    def _alarms(
        self, dt: float, stepping: np.ndarray, low_level: np.ndarray, pressure: np.ndarray
    ) -> None:
        """Raise alarms on their rising edge; remember the batch's worst tracking error."""
        code, control = self.table.code_idx[self.row], stepping & self.table.control[self.row]
        error = np.abs(self.temp - self.sp)
        tracked = control & ((code == HEAT) | (code == HOLD))
        self.worst_error_c = np.maximum(self.worst_error_c, error * tracked)
        self._dev_s = np.where(control & (error > 5.0), self._dev_s + dt, 0.0)
        behind = self._saturated & (code == HEAT) & (error > 3.0)
        self._sat_s = np.where(behind, self._sat_s + dt, 0.0)
        now = {
            "TEMP_DEV": self._dev_s > 120,
            "STEAM_LOW": self._sat_s > 300,  # valve wide open, liquor falling behind
            "LEVEL_LOW": low_level,
            "PRESSURE_HIGH": pressure > self._p_alarm - 0.1 * self._alarm_on["PRESSURE_HIGH"],
        }
        for alarm, active in now.items():
            for i in np.flatnonzero(active & ~self._alarm_on[alarm]).tolist():
                self._emit(i, "alarm", alarm)
            self._alarm_on[alarm] = active

    def _emit_states(self, held: np.ndarray, maintenance: bool) -> None:
        """State events on every change of state or reason; stop events per episode."""
        code, stepping = self.table.code_idx[self.row], self.phase == STEPPING
        busy = np.where(stepping & ((code == UNLOAD) | (code == CLEAN)), SETUP, RUN)
        off = STATES["PLANNED_MAINT"] if maintenance else STATES["OFF_NOPLAN"]
        stopped = self.stop_left > 0
        state = np.where(
            held, DOWN, np.where(stopped, STOP, np.choose(self.phase, [busy, WAIT, SETUP, off]))
        )
        setup = np.where(code == UNLOAD, REASONS.index("UNLOAD"), REASONS.index("CLEAN"))
        by_phase = np.choose(
            self.phase,
            [np.where(busy == SETUP, setup, 0), REASONS.index("BATCH"), REASONS.index("LOAD"), 0],
        )
        reason = np.where(
            held, REASONS.index("MECH"), np.where(stopped, 1 + self.stop_reason, by_phase)
        )
        self._emit_changes(state, reason, held, REASONS, REASONS.index("MECH"))

    def _read(
        self, dt: float, pump_on: np.ndarray, level: np.ndarray, p: np.ndarray, fx: GroupEffects
    ) -> dict[str, np.ndarray]:
        """Sensor values of this tick; pump, reel and chemistry read NaN when idle."""
        n, t = len(self.machines), self.table
        z = self.rng.standard_normal((10, n))
        pct = np.where(pump_on, t.pump_pct[self.row] + 0.3 * z[0], 0.0)
        x = pct / 100
        flow_sd = fx.apply("flow_noise", np.full(n, 0.01))
        current_sd = fx.apply("current_noise", np.full(n, 0.01))
        pump_kw = self._pump_kw * x**3
        self.energy_kwh += (pump_kw + 1.5 * pump_on + 0.8) * dt / 3600
        amps = pump_kw / (np.sqrt(3) * 0.4 * 0.85) * (1 + current_sd * z[1])
        reel = fx.apply("reel_speed_m_min", pump_on * self._reel_nom * (1 + 0.005 * z[2]))
        cycle = 60 * self._rope_m / np.where(reel > 1, reel, np.nan) * (1 + 0.005 * z[3])
        wet = np.where(pump_on, 1.0, np.nan)  # the probes sit in the circulation loop
        sp_shown = np.where((self.phase == STEPPING) & t.control[self.row], self.sp, np.nan)
        return {
            "liquor_temp_c": self.temp + 0.05 * z[4],
            "temp_sp_c": sp_shown,
            "pressure_bar": np.maximum(p + 0.005 * z[5], 0.0),
            "ph": fx.apply("ph", (self.ph + 0.02 * z[6]) * wet),
            "conductivity_ms_cm": fx.apply(
                "conductivity_ms_cm", self.cond * (1 + 0.01 * z[7]) * wet
            ),
            "pump_speed_pct": pct,
            "flow_m3h": fx.apply("flow_m3h", self._flow_nom * x * (1 + flow_sd * z[8])),
            "nozzle_bar": fx.apply(
                "nozzle_bar", self._nozzle_nom * x**2 * (1 + 1.5 * flow_sd * z[9])
            ),
            "pump_current_a": fx.apply("pump_current_a", amps),
            "reel_speed_m_min": reel,
            "cycle_time_s": fx.apply("cycle_time_s", cycle),
            "level_l": level,
            "water_l_total": self.water_l.copy(),
            "steam_kg_total": self.steam_kg.copy(),
            "energy_kwh_total": self.energy_kwh.copy(),
        }

    def _labels(self) -> dict[str, np.ndarray]:
        """Batch and step identity: strings as object arrays, ``None``/NaN when unset."""
        stepping = (self.phase == STEPPING) & (self.row > 0)
        return {
            "step_no": np.where(stepping, self.step_no, np.nan),
            "step_type": np.where(stepping, self._code_names[self.row], None),
            "recipe_id": np.where(self.has_batch, self._recipe_names[self.recipe], None),
            "batch_id": np.where(self.has_batch, self.batch_id, None),
            "batch_kg": np.where(self.has_batch, self.batch_kg, np.nan),
            "state_code": self.state.astype(np.float64),
        }
