"""Input plugin that reads a simulated factory instead of real controllers."""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway import registry
from gateway.inputs.base import ConfigError, Reading
from millwatch.contract import MachineAddress
from simulators.fleet import Fleet
from simulators.scenario import Scenario, ScenarioError, load_scenario

log = logging.getLogger("gateway.inputs.simulator")


class SimulatorConfig(BaseModel):
    """The ``[inputs.simulator]`` table; see sample.toml beside this file."""

    model_config = ConfigDict(extra="forbid")

    scenario: str = "default"
    factory: str | None = None
    machines: dict[str, int] | None = None
    seed: int | None = None
    faults: bool = True
    labels_file: str | None = None
    #: Replay the simulation silently from this time (epoch ms) before the first tick, so a
    #: live gateway continues the machines a backfill of the same scenario and seed left
    #: (counters, wear, faults) instead of starting them afresh.
    resume_from_ms: int | None = Field(None, ge=0)


class SimulatorInput:
    """One factory of a simulator scenario, stepped once per ``gather``."""

    def __init__(self, cluster: str, factory: str, config: dict[str, Any]) -> None:
        self.cluster, self.factory, self.raw = cluster, factory, config
        self.fleet: Fleet | None = None
        self.labels_file: str | None = None
        self.resume_from_ms: int | None = None

    def init(self) -> None:
        """Load the scenario and build the fleet; bad keys or ids are ``ConfigError``."""
        try:
            config = SimulatorConfig.model_validate(self.raw)
            if config.machines is not None:
                scenario = adhoc_scenario(config.machines, self.cluster, config.seed or 0)
                factory = "adhoc"
            else:
                scenario = load_scenario(config.scenario)
                factory = config.factory or self.factory
                scenario.factory(factory)  # unknown ids fail here, with the scenario's ids
            self.labels_file = config.labels_file
            self.resume_from_ms = config.resume_from_ms
            self.fleet = Fleet(
                scenario,
                factory,
                cluster=self.cluster,
                address_factory=self.factory,
                seed=config.seed,
                faults=config.faults,
            )
        except (ValidationError, ScenarioError, KeyError, ValueError) as exc:
            raise ConfigError(f"inputs.simulator: {exc}") from exc

    def start(self) -> None:
        """Nothing to connect to."""

    def gather(self, ts_ms: int) -> list[Reading]:
        """Step the simulated factory to ``ts_ms``."""
        if self.fleet is None:
            raise RuntimeError("init() must run before gather()")
        if self.resume_from_ms is not None:
            self._replay(self.fleet, self.resume_from_ms, ts_ms)
            self.resume_from_ms = None
        return self.fleet.step(ts_ms)

    @staticmethod
    def _replay(fleet: Fleet, from_ms: int, until_ms: int) -> None:
        """Step ``fleet`` second by second over ``[from_ms, until_ms)``, publishing nothing."""
        started = time.monotonic()
        ticks = range(from_ms, until_ms, round(fleet.step_s * 1000))
        for ts in ticks:
            fleet.step(ts)
        log.info(
            "event=simulator_resumed from_ms=%d ticks=%d seconds=%.1f",
            from_ms,
            len(ticks),
            time.monotonic() - started,
        )

    def stop(self) -> None:
        """Export the fault labels (ground truth for evaluations) when a file is configured."""
        if self.labels_file and self.fleet is not None and self.fleet.injector is not None:
            self.fleet.injector.export(self.labels_file)

    @property
    def machines(self) -> list[MachineAddress]:
        """Addresses of every simulated machine (after ``init``)."""
        return self.fleet.machines if self.fleet else []


def adhoc_scenario(machines: dict[str, int], cluster: str, seed: int) -> Scenario:
    """A one-factory scenario with exactly ``machines``, always planned, without faults."""
    factory = {
        "id": "adhoc",
        "archetype": "composite",
        "timezone": "UTC",
        "machines": {"knit_circular": 0, "dye_jet": 0, "stenter": 0, **machines},
    }
    return Scenario.model_validate(
        {"name": "adhoc", "cluster": cluster, "seed": seed, "factories": [factory]}
    )


registry.add("simulator", SimulatorInput)
