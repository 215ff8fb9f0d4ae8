"""Simulator speed: field values generated per second in fast-forward, on one core.

For each scenario the vectorised fleet (one numpy step per machine group) runs beside a
plain per-machine loop of the same model in the same run: the same scenario, calendar,
fault plan and group code, but every group holds a single machine, so each tick is a
Python loop over machines. Usage::

    .venv/bin/python bench/simulator.py [--scenarios default large] [--ticks 300]
"""

from __future__ import annotations

import argparse
import time

from simulators.fleet import Fleet, build_group
from simulators.scenario import Scenario, load_scenario

START_MS = 1_767_168_000_000


def fleets(scenario: Scenario, per_machine: bool) -> list[Fleet]:
    """One fleet per factory; with ``per_machine`` every group is split into single machines."""
    built = []
    for factory in scenario.factories:
        fleet = Fleet(scenario, factory.id)
        if per_machine:
            fleet.groups = [
                build_group(hall_group, [machine], fleet.rng)
                for hall_group in scenario.layout(factory.id)
                for machine in hall_group.addresses(scenario.cluster, factory.id)
            ]
        built.append(fleet)
    return built


def values_per_second(scenario: Scenario, per_machine: bool, ticks: int) -> float:
    """Field values per second over ``ticks`` 1-s ticks of every factory (after warm-up)."""
    all_fleets = fleets(scenario, per_machine)
    for fleet in all_fleets:
        fleet.step(START_MS)
    values, started = 0, time.perf_counter()
    for tick in range(1, ticks + 1):
        for fleet in all_fleets:
            for reading in fleet.step(START_MS + tick * 1000):
                values += len(reading.machines) * len(reading.fields)
    return values / (time.perf_counter() - started)


def main() -> None:
    """Print values/s for the vectorised fleet and the per-machine loop, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", nargs="+", default=["default", "large"])
    parser.add_argument("--ticks", type=int, default=300, help="ticks for the vectorised fleet")
    parser.add_argument("--loop-ticks", type=int, default=20, help="ticks for the loop")
    args = parser.parse_args()
    for name in args.scenarios:
        scenario = load_scenario(name)
        machines = scenario.machine_count()
        fast = values_per_second(scenario, False, args.ticks)
        slow = values_per_second(scenario, True, args.loop_ticks)
        print(
            f"{name:<8} {machines:>5} machines  vectorised {fast:>12,.0f} values/s  "
            f"per-machine loop {slow:>10,.0f} values/s  ratio {fast / slow:>6.1f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
