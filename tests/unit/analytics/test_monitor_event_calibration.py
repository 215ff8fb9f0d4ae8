"""A rare alarm code firing again and again: its surprise must be able to reach an alarm."""

from __future__ import annotations

import numpy as np

from analytics.events import EventTable
from analytics.frame import Panel
from analytics.monitor import Monitor

MIN = 60_000
TRAIN = 36 * 60


def _machines(burst: bool, seed: int = 0) -> tuple[Panel, EventTable]:
    """10 running machines over 3 days, each raising alarm X in two pairs 30 min apart.

    With ``burst``, m3 raises X ten times within 2.5 hours from hour 55 (a dosing
    that misses its target batch after batch).
    """
    rng = np.random.default_rng(seed)
    m, t = 10, 3 * 24 * 60
    machines = [f"m{i}" for i in range(m)]
    records = []
    for name in machines:
        for start in rng.uniform(0, t * MIN, 2):  # two pairs of alarms 30 min apart
            for ts in (start, start + 30 * MIN):
                records.append({"machine": name, "ts": int(ts), "kind": "alarm", "code": "X"})
    if burst:
        for minute in range(0, 150, 15):
            ts = (55 * 60 + minute) * MIN + 1_000
            records.append({"machine": "m3", "ts": ts, "kind": "alarm", "code": "X"})
    values = {"temp_c": 50 + rng.normal(0, 0.2, (m, t)), "state_code": np.ones((m, t))}
    panel = Panel(machines, np.arange(t, dtype=np.int64) * MIN, MIN, values)
    return panel, EventTable.from_records(records)


def _fit(
    panel: Panel, events: EventTable, kinds: tuple[str, ...]
) -> tuple[Monitor, Panel, EventTable]:
    def part(a: int, b: int) -> tuple[Panel, EventTable]:
        values = {k: v[:, a:b] for k, v in panel.values.items()}
        keep = (events.ts_ms >= a * MIN) & (events.ts_ms < b * MIN)
        return Panel(panel.machines, panel.ts_ms[a:b], MIN, values), events.take(keep)

    (train, train_ev), (test, test_ev) = part(0, TRAIN), part(TRAIN, len(panel.ts_ms))
    return Monitor(calib_quiet_kinds=kinds).fit({"jet": train}, {"jet": train_ev}), test, test_ev


def _alarms(panel: Panel, events: EventTable, quiet: bool) -> list[tuple[str, str]]:
    mon, test, test_ev = _fit(panel, events, ("alarm",) if quiet else ())
    return [(a.machine, a.signal) for a in mon.alarms(mon.score({"jet": test}, {"jet": test_ev}))]


def _gains(panel: Panel, events: EventTable, kinds: tuple[str, ...]) -> list[float]:
    model = _fit(panel, events, kinds)[0].models_["jet"]
    return [gain for _, gain in model.smooth[model.names.index("alarm:X:surprise")]]


def test_a_burst_of_a_rare_alarm_code_is_alarmed_once_quiet_buckets_calibrate_it():
    panel, events = _machines(burst=True)
    assert ("m3", "alarm:X:surprise") in _alarms(panel, events, quiet=True)
    assert {m for m, _ in _alarms(panel, events, quiet=True)} == {"m3"}
    # Calibrated on its positive buckets only, the healthy pairs blunt the code's gain.
    blunt, fair = _gains(panel, events, ()), _gains(panel, events, ("alarm",))
    assert min(blunt) < 0.6 and all(f > b for f, b in zip(fair, blunt, strict=True))
    assert _gains(panel, events, ("stop",)) == blunt  # only the kinds named
    assert _alarms(panel, events, quiet=False) == []  # the same burst, blunted: unseen


def test_the_rare_code_at_its_usual_rate_raises_nothing():
    for seed in (1, 2, 3):
        panel, events = _machines(burst=False, seed=seed)
        assert _alarms(panel, events, quiet=True) == []
