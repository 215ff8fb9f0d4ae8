from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from millwatch.contract import MACHINE_TYPES, FieldKind, MachineAddress
from simulators.knitting import KnitGroup, kg_per_rev
from simulators.model import GroupEffects

T0 = 1_767_168_000_000
TOTALS = ("revs_total", "fabric_kg_total", "oil_pulses_total", "energy_kwh_total")
YARN = {"YARN_IN", "YARN_OUT", "LYCRA"}
KNIT_REASONS = YARN | {"NEEDLE", "HOLE", "LINT_CLEAN", "ROLL_DOFF", "DOOR", "TAKEDOWN", "OIL"}
KNIT_REASONS |= {"MANUAL", "MECH", "ELEC", "NO_YARN", "NO_OPERATOR"}


def machines(n: int, seed: int = 1) -> KnitGroup:
    addresses = [MachineAddress("c1", "f01", "knit1", f"k{i:04d}") for i in range(n)]
    return KnitGroup(addresses, np.random.default_rng(seed))


@dataclass
class Run:
    first: dict[str, np.ndarray] = field(default_factory=dict)
    last: dict[str, np.ndarray] = field(default_factory=dict)
    run_h: float = 0.0
    planned_h: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    stops: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def per_run_hour(self, reasons: set[str]) -> float:
        return sum(self.reasons[r] for r in reasons) / self.run_h


def simulate(group: KnitGroup, hours: float, dt: float, fx: GroupEffects | None = None) -> Run:
    run, fx = Run(), fx or GroupEffects(group.n)
    kinds = MACHINE_TYPES["knit_circular"].fields
    ts, prev = T0, None
    for _ in range(int(hours * 3600 / dt)):
        ts += int(dt * 1000)
        r = group.step(ts, dt, True, False, fx)
        if prev is None:
            assert set(r.fields) == set(kinds)
            run.first = r.fields
        else:
            for name in TOTALS:
                assert (r.fields[name] >= prev[name]).all()
            run.run_h += dt / 3600 * (prev["state_code"] == 1).sum()
            run.planned_h += dt / 3600 * group.n
        prev = r.fields
        for i, event in r.events:
            if event["kind"] == "stop":
                run.reasons[event["reason"]] += 1
                run.stops.append((i, event))
    run.last = prev or {}
    return run


@pytest.fixture(scope="module")
def group_and_day() -> tuple[KnitGroup, Run]:
    """40 knitting machines for one simulated day at dt = 10 s."""
    group = machines(40)
    return group, simulate(group, 24, 10.0)


def test_stop_rates_are_in_the_spec_ranges(group_and_day: tuple[KnitGroup, Run]) -> None:
    _, day = group_and_day
    # Spec section 2 simulator defaults: yarn 1-4/h, needle 1-3/day, doff every 0.5-1.5 h.
    assert 1.5 <= day.per_run_hour(YARN) <= 3.5
    assert 1.0 <= day.per_run_hour({"NEEDLE", "HOLE"}) * 24 <= 3.0
    assert 0.5 <= 1 / day.per_run_hour({"ROLL_DOFF"}) <= 1.5
    assert day.reasons["LINT_CLEAN"] > 0
    assert set(day.reasons) <= KNIT_REASONS
    assert 0.80 <= day.run_h / day.planned_h <= 0.95  # spec section 4: typical 85-90 %


def test_yarn_stops_name_their_feeder(group_and_day: tuple[KnitGroup, Run]) -> None:
    group, day = group_and_day
    yarn = [(i, e) for i, e in day.stops if e["reason"] in YARN]
    assert len(yarn) > 1000
    assert all(1 <= e["feeder"] <= group.feeders[i] for i, e in yarn)
    assert all("feeder" not in e for _, e in day.stops if e["reason"] not in YARN)
    feeders = Counter(e["feeder"] for _, e in yarn)
    assert len(feeders) > 50  # spread over the machine's feeders


def test_fabric_follows_the_capacity_formula(group_and_day: tuple[KnitGroup, Run]) -> None:
    group, day = group_and_day
    revs = day.last["revs_total"] - day.first["revs_total"]
    kg = day.last["fabric_kg_total"] - day.first["fabric_kg_total"]
    expected = kg_per_rev(
        group.diameter_in, group.gauge_npi, group.feeders, group.stitch_mm, group.tex
    )
    assert kg == pytest.approx(revs * expected, rel=1e-4)  # revs_total is floored
    kg_h = expected * group.nominal * 60
    assert kg_h.min() > 10 and kg_h.max() < 80
    running = day.last["state_code"] == 1
    feed = day.last["yarn_feed_m_min"][running] / day.last["speed_rpm"][running]
    assert feed == pytest.approx(group.feed_m_per_rev[running])
    assert (day.last["yarn_feed_m_min"][~running] == 0).all()


def test_fields_are_contract_fields_and_ints_are_integral(
    group_and_day: tuple[KnitGroup, Run],
) -> None:
    _, day = group_and_day
    kinds = MACHINE_TYPES["knit_circular"].fields
    for name, values in day.last.items():
        assert values.shape == (40,)
        if kinds[name] is FieldKind.INT:
            assert (values == np.floor(values)).all()
    assert (
        day.first["speed_rpm"].min() >= 22 and day.first["speed_rpm"].max() <= 36
    )  # article share


def test_stop_rate_effects() -> None:
    fx = GroupEffects(30, stop_rate_mul={"yarn": np.full(30, 2.0), "lint": np.full(30, 6.0)})
    plain, faulty = simulate(machines(30, 4), 8, 10.0), simulate(machines(30, 4), 8, 10.0, fx)
    assert faulty.per_run_hour(YARN) / plain.per_run_hour(YARN) == pytest.approx(2, rel=0.2)
    lint = {"LINT_CLEAN"}
    assert faulty.per_run_hour(lint) > 3 * plain.per_run_hour(lint)  # ~25 vs ~150 stops


def test_field_effects() -> None:
    plain, faulty = machines(3, 6), machines(3, 6)
    hot = {"cam_temp_c": np.array([5.0, 0, 0]), "drive_power_kw": np.array([0, 0.3, 0])}
    fx = GroupEffects(3, mul={"drive_power_kw": np.array([1, 1.05, 1])}, add=hot)
    for k in range(1, 400):
        a = plain.step(T0 + 1000 * k, 1.0, True, False, GroupEffects(3))
        b = faulty.step(T0 + 1000 * k, 1.0, True, False, fx)
    assert b.fields["cam_temp_c"][0] - a.fields["cam_temp_c"][0] == pytest.approx(
        5 * -np.expm1(-399 / 1200), rel=0.01
    )  # a 20-min thermal lag
    assert b.fields["drive_power_kw"][1] == pytest.approx(
        a.fields["drive_power_kw"][1] * 1.05 + 0.3
    )
    assert b.fields["vib_rms_mm_s"] == pytest.approx(a.fields["vib_rms_mm_s"])


def test_calendar_and_hold() -> None:
    group = machines(6)
    held = np.array([True, False, False, False, False, False])
    r = group.step(T0, 1.0, True, False, GroupEffects(6, breakdown=held))
    assert r.fields["state_code"][0] == 3 and r.fields["speed_rpm"][0] == 0
    revs = group.revs.copy()
    for k in range(1, 120):
        r = group.step(T0 + 1000 * k, 1.0, False, False, GroupEffects(6))
    assert (r.fields["state_code"] == 0).all() and (group.revs - revs).max() < 1
    r = group.step(T0 + 121_000, 1.0, True, False, GroupEffects(6))
    assert (r.fields["state_code"] == 1).all()
    assert {e["code"] for _, e in r.events} == {"RUN"}


def test_same_seed_same_data() -> None:
    def record(seed: int) -> list[Any]:
        group, out = machines(10, seed), []
        for k in range(300):
            r = group.step(T0 + 10_000 * k, 10.0, True, False, GroupEffects(10))
            out += [r.fields[name].tolist() for name in sorted(r.fields)] + [r.events]
        return out

    assert record(3) == record(3)
    assert record(3) != record(4)
