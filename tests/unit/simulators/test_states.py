from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pytest

from simulators.states import StateMachine, StopClass

T0 = 1_767_168_000_000
A, B, SETUP, BD = range(4)
CLASSES = [
    StopClass("a", "STOP_PROCESS", ("A1", "A2"), (3, 1), median_s=60.0, feeder=True),
    StopClass("b", "STOP_PROCESS", ("B",), range_s=(100.0, 200.0)),
    StopClass("setup", "SETUP", ("BEAM_OUT",), range_s=(3600.0, 3600.0)),
    StopClass("bd", "BREAKDOWN", ("MECH",), median_s=600.0, sigma=0.5),
]
REASON_CLASS = {"A1": A, "A2": A, "B": B, "BEAM_OUT": SETUP, "MECH": BD}

Events = list[tuple[int, dict[str, Any]]]


def machine(n: int, seed: int = 0, feeders: int = 4) -> StateMachine:
    return StateMachine(n, CLASSES, np.random.default_rng(seed), np.full(n, feeders))


def run(
    sm: StateMachine,
    steps: int,
    dt: float,
    per_s: np.ndarray,
    planned: bool = True,
    start_ms: int = T0,
) -> tuple[Events, float]:
    """Step with constant rates per run-second of each class; return events, run seconds."""
    events: Events = []
    ts, run_s = start_ms, 0.0
    for _ in range(steps):
        ts += int(dt * 1000)
        expected = np.outer(sm.running() * dt, per_s)
        tick = sm.step(ts, dt, expected, planned, False)
        events += tick.events
        run_s += tick.ran.sum() * dt
    return events, run_s


def by_machine(events: Events) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for i, record in events:
        out[i].append(record)
    return out


def test_first_tick_opens_every_timeline() -> None:
    sm = machine(5)
    tick = sm.step(T0, 1.0, np.zeros((5, 4)), True, False)
    assert [(i, e["kind"], e["code"], e["duration_s"]) for i, e in tick.events] == [
        (i, "state", "RUN", 0.0) for i in range(5)
    ]
    assert tick.ran.all() and np.isinf(tick.run_age_s).all()


def test_state_events_chain_and_stop_counts_match_stop_events() -> None:
    n = 300
    sm = machine(n, seed=4, feeders=6)
    events, _ = run(sm, 3000, 1.0, np.array([1 / 300, 1 / 900, 1 / 20000, 1 / 8000]))
    stops = Counter()
    for i, records in by_machine(events).items():
        states = [r for r in records if r["kind"] == "state"]
        # Each state event's duration is the time since the machine's previous one.
        for before, after in itertools.pairwise(states):
            assert after["duration_s"] == pytest.approx((after["ts"] - before["ts"]) / 1000)
            assert after["code"] != before["code"]
        for k, r in enumerate(records):
            if r["kind"] != "stop":
                continue
            state = records[k - 1]  # every stop follows the state event it opens
            assert (state["kind"], state["ts"], state["code"]) == ("state", r["ts"], r["code"])
            assert state["reason"] == r["reason"]
            cls = REASON_CLASS[r["reason"]]
            stops[i, cls] += 1
            if cls == A:
                assert 1 <= r["feeder"] <= 6
            else:
                assert "feeder" not in r
    for (i, cls), count in stops.items():
        assert sm.counts[i, cls] == count
    assert sum(stops.values()) == sm.counts.sum() > 1000
    assert {cls for _, cls in stops} == {A, B, SETUP, BD}


@pytest.mark.parametrize("dt", [1.0, 10.0])
def test_durations_and_intervals_do_not_depend_on_dt(dt: float) -> None:
    n, hours = 500, 1.0
    sm = machine(n, seed=int(dt))
    events, run_s = run(sm, int(hours * 3600 / dt), dt, np.array([1 / 600, 0, 0, 0]))
    states = [e for _, e in events if e["kind"] == "state" and e["duration_s"] > 0]
    stopped = [e["duration_s"] for e in states if e["code"] == "RUN"]
    assert len(stopped) > 2000
    # Lognormal repair: mean = median * exp(sigma^2 / 2) = 76.7 s.
    assert np.mean(stopped) == pytest.approx(60 * np.exp(0.7**2 / 2), rel=0.06)
    assert np.median(stopped) == pytest.approx(60, rel=0.1)
    # One stop per 600 run-seconds, whatever the tick.
    assert run_s / sm.counts.sum() == pytest.approx(600, rel=0.05)
    reasons = Counter(e["reason"] for _, e in events if e["kind"] == "stop")
    assert reasons["A1"] / reasons["A2"] == pytest.approx(3, rel=0.2)


def test_calendar_ends_process_stops_and_pauses_setups() -> None:
    sm = machine(3)
    zero = np.zeros((3, 4))
    sm.step(T0, 1.0, zero, True, False)
    sm.step(T0 + 1000, 1.0, zero, True, False, trigger=np.array([SETUP, B, -1]))
    assert sm.state.tolist() == [4, 2, 1]  # SETUP, STOP_PROCESS, RUN
    ts = T0 + 1000
    events: Events = []
    for k in range(20):  # 20 s in, then 2 h of maintenance, then back to work
        ts += 1000
        events += sm.step(ts, 1.0, zero, k < 19, True).events
    assert sm.state.tolist() == [6, 6, 6]  # PLANNED_MAINT
    for _ in range(7200):
        ts += 1000
        events += sm.step(ts, 1.0, zero, False, True).events
    completed = []
    for _ in range(4000):
        ts += 1000
        tick = sm.step(ts, 1.0, zero, True, False)
        events += tick.events
        completed += [(i, c) for i, c in enumerate(tick.completed) if c >= 0]
    records = by_machine(events)
    codes = [(r["kind"], r["code"], r.get("reason")) for r in records[0]]
    assert codes == [
        ("state", "PLANNED_MAINT", None),
        ("state", "SETUP", "BEAM_OUT"),  # resumed: a state event, no second stop event
        ("state", "RUN", None),
    ]
    setup_s = 20 + records[0][2]["duration_s"]  # before the break + after it
    assert setup_s == pytest.approx(3600, abs=1)
    assert completed == [(0, SETUP)]
    assert [r["code"] for r in records[1]] == ["PLANNED_MAINT", "RUN"]
    assert [r["code"] for r in records[2]] == ["PLANNED_MAINT", "RUN"]
    assert sm.counts[:, SETUP].tolist() == [1, 0, 0]


def test_unplanned_time_is_off_noplan_and_machines_resume() -> None:
    sm = machine(4)
    zero = np.zeros((4, 4))
    sm.step(T0, 1.0, zero, True, False)
    tick = sm.step(T0 + 1000, 1.0, zero, False, False)
    assert sm.state.tolist() == [0] * 4
    assert tick.ran.all()  # it ran up to the boundary
    tick = sm.step(T0 + 2000, 1.0, zero, False, False)
    assert not tick.ran.any() and not tick.events
    tick = sm.step(T0 + 3000, 1.0, zero, True, False)
    assert sm.state.tolist() == [1] * 4
    assert [(e["code"], e["duration_s"]) for _, e in tick.events] == [("RUN", 2.0)] * 4


def test_hold_forces_breakdown_and_is_announced_once() -> None:
    sm = machine(2)
    zero = np.zeros((2, 4))
    held = np.array([True, False])
    events: Events = []
    ts = T0
    for k in range(30):
        ts += 1000
        hold = held if 5 <= k < 20 else None
        planned = not 10 <= k < 12  # a calendar break in the middle of the hold
        events += sm.step(ts, 1.0, zero, planned, False, held=hold).events
        if 5 <= k < 20 and planned:
            assert sm.state.tolist() == [3, 1]
    records = by_machine(events)[0]
    assert [(r["kind"], r["code"], r.get("reason")) for r in records] == [
        ("state", "RUN", None),
        ("state", "BREAKDOWN", "MECH"),
        ("stop", "BREAKDOWN", "MECH"),
        ("state", "OFF_NOPLAN", None),
        ("state", "BREAKDOWN", "MECH"),
        ("state", "RUN", None),
    ]
    assert records[-1]["duration_s"] == 8.0
    assert sm.counts.sum() == 0  # a fault's hold is no stop of any class


def test_hold_pauses_a_natural_setup() -> None:
    sm = machine(1)
    zero = np.zeros((1, 4))
    sm.step(T0, 1.0, zero, True, False)
    sm.step(T0 + 1000, 1.0, zero, True, False, trigger=np.array([SETUP]))
    ts, held = T0 + 1000, np.array([True])
    for k in range(5000):
        ts += 1000
        sm.step(ts, 1.0, zero, True, False, held=held if k < 600 else None)
    assert sm.state.tolist() == [1]
    assert sm.age_s(ts) == pytest.approx(5000 - 600 - 3600, abs=1)


def test_trigger_wins_over_random_draw() -> None:
    sm = machine(50)
    sm.step(T0, 1.0, np.zeros((50, 4)), True, False)
    certain = np.tile([50.0, 0, 0, 0], (50, 1))
    tick = sm.step(T0 + 1000, 1.0, certain, True, False, trigger=np.full(50, B))
    assert (tick.started == B).all() and sm.counts[:, B].sum() == 50


def test_same_seed_same_story() -> None:
    rates = np.array([1 / 200, 1 / 500, 1 / 5000, 1 / 5000])
    first, _ = run(machine(40, seed=9), 2000, 1.0, rates)
    again, _ = run(machine(40, seed=9), 2000, 1.0, rates)
    other, _ = run(machine(40, seed=10), 2000, 1.0, rates)
    assert first == again
    assert first != other


def test_stop_class_is_checked() -> None:
    with pytest.raises(ValueError, match="state"):
        StopClass("x", "RUN", ("X",))
    with pytest.raises(ValueError, match="weight"):
        StopClass("x", "WAIT", ("X", "Y"), (1.0,))
