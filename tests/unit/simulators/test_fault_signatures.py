"""Each §3 process fault leaves its signature in the real machine models' telemetry.

Every test runs the same seed twice, with the fault injected at a fixed onset (``count``
faults starting within a second of ``ONSET``, compressed lead times) and without it
(control), then checks the signature is there after onset in the faulted run and not in
the control run. Before onset both runs are identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from millwatch.contract import STATES, MachineAddress
from simulators.dyeing import DyeGroup
from simulators.faults import FaultInjector, FaultSpec
from simulators.hall import HallEnvGroup
from simulators.knitting import KnitGroup
from simulators.loom import LoomGroup
from simulators.programmes import DEFAULT_RECIPES
from simulators.signatures import KINDS
from simulators.stenter import StenterGroup

T0 = 1_767_168_000_000
MIN = 60_000
H = 60 * MIN
ONSET = T0 + 10 * MIN
RUN, BREAKDOWN = STATES["RUN"], STATES["BREAKDOWN"]

Factory = Callable[[Sequence[MachineAddress], np.random.Generator], object]


def machines(hall: str, prefix: str, n: int) -> list[MachineAddress]:
    return [MachineAddress("c1", "f01", hall, f"{prefix}{i:04d}") for i in range(n)]


def airjets(ms: Sequence[MachineAddress], rng: np.random.Generator) -> LoomGroup:
    return LoomGroup("loom_airjet", ms, rng)


@dataclass
class Series:
    """One group's run: ``fields[name]`` has shape (ticks, machines)."""

    ts: np.ndarray
    fields: dict[str, np.ndarray]
    events: list[tuple[int, int, dict]]  # (tick, machine, record)

    def between(self, start_ms: int, end_ms: int) -> np.ndarray:
        return (self.ts >= start_ms) & (self.ts < end_ms)

    def stops(
        self, reasons: set[str], start_ms: int, end_ms: int, machine: int | None = None
    ) -> int:
        """Stop events with one of ``reasons`` in [start, end), of one machine or all."""
        return sum(
            1
            for k, i, e in self.events
            if e["kind"] == "stop"
            and e.get("reason") in reasons
            and start_ms <= self.ts[k] < end_ms
            and machine in (None, i)
        )


def simulate(
    groups: Sequence[tuple[Factory, Sequence[MachineAddress]]],
    plan: Sequence[FaultSpec],
    hours: float,
    dt: float = 5.0,
    seed: int = 3,
) -> tuple[list[Series], FaultInjector]:
    """Step the groups from T0 for ``hours`` with the plan's faults starting at ONSET."""
    models = [make(ms, np.random.default_rng([seed, gi])) for gi, (make, ms) in enumerate(groups)]
    layout = [(m.machine_type, m.machines) for m in models]
    inj = FaultInjector(plan, layout, np.random.default_rng([seed, 99]), ONSET, ONSET + 1000)
    ts = np.arange(T0, T0 + int(hours * H), int(dt * 1000))
    columns: list[dict[str, list[np.ndarray]]] = [{} for _ in models]
    events: list[list[tuple[int, int, dict]]] = [[] for _ in models]
    for k, t in enumerate(ts.tolist()):
        effects = inj.effects(t, dt)
        readings = [m.step(t, dt, True, False, fx) for m, fx in zip(models, effects, strict=True)]
        inj.finish(t, readings)
        for gi, reading in enumerate(readings):
            for name, values in reading.fields.items():
                columns[gi].setdefault(name, []).append(values)
            events[gi] += [(k, i, e) for i, e in reading.events]
    series = [
        Series(ts, {name: np.array(v) for name, v in cols.items()}, ev)
        for cols, ev in zip(columns, events, strict=True)
    ]
    return series, inj


def pair(
    groups: Sequence[tuple[Factory, Sequence[MachineAddress]]],
    spec: FaultSpec,
    hours: float,
    dt: float = 5.0,
) -> tuple[list[Series], list[Series], FaultInjector]:
    """The faulted run, the control run (same seed, no faults) and the injector."""
    faulted, inj = simulate(groups, [spec], hours, dt)
    control, _ = simulate(groups, [], hours, dt)
    for f, c in zip(faulted, control, strict=True):  # identical until the fault starts
        before = f.between(T0, ONSET)
        for name, values in f.fields.items():
            if values.dtype.kind == "f":
                assert np.array_equal(values[before], c.fields[name][before], equal_nan=True), name
    return faulted, control, inj


def running_mean(s: Series, name: str, mask: np.ndarray) -> np.ndarray:
    """Per-machine mean of a field over the ticks in ``mask`` while the machine runs.

    NaN for a machine that did not run then (a beam change can take 4 h).
    """
    running = s.fields["state_code"][mask] == RUN
    total = np.where(running, s.fields[name][mask], 0.0).sum(axis=0)
    count = running.sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def ran(values: np.ndarray) -> np.ndarray:
    """The values of machines that ran (not NaN); at least half of them must have."""
    kept = values[~np.isnan(values)]
    assert kept.size * 2 >= values.size, values
    return kept


def ratio(f: Series, c: Series, name: str, mask: np.ndarray) -> np.ndarray:
    """Per-machine faulted/control ratio of a field's running mean (NaN: did not run)."""
    return running_mean(f, name, mask) / running_mean(c, name, mask)


def nanmeans(values: np.ndarray) -> np.ndarray:
    """Per-machine mean of the finite values (NaN for a machine without any)."""
    ok = np.isfinite(values)
    total = np.where(ok, values, 0.0).sum(axis=0)
    return np.where(ok.any(axis=0), total / np.maximum(ok.sum(axis=0), 1), np.nan)


def shift(f: Series, c: Series, name: str, mask: np.ndarray) -> np.ndarray:
    """Per-machine faulted minus control mean of a field over ``mask``."""
    return nanmeans(f.fields[name][mask]) - nanmeans(c.fields[name][mask])


def paired_ratio(f: Series, c: Series, name: str, mask: np.ndarray) -> np.ndarray:
    """Per-machine mean of faulted/control at the same ticks, where both read a value."""
    a, b = f.fields[name][mask], c.fields[name][mask]
    ok = np.isfinite(a) & np.isfinite(b) & (b > 0)
    r = np.divide(a, b, out=np.zeros(a.shape), where=ok)
    count = ok.sum(axis=0)
    return np.where(count > 0, r.sum(axis=0) / np.maximum(count, 1), np.nan)


def roughness(s: Series, name: str, mask: np.ndarray) -> np.ndarray:
    """Per-machine median relative tick-to-tick change of a field (NaN: never read)."""
    v = s.fields[name][mask]
    prev, cur = v[:-1], v[1:]
    ok = np.isfinite(prev) & np.isfinite(cur) & (cur > 0)
    rel = np.divide(np.abs(cur - prev), cur, out=np.zeros(cur.shape), where=ok)
    return np.array(
        [np.median(r[k]) if k.any() else np.nan for r, k in zip(rel.T, ok.T, strict=True)]
    )


def stop_total(s: Series, counter: str, mask: np.ndarray) -> float:
    """Stops a counter field counted over ``mask``, summed over the machines."""
    values = s.fields[counter][mask]
    return float((values[-1] - values[0]).sum())


# -- the catalogue speaks the groups' language ----------------------------------------------

GROUPS: dict[str, Factory] = {
    "loom_airjet": airjets,
    "loom_rapier": lambda ms, rng: LoomGroup("loom_rapier", ms, rng),
    "knit_circular": KnitGroup,
    "dye_jet": DyeGroup,
    "stenter": StenterGroup,
    "hall_env": HallEnvGroup,
}


def test_every_effect_key_is_honoured_by_its_group() -> None:
    """A signature key a group ignores would be a fault without a signature."""
    for machine_type, make in GROUPS.items():
        group = make(machines("hall1", "m", 2), np.random.default_rng(0))
        stop_classes = getattr(group, "STOP_CLASSES", frozenset())
        for kind in KINDS.values():
            if machine_type not in kind.machine_types + kind.companions:
                continue
            for op, key in kind.effects(0.5, 0.5, {"sign": 1.0, "zone": 3.0}, machine_type):
                known = group.EFFECT_KEYS | (stop_classes if op == "rate" else frozenset())
                assert key in known, (kind.name, machine_type, op, key)


# -- looms ---------------------------------------------------------------------------------


def test_bearing_wear_on_looms_vibration_climbs_then_breakdown() -> None:
    looms = machines("weave1", "l", 3)
    spec = FaultSpec(
        "bearing_wear", count=3, severity=(0.7, 0.7), duration_h=(2, 2), down_h=(0.5, 0.5)
    )
    (faulted,), (control,), inj = pair([(airjets, looms)], spec, hours=3.0)
    first = min(f.failure_ms for f in inj.scheduled())
    last = max(f.failure_ms for f in inj.scheduled())
    early = faulted.between(ONSET, ONSET + 20 * MIN)
    late = faulted.between(first - 15 * MIN, first)
    assert (ran(ratio(faulted, control, "vib_rms_mm_s", late)) >= 1.5).all()
    assert (ran(ratio(faulted, control, "vib_peak_mm_s", late)) >= 1.5).all()
    assert (ran(ratio(faulted, control, "vib_rms_mm_s", early)) < 1.2).all()  # slow at first
    assert (shift(faulted, control, "bearing_temp_c", late) >= 3.0).all()
    assert np.nanmean(ratio(faulted, control, "motor_current_a", late)) >= 1.02
    down = faulted.between(last + 10_000, last + 25 * MIN)
    assert (faulted.fields["state_code"][down] == BREAKDOWN).all()
    assert (control.fields["state_code"][down] != BREAKDOWN).mean() > 0.9
    after = faulted.between(max(f.repaired_ms for f in inj.scheduled()) + 10 * MIN, T0 + 3 * H)
    settled = ran(ratio(faulted, control, "vib_rms_mm_s", after))
    assert np.allclose(settled, 1.0, atol=0.1)  # repaired: back to its own baseline


def test_warp_tension_drift_moves_tension_and_warp_stops() -> None:
    looms = machines("weave1", "l", 6)
    spec = FaultSpec("warp_tension_drift", count=6, severity=(0.7, 0.7), duration_h=(4, 4))
    (faulted,), (control,), inj = pair([(airjets, looms)], spec, hours=4.0, dt=10.0)
    late = faulted.between(ONSET + 2 * H, ONSET + 4 * H)
    sign = np.zeros(6)
    for fault in inj.scheduled():
        sign[fault.targets[0][1]] = fault.params["sign"]
    off = (ratio(faulted, control, "warp_tension_kn", late) - 1) * sign
    assert (ran(off) >= 0.05).all(), off  # 5-15 % off setpoint, either way
    after = faulted.between(ONSET, ONSET + 4 * H)
    warp_f = stop_total(faulted, "warp_stops_total", after)
    assert warp_f >= 1.4 * stop_total(control, "warp_stops_total", after)


def test_air_leak_raises_flow_lowers_pressure() -> None:
    looms = machines("weave1", "l", 6)
    spec = FaultSpec("air_leak_nozzle_wear", count=6, severity=(0.7, 0.7), duration_h=(4, 4))
    (faulted,), (control,), _ = pair([(airjets, looms)], spec, hours=4.0, dt=10.0)
    late = faulted.between(ONSET + 3 * H, ONSET + 4 * H)
    assert (ran(ratio(faulted, control, "air_flow_nm3h", late)) >= 1.10).all()
    assert (shift(faulted, control, "air_supply_bar", late) <= -0.2).all()
    after = faulted.between(ONSET, T0 + 4 * H)
    weft_f = stop_total(faulted, "weft_stops_total", after)
    assert weft_f > 1.1 * stop_total(control, "weft_stops_total", after)


def test_compressor_low_pressure_sags_every_airjet_of_the_hall_together() -> None:
    weave2 = [MachineAddress("c1", "f01", "weave2", f"l{i:04d}") for i in range(4, 7)]
    looms = machines("weave1", "l", 4) + weave2
    spec = FaultSpec("compressor_low_pressure", count=1, severity=(0.7, 0.7), duration_h=(0.5, 0.5))
    (faulted,), (control,), inj = pair([(airjets, looms)], spec, hours=1.0)
    (fault,) = inj.scheduled()
    hit = np.zeros(len(looms), dtype=bool)
    hit[fault.targets[0][1]] = True
    assert len({looms[i].hall for i in np.flatnonzero(hit)}) == 1
    assert hit.sum() == sum(m.hall == looms[fault.targets[0][1][0]].hall for m in looms)
    sag = faulted.between(ONSET + 5 * MIN, ONSET + 25 * MIN)
    drop = faulted.fields["air_supply_bar"][sag] - control.fields["air_supply_bar"][sag]
    assert (drop[:, hit] <= -0.5).all()  # every loom of the hall, at every tick: correlated
    assert (drop[:, ~hit].mean(0) > -0.1).all()  # the other hall keeps its pressure
    window = faulted.between(ONSET, fault.repaired_ms)
    weft_f = faulted.fields["weft_stops_total"][window][:, hit]
    weft_c = control.fields["weft_stops_total"][window][:, hit]
    assert (weft_f[-1] - weft_f[0]).sum() >= 3 * max((weft_c[-1] - weft_c[0]).sum(), 1)


def test_weft_package_defect_shifts_arrival_then_weft_stops() -> None:
    looms = machines("weave1", "l", 4)
    spec = FaultSpec("weft_package_defect", count=4, severity=(0.7, 0.7), duration_h=(3, 3))
    (faulted,), (control,), _ = pair([(airjets, looms)], spec, hours=3.0)
    late = faulted.between(ONSET + H, ONSET + 3 * H)
    assert (np.abs(ran(shift(faulted, control, "weft_arrival_deg", late))) >= 3.0).all()
    f, c = faulted.fields["weft_arrival_deg"][late], control.fields["weft_arrival_deg"][late]
    assert (ran(np.nanstd(f, 0) / np.nanstd(c, 0)) >= 1.5).all()
    weft_f = stop_total(faulted, "weft_stops_total", late)
    assert weft_f >= 2 * stop_total(control, "weft_stops_total", late)


def test_hall_humidity_low_dries_the_hall_and_breaks_warps() -> None:
    looms = machines("weave1", "l", 6)
    env = [MachineAddress("c1", "f01", "weave1", "env-weave1")]
    spec = FaultSpec("hall_humidity_low", count=1, severity=(0.7, 0.7), duration_h=(3, 3))
    groups = [(airjets, looms), (HallEnvGroup, env)]
    (f_looms, f_env), (c_looms, c_env), inj = pair(groups, spec, hours=3.5, dt=10.0)
    (fault,) = inj.scheduled()
    assert sorted(gi for gi, _ in fault.targets) == [0, 1]
    dry = f_env.between(ONSET + 45 * MIN, ONSET + 135 * MIN)
    assert f_env.fields["rh_pct"][dry].max() < 70  # spec: below ~70 % at warp level
    assert c_env.fields["rh_pct"].min() > 75
    window = f_looms.between(ONSET, fault.repaired_ms)
    warp_f = stop_total(f_looms, "warp_stops_total", window)
    assert warp_f >= 1.5 * stop_total(c_looms, "warp_stops_total", window)


# -- knitting ------------------------------------------------------------------------------

YARN_STOPS, NEEDLE_STOPS = {"YARN_IN", "YARN_OUT", "LYCRA"}, {"NEEDLE", "HOLE"}


def test_bearing_wear_on_knitting_machines() -> None:
    knit = machines("knit1", "k", 3)
    spec = FaultSpec(
        "bearing_wear", count=3, severity=(0.7, 0.7), duration_h=(2, 2), down_h=(0.5, 0.5)
    )
    (faulted,), (control,), inj = pair([(KnitGroup, knit)], spec, hours=2.75)
    first = min(f.failure_ms for f in inj.scheduled())
    late = faulted.between(first - 15 * MIN, first)
    assert (ran(ratio(faulted, control, "vib_rms_mm_s", late)) >= 1.5).all()
    last = max(f.failure_ms for f in inj.scheduled())
    down = faulted.between(last + 10_000, last + 25 * MIN)
    assert (faulted.fields["state_code"][down] == BREAKDOWN).all()


def test_needle_wear_burst_clusters_needle_stops_then_a_needle_change() -> None:
    knit = machines("knit1", "k", 4)
    spec = FaultSpec(
        "needle_wear_burst", count=4, severity=(0.7, 0.7), duration_h=(8, 8), down_h=(0.5, 0.5)
    )
    (faulted,), (control,), inj = pair([(KnitGroup, knit)], spec, hours=9.0, dt=10.0)
    for fault in inj.scheduled():
        i = int(fault.targets[0][1][0])
        burst = (fault.failure_ms - 2 * H, fault.failure_ms)
        assert faulted.stops(NEEDLE_STOPS, *burst, machine=i) >= 3  # spec: >= 3 in 2 h
        assert control.stops(NEEDLE_STOPS, *burst, machine=i) <= 1
        down = faulted.between(fault.failure_ms + 10_000, fault.repaired_ms)
        assert (faulted.fields["state_code"][down, i] == BREAKDOWN).all()  # needle change
    late = faulted.between(ONSET + 5 * H, ONSET + 7 * H)
    assert (ran(ratio(faulted, control, "vib_rms_mm_s", late)) >= 1.2).all()


def test_lubrication_shortfall_heats_cams_and_loads_the_drive() -> None:
    knit = machines("knit1", "k", 3)
    spec = FaultSpec("lubrication_shortfall", count=3, severity=(0.7, 0.7), duration_h=(3, 3))
    (faulted,), (control,), _ = pair([(KnitGroup, knit)], spec, hours=3.2)
    late = faulted.between(ONSET + 150 * MIN, ONSET + 180 * MIN)
    assert (shift(faulted, control, "cam_temp_c", late) >= 3.0).all()
    assert (ran(ratio(faulted, control, "drive_power_kw", late)) >= 1.03).all()


def test_yarn_tension_drift_trends_up_then_yarn_stops() -> None:
    knit = machines("knit1", "k", 6)
    spec = FaultSpec("yarn_tension_drift", count=6, severity=(0.7, 0.7), duration_h=(4, 4))
    (faulted,), (control,), _ = pair([(KnitGroup, knit)], spec, hours=4.0, dt=10.0)
    early, late = faulted.between(ONSET, ONSET + H), faulted.between(ONSET + 3 * H, ONSET + 4 * H)
    rise = ratio(faulted, control, "yarn_tension_cn", late)
    assert (ran(rise) >= 1.2).all()
    assert np.nanmean(ratio(faulted, control, "yarn_tension_cn", early)) < 1.1  # a trend
    second_half = (ONSET + 2 * H, ONSET + 4 * H)
    assert faulted.stops(YARN_STOPS, *second_half) >= 1.5 * control.stops(YARN_STOPS, *second_half)


def test_lint_buildup_raises_lint_and_yarn_stops_over_a_shift() -> None:
    knit = machines("knit1", "k", 6)
    spec = FaultSpec("lint_buildup", count=6, severity=(0.7, 0.7), duration_h=(8, 8))
    (faulted,), (control,), _ = pair([(KnitGroup, knit)], spec, hours=8.0, dt=10.0)
    shift_ = (ONSET, ONSET + 8 * H)
    lint = faulted.stops({"LINT_CLEAN"}, *shift_)
    assert lint >= 2 * max(control.stops({"LINT_CLEAN"}, *shift_), 1)
    assert faulted.stops(YARN_STOPS, *shift_) > control.stops(YARN_STOPS, *shift_)


# -- dyeing --------------------------------------------------------------------------------


def reactive_only(ms: Sequence[MachineAddress], rng: np.random.Generator) -> DyeGroup:
    """Jets that only dye reactive cotton, so every batch doses soda to pH 10.5-11.5."""
    return DyeGroup(ms, rng, [r for r in DEFAULT_RECIPES if r.recipe_id.startswith("CO-REACT")])


def test_heating_fault_slows_heat_steps_and_overshoots_the_hold() -> None:
    jets = machines("wet1", "d", 6)
    spec = FaultSpec("heating_fault", count=6, severity=(0.8, 0.8), duration_h=(8, 8))
    (faulted,), (control,), _ = pair([(DyeGroup, jets)], spec, hours=8.0, dt=10.0)
    later = faulted.between(ONSET + 2 * H, ONSET + 8 * H)  # worse batch after batch

    def tracking(s: Series, step: str) -> np.ndarray:
        error = s.fields["temp_sp_c"][later] - s.fields["liquor_temp_c"][later]
        return error[(s.fields["step_type"][later] == step) & np.isfinite(error)]

    assert tracking(faulted, "HEAT").max() >= 3.0  # the liquor falls behind the ramp
    assert tracking(control, "HEAT").max() < 2.0
    assert tracking(faulted, "HEAT").mean() >= tracking(control, "HEAT").mean() + 0.3
    assert -tracking(faulted, "HOLD").min() >= 1.0  # overshoot at the start of the hold
    assert -tracking(control, "HOLD").min() < 0.5


def test_pump_cavitation_roughens_flow_then_current_drops() -> None:
    jets = machines("wet1", "d", 4)
    spec = FaultSpec("pump_cavitation", count=4, severity=(0.7, 0.7), duration_h=(0.5, 0.5))
    (faulted,), (control,), _ = pair([(DyeGroup, jets)], spec, hours=1.0)
    rough = faulted.between(ONSET + 10 * MIN, ONSET + 30 * MIN)
    for name in ("flow_m3h", "pump_current_a"):
        ratio_ = ran(roughness(faulted, name, rough) / roughness(control, name, rough))
        assert (ratio_ >= 3.0).all(), (name, ratio_)
    developed = faulted.between(ONSET + 22 * MIN, ONSET + 30 * MIN)
    amps = ran(paired_ratio(faulted, control, "pump_current_a", developed))
    assert amps.mean() <= 0.95, amps


def test_rope_tangle_spikes_nozzle_pressure_slows_the_reel_then_stops() -> None:
    jets = machines("wet1", "d", 4)
    spec = FaultSpec(
        "rope_tangle", count=4, severity=(0.7, 0.7), duration_h=(0.2, 0.2), down_h=(0.2, 0.2)
    )
    (faulted,), (control,), inj = pair([(DyeGroup, jets)], spec, hours=1.0)
    failure = min(f.failure_ms for f in inj.scheduled())
    late = faulted.between(failure - 3 * MIN, failure)
    assert (ran(paired_ratio(faulted, control, "nozzle_bar", late)) >= 1.3).all()
    assert (ran(paired_ratio(faulted, control, "reel_speed_m_min", late)) <= 0.8).all()
    assert (ran(paired_ratio(faulted, control, "cycle_time_s", late)) >= 1.2).all()
    stop = faulted.between(max(f.failure_ms for f in inj.scheduled()) + 10_000, failure + 10 * MIN)
    assert (faulted.fields["state_code"][stop] == BREAKDOWN).all()


def test_dosing_fault_leaves_ph_short_after_soda_dosing() -> None:
    jets = machines("wet1", "d", 4)
    spec = FaultSpec("dosing_fault", count=4, severity=(0.8, 0.8), duration_h=(8, 8))
    (faulted,), (control,), _ = pair([(reactive_only, jets)], spec, hours=8.2, dt=10.0)
    batch = faulted.between(ONSET, ONSET + 8 * H)
    top_f = np.nanmax(faulted.fields["ph"][batch], axis=0)
    top_c = np.nanmax(control.fields["ph"][batch], axis=0)
    assert np.median(top_f) < 10.0 <= top_c.min()  # spec: pH still < 10 after soda dosing

    def alarms(s: Series) -> int:
        return sum(
            1 for _, _, e in s.events if e["kind"] == "alarm" and e["code"] == "DOSING_FAULT"
        )

    assert alarms(faulted) >= 4 and alarms(control) == 0


# -- stenters ------------------------------------------------------------------------------


def test_burner_fault_cools_one_zone_and_the_fabric_leaves_wetter() -> None:
    lines = machines("finish1", "s", 3)
    spec = FaultSpec("burner_fault", count=3, severity=(0.7, 0.7), duration_h=(1, 1))
    (faulted,), (control,), inj = pair([(StenterGroup, lines)], spec, hours=1.2)
    cold = faulted.between(ONSET + 20 * MIN, ONSET + 60 * MIN)
    for fault in inj.scheduled():
        i, zone = int(fault.targets[0][1][0]), int(fault.params["zone"])
        for k in range(1, 9):
            key = f"zone{k}_temp_c"
            drop = shift(faulted, control, key, cold)[i]
            assert drop <= -10.0 if k == zone else abs(drop) < 3.0, (k, zone, drop)
    assert np.nanmedian(shift(faulted, control, "residual_moisture_pct", cold)) > 0.3


def test_exhaust_fan_fault_floods_the_exhaust_with_humidity() -> None:
    lines = machines("finish1", "s", 3)
    spec = FaultSpec("exhaust_fan_fault", count=3, severity=(0.7, 0.7), duration_h=(2, 2))
    (faulted,), (control,), _ = pair([(StenterGroup, lines)], spec, hours=2.2)
    weak = faulted.between(ONSET + 30 * MIN, ONSET + 2 * H)
    h_f = running_mean(faulted, "exhaust_humidity_kg_kg", weak)
    h_c = running_mean(control, "exhaust_humidity_kg_kg", weak)
    assert (ran(h_f / h_c) >= 2.0).all()
    assert (h_f[h_c >= 0.1] > 0.2).all()  # spec: > 0.2 kg/kg on a well-run line
    assert (ran(shift(faulted, control, "residual_moisture_pct", weak)) >= 1.0).all()


def test_exhaust_overdraw_dries_the_exhaust_and_burns_gas() -> None:
    lines = machines("finish1", "s", 3)
    spec = FaultSpec("exhaust_overdraw", count=3, severity=(0.7, 0.7), duration_h=(2, 2))
    (faulted,), (control,), _ = pair([(StenterGroup, lines)], spec, hours=2.2)
    over = faulted.between(ONSET + 30 * MIN, ONSET + 2 * H)
    humidity = running_mean(faulted, "exhaust_humidity_kg_kg", over)
    assert (ran(humidity) <= 0.07).all()  # spec: about 0.05 kg/kg
    gas = ratio(faulted, control, "gas_nm3h", over)
    spare = running_mean(control, "burner_pct", over) < 90  # a maxed-out burner cannot
    assert (ran(gas[spare]) >= 1.15).all(), gas  # spec: gas +20-40 %


def test_chain_clip_wear_widens_the_width_error() -> None:
    lines = machines("finish1", "s", 4)
    spec = FaultSpec("chain_clip_wear", count=4, severity=(0.7, 0.7), duration_h=(4, 4))
    (faulted,), (control,), _ = pair([(StenterGroup, lines)], spec, hours=4.0, dt=10.0)
    worn = faulted.between(ONSET + 3 * H, ONSET + 4 * H)

    def width_error(s: Series) -> np.ndarray:
        error = s.fields["width_act_cm"][worn] - s.fields["width_set_cm"][worn]
        return np.array(
            [np.std(e[np.isfinite(e)]) if np.isfinite(e).sum() > 10 else np.nan for e in error.T]
        )

    assert (ran(width_error(faulted) / width_error(control)) >= 2.0).all()
