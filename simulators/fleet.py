"""One simulated factory of a scenario: its machine groups, shift calendar and faults.

A :class:`Fleet` is what a gateway's simulator input reads. Every tick it asks the
factory's calendar whether production is planned, asks the fault injector how each group
deviates, steps every group (all machines of a type at once), lets the injector falsify
readings for instrument faults and add the tick's fault labels, and returns one
:class:`~gateway.inputs.base.Reading` per group.

Example
-------
>>> from simulators.scenario import load_scenario
>>> fleet = Fleet(load_scenario("default"), "f02")
>>> readings = fleet.step(1_767_168_000_000)
>>> sorted({r.machine_type for r in readings})
['hall_env', 'knit_circular']
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from gateway.inputs.base import Reading
from millwatch.contract import MachineAddress
from simulators.articles import knit_articles, loom_articles
from simulators.dyeing import DyeGroup
from simulators.faults import FaultInjector, FaultSpec
from simulators.hall import HallEnvGroup
from simulators.knitting import KnitGroup
from simulators.loom import LoomGroup
from simulators.model import MachineGroup
from simulators.scenario import ArticleConfig, FaultConfig, HallGroup, Scenario
from simulators.stenter import StenterGroup

__all__ = ["Fleet", "build_group", "fault_plan"]


def build_group(
    hall_group: HallGroup,
    machines: list[MachineAddress],
    rng: np.random.Generator,
    utc_offset_h: float = 0.0,
    articles: Sequence[ArticleConfig] = (),
) -> MachineGroup:
    """The machine-group model for one hall's machines of one type (and its articles)."""
    machine_type = hall_group.machine_type
    if machine_type in ("loom_airjet", "loom_rapier"):
        styles = loom_articles(machine_type, articles) if articles else None
        return LoomGroup(machine_type, machines, rng, styles)
    if machine_type == "knit_circular":
        return KnitGroup(machines, rng, knit_articles(articles) if articles else None)
    if machine_type == "dye_jet":
        return DyeGroup(machines, rng)
    if machine_type == "stenter":
        return StenterGroup(machines, rng)
    if machine_type == "hall_env":
        return HallEnvGroup(machines, rng, utc_offset_h)
    raise ValueError(f"no simulator model for machine type {machine_type!r}")


def fault_plan(scenario: Scenario, factory: str) -> list[FaultSpec]:
    """The scenario's fault entries that apply to ``factory``, as injector specs."""
    return [_spec(f) for f in scenario.faults if f.factories is None or factory in f.factories]


def _spec(fault: FaultConfig) -> FaultSpec:
    return FaultSpec(
        fault.type,
        machine_types=tuple(fault.machine_types),
        per_machine_week=fault.per_machine_week,
        count=fault.count,
        severity=fault.severity,
        duration_h=fault.duration_h,
        scope=fault.scope,
    )


class Fleet:
    """Every machine of one scenario factory, stepped together tick by tick.

    Parameters
    ----------
    scenario, factory
        The scenario and the id of the factory in it to simulate.
    cluster, address_factory
        Ids published in the machines' addresses; default the scenario's. Tests and
        benchmarks run one scenario factory under several factory ids.
    seed
        Overrides the scenario's seed; each factory draws from its own stream.
    end_ms
        End of the run when known (a backfill): faults planned with ``count`` spread
        their onsets over [first tick, end).
    faults
        False leaves the fault plan out (a control run).
    """

    def __init__(
        self,
        scenario: Scenario,
        factory: str,
        *,
        cluster: str | None = None,
        address_factory: str | None = None,
        seed: int | None = None,
        end_ms: int | None = None,
        faults: bool = True,
    ) -> None:
        index = [f.id for f in scenario.factories].index(factory)
        entropy = scenario.seed if seed is None else seed
        self.rng = np.random.default_rng([entropy, index])
        # Faults draw from their own stream, so a fault plan never shifts the machines' data.
        self.fault_rng = np.random.default_rng([entropy, index, 99])
        self.factory = factory
        self.calendar = scenario.calendar(factory)
        self.step_s = scenario.step_s
        self.end_ms = end_ms
        self.plan = fault_plan(scenario, factory) if faults else []
        offset_h = _utc_offset_h(self.calendar.timezone)
        ids = (cluster or scenario.cluster, address_factory or factory)
        self.groups = [
            build_group(
                hg, hg.addresses(*ids), self.rng, offset_h, _articles(scenario, factory, hg)
            )
            for hg in scenario.layout(factory)
        ]
        self.injector: FaultInjector | None = None
        self.last_ts_ms: int | None = None

    @property
    def machines(self) -> list[MachineAddress]:
        """Every simulated machine's address (hall climate sensors included)."""
        return [m for g in self.groups for m in g.machines]

    def step(self, ts_ms: int) -> list[Reading]:
        """Advance every group to ``ts_ms`` (UTC epoch ms) and read it once."""
        if self.last_ts_ms is None:
            dt = self.step_s
            targets = [(g.machine_type, g.machines) for g in self.groups]
            self.injector = FaultInjector(
                self.plan, targets, self.fault_rng, ts_ms, self.end_ms, id_prefix=self.factory
            )
        else:
            dt = max((ts_ms - self.last_ts_ms) / 1000, 0.0)
        self.last_ts_ms = ts_ms
        if self.injector is None:  # pragma: no cover - set on the first tick above
            raise RuntimeError("fleet stepped before its fault injector was built")
        state = self.calendar.state_at(ts_ms)
        effects = self.injector.effects(ts_ms, dt)
        readings = [
            group.step(ts_ms, dt, state.planned, state.maintenance, effect)
            for group, effect in zip(self.groups, effects, strict=True)
        ]
        self.injector.finish(ts_ms, readings)
        return readings

    def labels(self) -> list[dict[str, Any]]:
        """Every fault label scheduled so far, for evaluations."""
        return self.injector.labels_table() if self.injector else []


def _articles(scenario: Scenario, factory: str, hall_group: HallGroup) -> list[ArticleConfig]:
    if hall_group.machine_type == "hall_env":
        return []
    return scenario.articles(factory, hall_group.machine_type)


def _utc_offset_h(timezone: str) -> float:
    offset = datetime.now(UTC).astimezone(ZoneInfo(timezone)).utcoffset()
    return offset.total_seconds() / 3600 if offset else 0.0
