import numpy as np
import pytest

from analytics.events import EventTable
from analytics.intervals import (
    latest_index,
    state_seconds,
    state_seconds_spans,
    state_seconds_windows,
    stop_class,
    stop_table,
)
from analytics.shifts import shift_windows

H, MIN = 3_600_000, 60_000
RUN, STOP, WAIT, OFF = 1, 2, 5, 0


def state(machine, ts, code, **extra):
    return {"machine": machine, "ts": ts, "kind": "state", "code": code, **extra}


def stop(machine, ts, reason, code="STOP_PROCESS"):
    return {"machine": machine, "ts": ts, "kind": "stop", "code": code, "reason": reason}


def test_interval_spanning_two_shifts_is_split():
    # RUN from 05:30 to 06:45, shift boundary at 06:00: 30 min in the first window,
    # 45 min in the second; then WAIT to the end of the second window (07:00): 15 min.
    ev = EventTable.from_records(
        [state("a", 5 * H + 30 * MIN, "RUN"), state("a", 6 * H + 45 * MIN, "WAIT")]
    )
    s = state_seconds_windows(ev, ["a"], np.array([5 * H, 6 * H]), np.array([6 * H, 7 * H]))
    assert s[0, :, RUN].tolist() == [1800.0, 2700.0]
    assert s[0, :, WAIT].tolist() == [0.0, 900.0]
    # Before 05:30 nothing is known: the first window holds only 30 min of state time.
    assert s[0, 0].sum() == 1800.0


def test_initial_state_and_now_ms():
    ev = EventTable.from_records(
        [state("a", 10 * MIN, "STOP_PROCESS"), state("a", 20 * MIN, "RUN")]
    )
    # Initial RUN from 0 to 10 min, STOP 10-20 min, RUN 20 min to now (50 min);
    # the window [0, 60 min) stops counting at now.
    s = state_seconds(ev, ["a"], 0, 60 * MIN, now_ms=50 * MIN, initial=np.array([RUN]))
    assert s[0, RUN] == (10 + 30) * 60.0
    assert s[0, STOP] == 600.0
    assert s.sum() == 50 * 60.0


def test_unknown_machines_and_non_state_events_are_ignored():
    ev = EventTable.from_records(
        [
            state("a", 0, "RUN"),
            state("zz", 0, "WAIT"),
            stop("a", 0, "WARP"),
            state("b", 30 * MIN, "SETUP"),
        ]
    )
    s = state_seconds(ev, ["a", "b"], 0, H)
    assert s[0, RUN] == 3600.0 and s[0].sum() == 3600.0
    assert s[1, 4] == 1800.0 and s[1].sum() == 1800.0


def test_dst_night_shift_of_seven_hours():
    # A loom running through the Berlin spring-forward night: shift C of 2026-03-28
    # (21:00 UTC to 04:00 UTC) holds 7 h = 25,200 s of RUN, shifts A/B 8 h each.
    start = 1_774_674_000_000  # 2026-03-28 05:00 UTC = 06:00 CET
    w = shift_windows("Europe/Berlin", "3x8", start, start + 23 * H)
    ev = EventTable.from_records([state("a", start - H, "RUN")])
    s = state_seconds_windows(ev, ["a"], w.start_ms, w.end_ms)
    assert s[0, :, RUN].tolist() == [28_800.0, 28_800.0, 25_200.0]


def naive_state_seconds(records, machines, starts, ends, now_ms):
    out = np.zeros((len(machines), len(starts), 8))
    for i, m in enumerate(machines):
        evs = sorted((r["ts"], r["code"]) for r in records if r["machine"] == m)
        codes = {"RUN": 1, "STOP_PROCESS": 2, "WAIT": 5, "OFF_NOPLAN": 0}
        for k, (t, code) in enumerate(evs):
            end = evs[k + 1][0] if k + 1 < len(evs) else now_ms
            for w, (a, b) in enumerate(zip(starts, ends, strict=True)):
                overlap = max(0, min(end, b, now_ms) - max(t, a))
                out[i, w, codes[code]] += overlap / 1000
    return out


def test_matches_a_per_interval_loop_on_random_events():
    rng = np.random.default_rng(7)
    names = ["RUN", "STOP_PROCESS", "WAIT", "OFF_NOPLAN"]
    records = []
    for m in ("a", "b", "c"):
        times = np.sort(rng.choice(10 * H, size=40, replace=False))
        records += [state(m, int(t), names[rng.integers(4)]) for t in times]
    starts = np.arange(0, 10 * H, 2 * H) + 17
    ends = starts + 2 * H
    got = state_seconds_windows(
        EventTable.from_records(records), ["a", "b", "c"], starts, ends, now_ms=9 * H
    )
    want = naive_state_seconds(records, ["a", "b", "c"], starts, ends, 9 * H)
    assert got == pytest.approx(want)


def test_spans_one_per_batch():
    ev = EventTable.from_records([state("a", 0, "RUN"), state("b", 0, "WAIT")])
    s = state_seconds_spans(
        ev, ["a", "b"], np.array([0, 1]), np.array([0, 60_000]), np.array([30_000, 90_000])
    )
    assert s[:, RUN].tolist() == [30.0, 0.0]
    assert s[:, WAIT].tolist() == [0.0, 30.0]


def test_latest_index_stays_within_machine():
    k = latest_index(
        np.array([0, 0, 2]), np.array([5, 9, 1]), np.array([1, 2, 0]), np.array([100, 0, 7])
    )
    assert k.tolist() == [-1, -1, 0]


def test_stop_table_durations_and_classes():
    ev = EventTable.from_records(
        [
            state("l", 0, "RUN"),
            state("l", 1000, "STOP_PROCESS"),
            stop("l", 1000, "WARP"),
            state("l", 151_000, "RUN"),  # warp repair: 150 s
            state("l", 200_000, "STOP_PROCESS"),
            stop("l", 200_000, "WEFT_SHORT"),
            state("l", 242_000, "RUN"),  # weft repair: 42 s
            state("l", 300_000, "BREAKDOWN"),
            stop("l", 300_000, "MECH", code="BREAKDOWN"),
        ]
    )
    t = stop_table(ev, "loom_airjet")
    assert t.cls.tolist() == ["warp", "weft", "other"]
    assert t.code.tolist() == ["STOP_PROCESS", "STOP_PROCESS", "BREAKDOWN"]
    assert t.duration_s[:2].tolist() == [150.0, 42.0]
    assert np.isnan(t.duration_s[2])  # still broken down
    # With now_ms the open breakdown lasts until now: 400 s - 300 s.
    assert stop_table(ev, "loom_airjet", now_ms=400_000).duration_s[2] == 100.0


def test_knitting_stop_classes():
    reasons = np.array(["YARN_IN", "YARN_OUT", "LYCRA", "NEEDLE", "HOLE", "ROLL_DOFF"])
    assert stop_class(reasons, "knit").tolist() == [
        "yarn",
        "yarn",
        "yarn",
        "needle",
        "other",
        "other",
    ]
    assert stop_class(np.array(["WARP"]), "dye").tolist() == ["other"]
