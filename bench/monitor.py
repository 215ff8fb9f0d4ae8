"""Speed of the whole anomaly pipeline (``analytics.monitor.Monitor``) on a large fleet.

The service scores 60-s panels, so this is what it costs per machine-day: a simulated day
of the default scenario's weaving mill (48 air-jet looms, 1 Hz, reduced to 60-s buckets
in memory: ``analytics.simdata``) is tiled to ``--machines`` looms (each copy shifted in
time and scaled a little, so no two machines are equal), then the monitor learns from
the first ``--train-hours`` and scores the whole day: all looms in one call, against the
straightforward way, one monitor per machine in a loop (timed on ``--loop-machines``
machines and scaled; say so below). The two are not the same model: the class monitor
calibrates each signal across all machines of the class, a lone machine only on itself,
so their scores differ (printed at the end) and the loop is a cost reference only.
Correlated-hall scoring needs a hall of machines, so it is switched off in both.
Figures are in buckets/s and in the 1-Hz samples/s they summarise (x 60),
single-threaded; simulating and tiling are not timed.

Usage::

    .venv/bin/python bench/monitor.py [--machines 1000] [--loop-machines 10]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from analytics.frame import Panel  # noqa: E402
from analytics.monitor import Monitor  # noqa: E402
from analytics.simdata import simulate  # noqa: E402

SAMPLES_PER_BUCKET = 60


def tiled(panel: Panel, machines: int, rng: np.random.Generator) -> Panel:
    """``machines`` looms made from the simulated ones: rolled in time, scaled by +-2 %."""
    n = len(panel.machines)
    source = np.arange(machines) % n
    shifts = rng.integers(0, len(panel.ts_ms), machines)
    scale = rng.uniform(0.98, 1.02, machines)[:, None]
    values = {}
    for name, matrix in panel.values.items():
        rows = np.stack([np.roll(matrix[s], k) for s, k in zip(source, shifts, strict=True)])
        counter = name.split(":")[0].endswith("_total") or name.startswith("state_code")
        values[name] = rows if counter else rows * scale
    names = [f"l{i:05d}" for i in range(machines)]
    return Panel(names, panel.ts_ms, panel.step_ms, values)


def one_machine(panel: Panel, i: int) -> Panel:
    """Machine ``i`` of ``panel`` alone."""
    return Panel(
        [panel.machines[i]],
        panel.ts_ms,
        panel.step_ms,
        {k: v[i : i + 1] for k, v in panel.values.items()},
    )


def main() -> None:
    """Time fit + score, vectorised and per machine; print figures and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--loop-machines", type=int, default=10)
    parser.add_argument("--train-hours", type=float, default=6.0)
    args = parser.parse_args()
    print("simulating one day of f01 (48 air-jet looms, 1 Hz) ...", flush=True)
    run = simulate("default", days=1, factories=["f01"], progress=None)
    fleet = tiled(run.panels("f01")["loom_airjet"], args.machines, np.random.default_rng(1))
    buckets = fleet["speed_rpm"].size
    train = int(args.train_hours * 60)
    head = Panel(
        fleet.machines,
        fleet.ts_ms[:train],
        fleet.step_ms,
        {k: v[:, :train] for k, v in fleet.values.items()},
    )
    params = {"min_hall_machines": 10**9}
    print(
        f"{args.machines} looms x {len(fleet.ts_ms)} buckets, {len(fleet.values)} panel columns",
        flush=True,
    )
    began = time.perf_counter()
    monitor = Monitor(**params).fit({"loom_airjet": head})
    scores = monitor.score({"loom_airjet": fleet})["loom_airjet"]
    vectorised_s = time.perf_counter() - began
    print(f"  vectorised done in {vectorised_s:.1f} s", flush=True)
    began = time.perf_counter()
    looped = []
    for i in range(args.loop_machines):
        single = Monitor(**params).fit({"loom_airjet": one_machine(head, i)})
        looped.append(single.score({"loom_airjet": one_machine(fleet, i)})["loom_airjet"].score[0])
        print(f"  loop machine {i + 1}/{args.loop_machines}", flush=True)
    loop_s = (time.perf_counter() - began) / args.loop_machines * args.machines
    rate = buckets / vectorised_s
    loop_rate = buckets / loop_s
    print(
        f"vectorised  {rate:12,.0f} buckets/s/core = "
        f"{rate * SAMPLES_PER_BUCKET:14,.0f} samples/s/core"
    )
    print(
        f"loop        {loop_rate:12,.0f} buckets/s/core = {loop_rate * SAMPLES_PER_BUCKET:14,.0f} "
        f"samples/s/core (timed on {args.loop_machines} machines, scaled)"
    )
    print(f"ratio       {rate / loop_rate:12.1f}x")
    same = np.nanmax(np.abs(np.stack(looped) - scores.score[: args.loop_machines]))
    print(f"max |score difference| vectorised vs loop on the looped machines: {same:.2e}")


if __name__ == "__main__":
    main()
