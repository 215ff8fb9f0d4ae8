"""Fault scheduling, phases, labels and instrument faults, on synthetic readings."""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import orjson
import pytest

from gateway.inputs.base import Reading
from millwatch import contract
from millwatch.contract import MachineAddress
from simulators.faults import PHASES, WEEK_MS, ActiveFault, FaultInjector, FaultSpec
from simulators.signatures import KINDS, z_score

T0 = 1_767_168_000_000  # 2025-12-31T08:00Z
H = 3_600_000


def addresses(hall: str, prefix: str, n: int) -> list[MachineAddress]:
    return [MachineAddress("c1", "f01", hall, f"{prefix}{i:04d}") for i in range(n)]


LOOMS = addresses("weave1", "l", 4)
KNIT = addresses("knit1", "k", 3)
GROUPS = [("loom_airjet", LOOMS), ("knit_circular", KNIT)]


def empty_readings(
    groups: Sequence[tuple[str, Sequence[MachineAddress]]], ts: int
) -> list[Reading]:
    return [Reading(mt, ms, ts, {}) for mt, ms in groups]


def run(injector: FaultInjector, start: int, end: int, step_ms: int) -> list[list[Reading]]:
    """Tick effects + finish over [start, end); return the readings of every tick."""
    ticks = []
    for ts in range(start, end, step_ms):
        injector.effects(ts, step_ms / 1000)
        readings = empty_readings(injector.groups, ts)
        injector.finish(ts, readings)
        ticks.append(readings)
    return ticks


# -- specs and scheduling ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fault_type": "no_such_fault", "count": 1},
        {"fault_type": "bearing_wear"},
        {"fault_type": "bearing_wear", "count": 1, "per_machine_week": 0.1},
        {"fault_type": "bearing_wear", "count": 1, "severity": (0.8, 0.2)},
        {"fault_type": "bearing_wear", "count": 1, "severity": (0.2, 1.5)},
        {"fault_type": "bearing_wear", "count": -1},
        {"fault_type": "bearing_wear", "count": 1, "duration_h": (3.0, 1.0)},
        {"fault_type": "sensor_stuck", "count": 1, "scope": "hall"},
        {"fault_type": "warp_tension_drift", "count": 1, "machine_types": ("knit_circular",)},
        {"fault_type": "counter_reset", "count": 1, "machine_types": ("hall_env",)},
    ],
)
def test_spec_rejects_bad_plans(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        FaultSpec(**kwargs)


def test_count_needs_an_end() -> None:
    with pytest.raises(ValueError, match="end_ms"):
        FaultInjector([FaultSpec("bearing_wear", count=1)], GROUPS, np.random.default_rng(0), T0)


def test_count_schedules_exactly_that_many_onsets_in_the_window() -> None:
    plan = [FaultSpec("bearing_wear", count=3), FaultSpec("lint_buildup", count=2)]
    inj = FaultInjector(plan, GROUPS, np.random.default_rng(1), T0, T0 + 7 * 24 * H)
    faults = inj.scheduled()
    by_type = defaultdict(list)
    for f in faults:
        by_type[f.fault_type].append(f)
    assert len(by_type["bearing_wear"]) == 3
    assert len(by_type["lint_buildup"]) == 2
    assert all(T0 <= f.onset_ms < T0 + 7 * 24 * H for f in faults)
    # distinct machines while there are enough of them
    bearing_targets = {(gi, int(idx[0])) for f in by_type["bearing_wear"] for gi, idx in f.targets}
    assert len(bearing_targets) == 3
    assert {gi for f in by_type["lint_buildup"] for gi, _ in f.targets} == {1}
    ids = [f.fault_id for f in faults]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("F-") and len(i) == 8 for i in ids)


def test_lead_times_follow_the_spec_unless_compressed() -> None:
    rng = np.random.default_rng(2)
    plan = [FaultSpec("bearing_wear", count=20)]
    faults = FaultInjector(plan, GROUPS, rng, T0, T0 + WEEK_MS).scheduled()
    lead_h = np.array([(f.failure_ms - f.onset_ms) / H for f in faults])
    down_h = np.array([(f.repaired_ms - f.failure_ms) / H for f in faults])
    assert lead_h.min() >= 168 and lead_h.max() <= 6 * 168  # 1-6 weeks
    assert down_h.min() >= 4 and down_h.max() <= 24  # BREAKDOWN 4-24 h
    plan = [FaultSpec("bearing_wear", count=5, duration_h=(2.0, 3.0), down_h=(0.5, 0.5))]
    faults = FaultInjector(plan, GROUPS, rng, T0, T0 + H).scheduled()
    assert all(2 * H <= f.failure_ms - f.onset_ms <= 3 * H for f in faults)
    assert all(f.repaired_ms - f.failure_ms == H // 2 for f in faults)


def test_poisson_rate_per_machine_week() -> None:
    machines = addresses("knit1", "k", 50)
    plan = [FaultSpec("sensor_dropout", per_machine_week=2.0, duration_h=(0.1, 0.1))]
    inj = FaultInjector(
        plan, [("knit_circular", machines)], np.random.default_rng(3), T0, T0 + 4 * WEEK_MS
    )
    n = len(inj.scheduled())
    expected = 2.0 * 50 * 4
    assert abs(n - expected) < 4 * np.sqrt(expected)


def test_open_ended_runs_schedule_week_by_week() -> None:
    machines = addresses("knit1", "k", 50)
    plan = [FaultSpec("sensor_dropout", per_machine_week=1.0, duration_h=(0.1, 0.1))]
    inj = FaultInjector(plan, [("knit_circular", machines)], np.random.default_rng(4), T0)
    assert inj.scheduled() == []
    inj.effects(T0, 1.0)
    first_week = len(inj.scheduled())
    assert first_week > 0 and all(f.onset_ms < T0 + WEEK_MS for f in inj.scheduled())
    inj.active(T0 + 3 * WEEK_MS)
    assert abs(len(inj.scheduled()) - 200) < 4 * np.sqrt(200)


def test_a_machine_does_not_wear_the_same_bearing_twice_at_once() -> None:
    plan = [FaultSpec("bearing_wear", per_machine_week=3.0)]
    faults = FaultInjector(plan, GROUPS, np.random.default_rng(5), T0, T0 + 8 * WEEK_MS).scheduled()
    spans = defaultdict(list)
    for f in faults:
        spans[f.targets[0][0], int(f.targets[0][1][0])].append((f.onset_ms, f.repaired_ms))
    for intervals in spans.values():
        intervals.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(intervals))


def test_same_seed_same_schedule_and_labels_different_seed_differs() -> None:
    plan = [
        FaultSpec("bearing_wear", count=2, duration_h=(1.0, 2.0), down_h=(0.2, 0.4)),
        FaultSpec("lint_buildup", per_machine_week=5.0, duration_h=(0.5, 1.0)),
    ]

    def labels(seed: int) -> list[dict]:
        inj = FaultInjector(plan, GROUPS, np.random.default_rng(seed), T0, T0 + 4 * H)
        run(inj, T0, T0 + 8 * H, 60_000)
        return inj.labels_table()

    assert labels(11) == labels(11)
    assert labels(11) != labels(12)


# -- phases and labels -------------------------------------------------------------------


def labels_by_fault(ticks: list[list[Reading]]) -> dict[str, list[tuple[int, int, dict]]]:
    """fault_id -> [(reading ts, machine index, record)] in emission order."""
    out = defaultdict(list)
    for readings in ticks:
        for reading in readings:
            for i, record in reading.labels:
                out[record["fault_id"]].append((reading.ts_ms, i, record))
    return out


def test_phases_come_in_order_with_timestamps() -> None:
    plan = [
        FaultSpec("bearing_wear", count=2, duration_h=(2.0, 3.0), down_h=(0.5, 1.0)),
        FaultSpec("needle_wear_burst", count=1, duration_h=(2.0, 2.0)),
        FaultSpec("warp_tension_drift", count=2, duration_h=(1.0, 2.0)),
        FaultSpec("sensor_drift", count=2, duration_h=(1.0, 1.0)),
        FaultSpec("compressor_low_pressure", count=1),
    ]
    inj = FaultInjector(plan, GROUPS, np.random.default_rng(6), T0, T0 + 2 * H)
    by_fault = labels_by_fault(run(inj, T0, T0 + 8 * H, 30_000))
    assert set(by_fault) == {f.fault_id for f in inj.scheduled()}
    for fault in inj.scheduled():
        emitted = by_fault[fault.fault_id]
        phases = [r["phase"] for _, i, r in emitted if i == emitted[0][1]]
        with_failure = KINDS[fault.fault_type].down_h is not None
        expected = ["onset", "detectable", "failure", "repaired"]
        assert phases == (expected if with_failure else [p for p in expected if p != "failure"])
        stamps = [r["ts"] for _, i, r in emitted if i == emitted[0][1]]
        assert stamps == sorted(stamps)
        assert stamps[0] == fault.onset_ms and stamps[-1] == fault.repaired_ms
        assert all(r["ts"] <= reading_ts for reading_ts, _, r in emitted)
        if KINDS[fault.fault_type].instrument:
            assert fault.detectable_ms == fault.onset_ms


def test_detectable_is_where_the_signature_passes_three_sigma() -> None:
    plan = [FaultSpec("warp_tension_drift", count=1, duration_h=(10.0, 10.0), severity=(0.5, 0.5))]
    fault = FaultInjector(plan, GROUPS, np.random.default_rng(7), T0, T0 + H).scheduled()[0]
    kind = KINDS["warp_tension_drift"]

    def z(ts: int) -> float:
        effects = kind.effects(fault.progress(ts), 0.5, fault.params, "loom_airjet")
        return max(float(z_score(op, key, v)) for (op, key), v in effects.items())

    assert z(fault.detectable_ms - 60_000) < 3.0 <= z(fault.detectable_ms + 60_000)


def test_labels_are_valid_fault_label_records() -> None:
    plan = [
        FaultSpec("bearing_wear", count=1, duration_h=(1.0, 1.0), down_h=(0.5, 0.5)),
        FaultSpec("hall_humidity_low", count=1, duration_h=(1.0, 1.0)),
    ]
    groups = [*GROUPS, ("hall_env", [MachineAddress("c1", "f01", "weave1", "env-weave1")])]
    inj = FaultInjector(plan, groups, np.random.default_rng(8), T0, T0 + H)
    ticks = run(inj, T0, T0 + 4 * H, 60_000)
    records = [r for readings in ticks for reading in readings for _, r in reading.labels]
    assert len(records) >= 4 + 3 * 5
    for readings in ticks:
        for reading in readings:
            if reading.labels:
                batch = contract.RecordBatch(
                    reading.machine_type, 1, [r for _, r in reading.labels]
                )
                payload = contract.encode_records(batch)
                decoded = contract.decode_records(payload, "fault_label", now=T0 + 4 * H)
                assert decoded.records == batch.records
    assert {r["phase"] for r in records} == set(PHASES)
    assert all(0.0 <= r["severity"] <= 1.0 for r in records)


def test_failure_holds_the_machine_down_until_repaired() -> None:
    plan = [FaultSpec("bearing_wear", count=1, duration_h=(1.0, 1.0), down_h=(2.0, 2.0))]
    inj = FaultInjector(plan, GROUPS, np.random.default_rng(9), T0, T0 + 60_000)
    fault = inj.scheduled()[0]
    gi, idx = fault.targets[0]
    before = inj.effects(fault.failure_ms - 1000, 1.0)[gi]
    assert not before.held_down().any()
    assert before.mul["vib_rms_mm_s"][idx[0]] > 3.5  # near x4 just before failure
    down = inj.effects(fault.failure_ms + H, 1.0)[gi]
    assert down.held_down().tolist() == [i == idx[0] for i in range(down.n)]
    after = inj.effects(fault.repaired_ms, 1.0)[gi]
    assert not after.held_down().any() and not after.mul
    assert inj.active(fault.failure_ms + H) == [fault]
    assert inj.active(fault.repaired_ms) == []


def test_effects_of_faults_sharing_a_machine_stack() -> None:
    plan = [FaultSpec("weft_package_defect", count=3, duration_h=(2.0, 4.0))]
    one = [("loom_airjet", LOOMS[:1])]
    inj = FaultInjector(plan, one, np.random.default_rng(14), T0, T0 + H)
    faults = inj.scheduled()
    assert all(f.targets[0][1].tolist() == [0] for f in faults)  # 3 faults, 1 loom
    ts = T0 + 2 * H
    fx = inj.effects(ts, 1.0)[0]
    kind = KINDS["weft_package_defect"]
    each = [kind.effects(f.progress(ts), f.severity, f.params, "loom_airjet") for f in faults]
    assert fx.rate("weft")[0] == pytest.approx(np.prod([e["rate", "weft"] for e in each]))
    shift = sum(float(e["add", "weft_arrival_deg"]) for e in each)
    assert fx.add["weft_arrival_deg"][0] == pytest.approx(shift)


def test_effects_without_faults_change_nothing() -> None:
    inj = FaultInjector([], GROUPS, np.random.default_rng(0), T0, T0 + H)
    effects = inj.effects(T0, 1.0)
    assert [e.n for e in effects] == [4, 3]
    assert all(not e.mul and not e.add and not e.stop_rate_mul for e in effects)
    with pytest.raises(ValueError, match="one per group"):
        inj.finish(T0, empty_readings(GROUPS, T0)[:1])


def test_hall_scope_hits_every_machine_of_one_hall_at_once() -> None:
    weave2 = [MachineAddress("c1", "f01", "weave2", f"l{i:04d}") for i in range(3, 5)]
    groups = [
        ("loom_airjet", addresses("weave1", "l", 3) + weave2),
        ("loom_rapier", addresses("weave2", "r", 2)),
        ("hall_env", [MachineAddress("c1", "f01", h, f"env-{h}") for h in ("weave1", "weave2")]),
    ]
    plan = [
        FaultSpec("compressor_low_pressure", count=1, duration_h=(0.5, 0.5)),
        FaultSpec("hall_humidity_low", count=1, duration_h=(2.0, 2.0)),
    ]
    inj = FaultInjector(plan, groups, np.random.default_rng(10), T0, T0 + 60_000)
    by_type = {f.fault_type: f for f in inj.scheduled()}
    sag, dry = by_type["compressor_low_pressure"], by_type["hall_humidity_low"]

    def hall_of(fault: ActiveFault) -> str:
        gi, idx = fault.targets[0]
        return groups[gi][1][int(idx[0])].hall

    def in_hall(gi: int, hall: str) -> np.ndarray:
        return np.array([m.hall == hall for m in groups[gi][1]])

    assert [gi for gi, _ in sag.targets] == [0]  # air-jets only: rapiers have no air
    looms = inj.effects(sag.onset_ms + 15 * 60_000, 1.0)[0]
    hit, supply = in_hall(0, hall_of(sag)), looms.add["air_supply_bar"]
    assert (supply[hit] < -0.5).all() and (supply[~hit] == 0).all()
    assert np.ptp(supply[hit]) == 0  # correlated: the same sag on every loom at once
    assert ((looms.rate("weft") > 4) == hit).all()

    effects = inj.effects(dry.onset_ms + H, 1.0)
    hall = hall_of(dry)
    assert ((effects[2].add["rh_pct"] < -10) == in_hall(2, hall)).all()
    for gi in (0, 1):
        warp = np.broadcast_to(effects[gi].rate("warp"), effects[gi].n)
        assert ((warp > 1.5) == in_hall(gi, hall)).all()

    ticks = run(inj, T0, T0 + 4 * H, 60_000)
    onsets = [
        (reading.machine_type, i, record["ts"])
        for readings in ticks
        for reading in readings
        for i, record in reading.labels
        if record["fault_id"] == dry.fault_id and record["phase"] == "onset"
    ]
    expected = {(groups[gi][0], i) for gi in range(3) for i in np.flatnonzero(in_hall(gi, hall))}
    assert {(mt, i) for mt, i, _ in onsets} == expected and len(onsets) == len(expected)
    assert ("hall_env", ["weave1", "weave2"].index(hall)) in expected
    assert len({ts for _, _, ts in onsets}) == 1


# -- instrument faults -------------------------------------------------------------------


class KnitSensors:
    """A knitting machine group that reports one analog field and one counter."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.machines = addresses("knit1", "k", n)
        self.rng = np.random.default_rng(seed)
        self.revs = np.full(n, 1_000.0)

    def read(self, ts: int) -> Reading:
        self.revs += 30
        n = len(self.machines)
        fields = {
            "cam_temp_c": 40.0 + 0.3 * self.rng.standard_normal(n),
            "revs_total": self.revs.copy(),
        }
        return Reading("knit_circular", self.machines, ts, fields)


def instrument_run(fault_type: str, seed: int = 0, minutes: int = 180, **spec: object):
    sensors = KnitSensors(3, seed)
    plan = [FaultSpec(fault_type, count=1, **spec)]
    groups = [("knit_circular", sensors.machines)]
    inj = FaultInjector(
        plan, groups, np.random.default_rng(seed), T0 + 30 * 60_000, T0 + 31 * 60_000
    )
    fault = inj.scheduled()[0]
    ts = np.arange(T0, T0 + minutes * 60_000, 60_000)
    values, raws, events = [], [], []
    for t in ts:
        inj.effects(int(t), 60.0)
        reading = sensors.read(int(t))
        raws.append({k: v.copy() for k, v in reading.fields.items()})
        inj.finish(int(t), [reading])
        values.append(reading.fields)
        events += reading.events
    i = int(fault.targets[0][1][0])
    series = {name: np.array([v[name][i] for v in values]) for name in values[0]}
    raw = {name: np.array([v[name][i] for v in raws]) for name in raws[0]}
    window = (ts >= fault.onset_ms) & (ts < fault.repaired_ms)
    return fault, ts, series, raw, window, events, inj


def test_sensor_stuck_freezes_the_value() -> None:
    fault, _, series, raw, window, _, _ = instrument_run("sensor_stuck", duration_h=(1.0, 1.0))
    assert fault.field == "cam_temp_c"
    stuck = series["cam_temp_c"][window]
    assert window.sum() >= 59 and np.ptp(stuck) == 0
    assert stuck[0] == raw["cam_temp_c"][window][0]  # the last value before it stuck
    assert (series["cam_temp_c"][~window] == raw["cam_temp_c"][~window]).all()
    assert (series["revs_total"] == raw["revs_total"]).all()  # counters untouched


def test_sensor_dropout_is_nan_for_a_while() -> None:
    _, _, series, _, window, _, _ = instrument_run("sensor_dropout", duration_h=(0.5, 0.5))
    assert np.isnan(series["cam_temp_c"][window]).all() and window.sum() >= 29
    assert np.isfinite(series["cam_temp_c"][~window]).all()


def test_sensor_drift_ramps_slowly() -> None:
    fault, _, series, raw, window, _, _ = instrument_run("sensor_drift", duration_h=(2.0, 2.0))
    offset = (series["cam_temp_c"] - raw["cam_temp_c"])[window]
    assert np.all(np.diff(offset) * fault.params["sign"] >= 0)
    assert abs(offset[-1]) >= 4 * 0.3 * 0.95  # at least 4 baseline sds near the end
    assert abs(offset[0]) < 0.05


def test_sensor_spikes_are_rare_single_samples() -> None:
    _, _, series, raw, window, _, _ = instrument_run(
        "sensor_spike", minutes=24 * 60, duration_h=(20.0, 20.0), severity=(1.0, 1.0)
    )
    jump = np.abs(series["cam_temp_c"] - raw["cam_temp_c"])
    spikes = np.flatnonzero(jump > 0)
    assert 0 < len(spikes) < 0.5 * window.sum()
    assert window[spikes].all() and (jump[spikes] >= 8 * 0.3).all()


def test_counter_reset_restarts_from_zero_and_stays_monotonic() -> None:
    fault, ts, series, raw, _, events, inj = instrument_run("counter_reset")
    assert fault.field == "revs_total"
    at = int(np.flatnonzero(ts >= fault.onset_ms)[0])
    revs = series["revs_total"]
    assert revs[at] == 0 and revs[at - 1] > 1000
    assert np.all(np.diff(revs[at:]) > 0)
    assert (np.diff(revs[at:]) == np.diff(raw["revs_total"][at:])).all()
    i = int(fault.targets[0][1][0])
    assert events == [(i, {"ts": fault.onset_ms, "kind": "counter_reset", "code": "revs_total"})]
    batch = contract.RecordBatch("knit_circular", 1, [r for _, r in events])
    contract.decode_records(contract.encode_records(batch), "event", now=T0 + 4 * H)
    phases = [row["phase"] for row in inj.labels_table()]
    assert phases == ["onset", "detectable", "repaired"]
    assert inj.labels_table()[0]["field"] == "revs_total"


def test_instrument_faults_leave_the_groups_arrays_alone() -> None:
    sensors = KnitSensors(2)
    inj = FaultInjector(
        [FaultSpec("sensor_dropout", count=2, duration_h=(1.0, 1.0))],
        [("knit_circular", sensors.machines)],
        np.random.default_rng(0),
        T0,
        T0 + 1000,
    )
    reading = sensors.read(T0 + 60_000)
    held = reading.fields["cam_temp_c"]
    inj.finish(T0 + 60_000, [reading])
    assert np.isnan(reading.fields["cam_temp_c"]).all() and np.isfinite(held).all()


# -- export ------------------------------------------------------------------------------


def test_export_csv_and_json_lines(tmp_path) -> None:
    plan = [FaultSpec("bearing_wear", count=2, duration_h=(1.0, 1.0), down_h=(0.5, 0.5))]
    inj = FaultInjector(plan, GROUPS, np.random.default_rng(13), T0, T0 + H)
    run(inj, T0, T0 + 4 * H, 60_000)
    table = inj.labels_table()
    assert len(table) == 2 * 4
    assert {"cluster", "factory", "hall", "machine", "machine_type"} <= set(table[0])
    with inj.export(tmp_path / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["fault_id"] for r in rows] == [r["fault_id"] for r in table]
    lines = inj.export(tmp_path / "labels.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == table
