"""Events as monitor input: stop reasons and alarm codes as rates, step changes as transitions."""

from __future__ import annotations

import numpy as np

from analytics.event_signals import (
    event_baseline,
    event_counts,
    event_keys,
    event_marks,
    event_surprise,
)
from analytics.events import EventTable
from analytics.frame import Panel
from analytics.monitor import Monitor

MIN = 60_000
H = 60 * MIN
DAY = 24 * 60  # buckets
TRAIN = 36 * 60  # 1.5 days of 60-s buckets


def _stops(rng: np.random.Generator, machine: str, rate_h: float, a: int, b: int, reason: str):
    """Poisson stop events at ``rate_h`` per hour between buckets ``a`` and ``b``."""
    n = rng.poisson(rate_h * (b - a) / 60)
    ts = rng.uniform(a * MIN, b * MIN, n).astype(np.int64)
    return [{"machine": machine, "ts": int(t), "kind": "stop", "reason": reason} for t in ts]


def _knitters(fault_rate: float | None, seed: int = 0) -> tuple[Panel, EventTable]:
    """8 always-running machines stopping for LINT at 0.17/h and YARN at 2/h over 3 days.

    With ``fault_rate``, k3's LINT stops run at that rate from hour 50 to hour 60.
    """
    rng = np.random.default_rng(seed)
    m, t = 8, 3 * DAY
    machines = [f"k{i}" for i in range(m)]
    records = []
    for name in machines:
        records += _stops(rng, name, 0.17, 0, t, "LINT")
        records += _stops(rng, name, 2.0, 0, t, "YARN")
    if fault_rate is not None:
        records += _stops(rng, "k3", fault_rate, 50 * 60, 60 * 60, "LINT")
    values = {
        "speed_rpm": 30 + rng.normal(0, 0.2, (m, t)),
        "state_code": np.ones((m, t)),
    }
    panel = Panel(machines, np.arange(t, dtype=np.int64) * MIN, MIN, values)
    return panel, EventTable.from_records(records)


def _cut(panel: Panel, events: EventTable, a: int, b: int) -> tuple[Panel, EventTable]:
    values = {k: v[:, a:b] for k, v in panel.values.items()}
    keep = (events.ts_ms >= a * MIN) & (events.ts_ms < b * MIN)
    return Panel(panel.machines, panel.ts_ms[a:b], MIN, values), events.take(keep)


def _alarms(panel: Panel, events: EventTable | None) -> list[tuple[str, str]]:
    train, train_ev = _cut(panel, events or EventTable.from_records([]), 0, TRAIN)
    test, test_ev = _cut(panel, events or EventTable.from_records([]), TRAIN, len(panel.ts_ms))
    if events is None:
        mon = Monitor().fit({"knit": train})
        return [(a.machine, a.signal) for a in mon.alarms(mon.score({"knit": test}))]
    mon = Monitor().fit({"knit": train}, {"knit": train_ev})
    scores = mon.score({"knit": test}, {"knit": test_ev})
    return [(a.machine, a.signal) for a in mon.alarms(scores)]


def test_counts_fall_in_their_bucket_and_unseen_codes_under_other():
    ev = EventTable.from_records(
        [
            {"machine": "a", "ts": 30_000, "kind": "stop", "reason": "LINT"},
            {"machine": "a", "ts": 125_000, "kind": "alarm", "code": "NEW"},
            {"machine": "b", "ts": 61_000, "kind": "stop", "reason": "LINT"},
            {"machine": "zz", "ts": 61_000, "kind": "stop", "reason": "LINT"},  # unknown
            {"machine": "a", "ts": 10 * MIN, "kind": "stop", "reason": "LINT"},  # off grid
            {"machine": "a", "ts": 0, "kind": "state", "code": "RUN"},  # not counted
        ]
    )
    keys = event_keys(ev.take(np.flatnonzero(ev.kind == "stop")))
    assert keys == ["alarm:(other)", "stop:(other)", "stop:LINT"]
    counts = event_counts(ev, ["a", "b"], np.arange(3) * MIN, MIN, keys)
    assert counts.sum() == 3
    assert counts[0, 0, keys.index("stop:LINT")] == 1
    assert counts[1, 1, keys.index("stop:LINT")] == 1
    assert counts[0, 2, keys.index("alarm:(other)")] == 1


def test_surprise_stays_low_at_the_usual_rate_and_jumps_at_ten_times_it():
    rng = np.random.default_rng(1)
    m, t, w = 20, 20 * 240, 240
    counts = rng.poisson(0.17 / 60, (m, t, 1)).astype(float)
    running = np.ones((m, t), dtype=bool)
    rate = event_baseline(counts, running, MIN)
    pooled = (counts.sum() + 1) / (m * t / 60)
    assert abs(pooled - 0.17) < 0.03 and np.allclose(rate.min(), pooled)  # floored by the class
    assert rate.max() > pooled  # a machine busier in training keeps its own rate
    z = event_surprise(counts, running, MIN, w, rate)
    assert np.nanquantile(z, 0.999) < 4.0  # a healthy machine is rarely surprising
    busy = counts.copy()
    busy[0, -w:, 0] = 0.0
    busy[0, -w::35, 0] = 1.0  # 7 stops in 4 h, where ~0.7 are usual
    assert event_surprise(busy, running, MIN, w, rate)[0, -1, 0] > 4.0


def test_surprise_weighs_exposure_one_stop_in_a_barely_running_hour_is_nothing():
    counts = np.zeros((1, 240, 1))
    counts[0, -1, 0] = 1.0
    running = np.zeros((1, 240), dtype=bool)
    running[0, -60:] = True  # an hour of running: the least a window needs
    z = event_surprise(counts, running, MIN, 240, np.array([[0.17]]))
    assert 0.0 < z[0, -1, 0] < 2.0
    running[0, -59:] = True
    running[0, :-59] = False
    assert np.isnan(event_surprise(counts, running, MIN, 240, np.array([[0.17]]))[0, -1, 0])


def test_a_machine_stopping_for_one_reason_ten_times_as_often_is_alarmed():
    panel, events = _knitters(fault_rate=2.5)
    found = _alarms(panel, events)
    assert ("k3", "stop:LINT:surprise") in found
    assert {m for m, _ in found} == {"k3"}
    # The same machines, panels unchanged, no events: nothing to see.
    assert _alarms(panel, None) == []


def test_machines_stopping_at_their_usual_rates_raise_nothing():
    for seed in (2, 3):
        panel, events = _knitters(fault_rate=None, seed=seed)
        assert _alarms(panel, events) == []


def test_step_changes_mark_the_bucket_and_the_next_as_transitions():
    ev = EventTable.from_records(
        [
            {"machine": "d1", "ts": 2 * MIN + 5_000, "kind": "step", "code": "HEAT"},
            {"machine": "d0", "ts": 7 * MIN, "kind": "alarm", "code": "X"},  # not a step
        ]
    )
    marks = event_marks(ev, ["d0", "d1"], np.arange(6) * MIN, MIN, after=1)
    assert marks.tolist() == [[False] * 6, [False, False, True, True, False, False]]
    assert event_marks(ev, ["d0", "d1"], np.arange(6) * MIN, MIN, after=0)[1].sum() == 1


def test_the_monitor_does_not_judge_a_bucket_holding_a_step_change():
    rng = np.random.default_rng(4)
    m, t = 4, 400
    panel = Panel(
        [f"d{i}" for i in range(m)],
        np.arange(t, dtype=np.int64) * MIN,
        MIN,
        {"temp_c": 60 + rng.normal(0, 0.3, (m, t)), "state_code": np.ones((m, t))},
    )
    steps = EventTable.from_records(
        [{"machine": "d2", "ts": 300 * MIN + 1, "kind": "step", "code": "FILL"}]
    )
    mon = Monitor().fit({"jet": panel}, {"jet": steps})
    judged = mon.score({"jet": panel}, {"jet": steps})["jet"].judged
    assert not judged[2, 300] and not judged[2, 301] and judged[2, 302]
    assert judged[1, 300]
    off = Monitor(step_transitions=False).fit({"jet": panel}, {"jet": steps})
    assert off.score({"jet": panel}, {"jet": steps})["jet"].judged[2, 300]
