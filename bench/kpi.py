"""KPI throughput: shift KPIs of a day of 1-Hz loom data, vectorised vs a per-machine loop.

Synthetic loom-like data (not the simulator, so the size is free): per machine a day of
1-Hz samples of ``speed_rpm`` and ``picks_total`` (with controller restarts and lost
samples) and the state/stop events of run and stop episodes (warp/weft/other). For
every machine and 3x8 shift (Asia/Dhaka) both implementations compute: picks from
counter deltas, seconds per state, stops per class with repair times, running
efficiency, stops per 10^5 picks, mean running speed, performance and OEE.

- vectorised: ``analytics.counters`` / ``intervals`` / ``kpi`` over chunks of machines;
- loop: a straightforward per-machine Python loop over samples and events, timed on a
  subset of machines and scaled to the fleet (said so in the output).

A sample is one machine-second (one 1-Hz telemetry row: speed and picks); the event
table is input, built before timing. Both run single-threaded (BLAS/OpenMP threads = 1)
in the same process, and their numbers are compared. Usage::

    .venv/bin/python bench/kpi.py [--machines 1000] [--hours 24] [--chunk 50] [--loop-machines 4]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

from analytics.counters import counter_delta  # noqa: E402
from analytics.events import EventTable  # noqa: E402
from analytics.intervals import state_seconds_windows, stop_table  # noqa: E402
from analytics.kpi import loom  # noqa: E402
from analytics.kpi.oee import (  # noqa: E402
    availability,
    oee,
    performance,
    planned_seconds,
    ratio,
)
from analytics.shifts import ShiftWindows, shift_windows, window_sums  # noqa: E402

START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC = 06:00 in Dhaka (shift A)
CLASSES = ("warp", "weft", "other")
REASONS = np.array(["WARP", "WEFT_SHORT", "DOFF"])
COLUMNS = ("picks", "run_s", "planned_s", "stops", "efficiency", "stops_per_1e5", "speed")
COLUMNS += ("oee",)


@dataclass
class Chunk:
    """Synthetic data of some machines: (M, T) samples and their events."""

    machines: list[str]
    ts_ms: np.ndarray
    speed: np.ndarray
    picks: np.ndarray
    events: EventTable
    nominal: np.ndarray


def _episodes(rng: np.random.Generator, seconds: int) -> tuple[list, list, list]:
    """Alternating run/stop episodes of one machine: (event s, kind, code, reason)."""
    times, kinds, codes, reasons = [0], ["state"], ["RUN"], [""]
    t = 0.0
    while True:
        t += rng.exponential(420.0)
        if t >= seconds:
            break
        reason = str(rng.choice(REASONS, p=(0.35, 0.55, 0.10)))
        times += [int(t), int(t)]
        kinds += ["state", "stop"]
        codes += ["STOP_PROCESS", "STOP_PROCESS"]
        reasons += ["", reason]
        t += rng.lognormal(np.log(70.0), 0.7)
        if t >= seconds:
            break
        times.append(int(t))
        kinds.append("state")
        codes.append("RUN")
        reasons.append("")
    return times, kinds, codes, reasons


def make_chunk(rng: np.random.Generator, first: int, n: int, seconds: int) -> Chunk:
    """``n`` machines of synthetic 1-Hz loom data from ``START_MS`` (not timed)."""
    machines = [f"l{first + i:05d}" for i in range(n)]
    cols: dict[str, list] = {"ts": [], "machine": [], "kind": [], "code": [], "reason": []}
    running = np.zeros((n, seconds), dtype=bool)
    for i, name in enumerate(machines):
        times, kinds, codes, reasons = _episodes(rng, seconds)
        cols["ts"] += [START_MS + 1000 * t for t in times]
        cols["machine"] += [name] * len(times)
        cols["kind"] += kinds
        cols["code"] += codes
        cols["reason"] += reasons
        state_times = [t for t, k in zip(times, kinds, strict=True) if k == "state"]
        bounds = [*state_times, seconds]
        for k in range(0, len(state_times), 2):  # RUN episodes are the even state events
            running[i, bounds[k] : bounds[k + 1]] = True
    nominal = rng.uniform(600.0, 1000.0, n).round()
    speed = np.where(running, nominal[:, None], 0.0) + rng.normal(0, 2.0, (n, seconds)) * running
    picks = np.floor(np.cumsum(speed / 60.0, axis=1)) + rng.integers(0, 10**7, n)[:, None]
    for i in np.flatnonzero(rng.random(n) < 0.3):  # a controller restart on 30 % of machines
        at = int(rng.integers(1, seconds))
        picks[i, at:] -= picks[i, at - 1]
    picks[rng.random((n, seconds)) < 0.001] = np.nan  # 0.1 % lost samples
    for i in np.flatnonzero(rng.random(n) < 0.2):  # and a 5-min outage on 20 %
        at = int(rng.integers(0, seconds - 300))
        picks[i, at : at + 300] = np.nan
    n_ev = len(cols["ts"])
    events = EventTable(
        ts_ms=np.array(cols["ts"], dtype=np.int64),
        machine=np.array(cols["machine"], dtype=object),
        kind=np.array(cols["kind"], dtype=object),
        code=np.array(cols["code"], dtype=object),
        reason=np.array(cols["reason"], dtype=object),
        batch_id=np.full(n_ev, "", dtype=object),
        duration_s=np.full(n_ev, np.nan),
        feeder=np.full(n_ev, np.nan),
        step_no=np.full(n_ev, np.nan),
    )
    ts = START_MS + 1000 * np.arange(seconds, dtype=np.int64)
    return Chunk(machines, ts, speed, picks, events, nominal)


def vectorised(chunk: Chunk, w: ShiftWindows, now_ms: int) -> dict[str, np.ndarray]:
    """Every KPI of every machine and shift, (M, W) arrays."""
    picks = window_sums(counter_delta(chunk.picks), chunk.ts_ms, w.start_ms, w.end_ms)
    state_s = state_seconds_windows(
        chunk.events, chunk.machines, w.start_ms, w.end_ms, now_ms=now_ms
    )
    stops = stop_table(chunk.events, "loom_airjet", now_ms=now_ms)
    counts, _ = loom.stop_counts(stops, chunk.machines, w.start_ms, w.end_ms, CLASSES)
    moving = chunk.speed > 0
    speed = ratio(
        window_sums(np.where(moving, chunk.speed, 0.0), chunk.ts_ms, w.start_ms, w.end_ms),
        window_sums(moving, chunk.ts_ms, w.start_ms, w.end_ms),
    )
    run, planned = state_s[..., 1], planned_seconds(state_s)
    n_stops = counts.sum(axis=2)
    p = performance(ratio(picks, run / 60.0), chunk.nominal[:, None])
    return {
        "picks": picks,
        "run_s": run,
        "planned_s": planned,
        "stops": n_stops,
        "efficiency": loom.efficiency(run, state_s[..., 2]),
        "stops_per_1e5": loom.stops_per_1e5(n_stops, picks),
        "speed": speed,
        "oee": oee(availability(run, planned), p),
    }


def _loop_picks(values: list[float], ts: list[int], starts: list[int], ends: list[int]) -> list:
    out = [0.0] * len(starts)
    last = None
    w = 0
    for t, v in zip(ts, values, strict=True):
        if math.isnan(v):  # lost sample
            continue
        delta = 0.0 if last is None else (v - last if v >= last else v)
        last = v
        while w < len(starts) and t >= ends[w]:
            w += 1
        if w < len(starts) and t >= starts[w]:
            out[w] += delta
    return out


def _loop_machine(chunk: Chunk, i: int, w: ShiftWindows, now_ms: int) -> dict[str, list]:
    """The same KPIs for one machine, the straightforward way."""
    starts, ends = w.start_ms.tolist(), w.end_ms.tolist()
    ts = chunk.ts_ms.tolist()
    picks = _loop_picks(chunk.picks[i].tolist(), ts, starts, ends)
    name = chunk.machines[i]
    ev = [k for k in range(len(chunk.events)) if chunk.events.machine[k] == name]
    states = [
        (int(chunk.events.ts_ms[k]), chunk.events.code[k])
        for k in ev
        if chunk.events.kind[k] == "state"
    ]
    run = [0.0] * len(starts)
    stop_s = [0.0] * len(starts)
    for k, (t, code) in enumerate(states):
        end = states[k + 1][0] if k + 1 < len(states) else now_ms
        for j in range(len(starts)):
            overlap = max(0, min(end, ends[j], now_ms) - max(t, starts[j])) / 1000
            if code == "RUN":
                run[j] += overlap
            elif code == "STOP_PROCESS":
                stop_s[j] += overlap
    stops = [0.0] * len(starts)
    for k in ev:
        if chunk.events.kind[k] == "stop":
            t = int(chunk.events.ts_ms[k])
            for j in range(len(starts)):
                if starts[j] <= t < ends[j]:
                    stops[j] += 1
    speed_sum, speed_n = [0.0] * len(starts), [0] * len(starts)
    for t, s in zip(ts, chunk.speed[i].tolist(), strict=True):
        for j in range(len(starts)):
            if s > 0 and starts[j] <= t < ends[j]:
                speed_sum[j] += s
                speed_n[j] += 1
    out: dict[str, list] = {c: [] for c in COLUMNS}
    for j in range(len(starts)):
        planned = run[j] + stop_s[j]
        nan = float("nan")
        rate = picks[j] / (run[j] / 60) if run[j] > 0 else nan
        perf = min(rate / chunk.nominal[i], 1.0) if not math.isnan(rate) else nan
        out["picks"].append(picks[j])
        out["run_s"].append(run[j])
        out["planned_s"].append(planned)
        out["stops"].append(stops[j])
        out["efficiency"].append(run[j] / planned if planned > 0 else nan)
        out["stops_per_1e5"].append(1e5 * stops[j] / picks[j] if picks[j] > 0 else nan)
        out["speed"].append(speed_sum[j] / speed_n[j] if speed_n[j] else nan)
        out["oee"].append(run[j] / planned * perf if planned > 0 else nan)
    return out


def main() -> None:
    """Time both implementations, check they agree, print samples/s/core and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--chunk", type=int, default=50, help="machines per vectorised call")
    parser.add_argument("--loop-machines", type=int, default=4, help="machines timed in the loop")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    seconds = int(args.hours * 3600)
    now_ms = START_MS + 1000 * seconds
    w = shift_windows("Asia/Dhaka", "3x8", START_MS, now_ms)
    rng = np.random.default_rng(args.seed)
    print(
        f"{args.machines} machines x {seconds:,} s at 1 Hz, {len(w)} shifts, single thread",
        flush=True,
    )
    fast_s, samples, first = 0.0, 0, None
    for lo in range(0, args.machines, args.chunk):
        chunk = make_chunk(rng, lo, min(args.chunk, args.machines - lo), seconds)
        started = time.perf_counter()
        result = vectorised(chunk, w, now_ms)
        fast_s += time.perf_counter() - started
        samples += chunk.picks.size
        first = (chunk, result) if first is None else first
        print(f"  progress: vectorised {samples:,} samples in {fast_s:.2f} s", flush=True)
    chunk, result = first
    loop_n = min(args.loop_machines, len(chunk.machines))
    started = time.perf_counter()
    loops = [_loop_machine(chunk, i, w, now_ms) for i in range(loop_n)]
    loop_s = time.perf_counter() - started
    for i, got in enumerate(loops):
        for c in COLUMNS:
            if not np.allclose(result[c][i], got[c], rtol=1e-9, equal_nan=True):
                raise SystemExit(f"MISMATCH machine {i} {c}: {result[c][i]} vs {got[c]}")
    fast = samples / fast_s
    slow = loop_n * seconds / loop_s
    print(f"vectorised  {fast:>14,.0f} samples/s/core  ({samples:,} samples in {fast_s:.2f} s)")
    print(
        f"loop        {slow:>14,.0f} samples/s/core  (timed on {loop_n} machines: "
        f"{loop_s:.2f} s, scaled: {loop_s / loop_n * args.machines:,.0f} s for the fleet)"
    )
    print(
        f"ratio       {fast / slow:>14,.1f}x   results equal on the {loop_n} looped machines "
        f"({len(COLUMNS)} KPIs x {len(w)} shifts)"
    )


if __name__ == "__main__":
    main()
