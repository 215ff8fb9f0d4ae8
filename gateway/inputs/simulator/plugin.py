"""Input plugin that reads a simulated factory instead of real controllers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway import registry
from gateway.inputs.base import ConfigError, Reading
from millwatch.contract import MachineAddress
from simulators.fleet import FactorySpec, Fleet


class SimulatorConfig(BaseModel):
    """The ``[inputs.simulator]`` table; see sample.toml beside this file."""

    model_config = ConfigDict(extra="forbid")

    looms: int = 20
    knitting: int = 0
    dyeing: int = 0
    seed: int = 0


class SimulatorInput:
    """A seeded :class:`simulators.Fleet` of one factory, stepped once per ``gather``."""

    def __init__(self, cluster: str, factory: str, config: dict[str, Any]) -> None:
        self.cluster, self.factory, self.raw = cluster, factory, config
        self.fleet: Fleet | None = None

    def init(self) -> None:
        """Validate the table; unknown keys and negative sizes are errors."""
        try:
            config = SimulatorConfig.model_validate(self.raw)
        except ValidationError as exc:
            raise ConfigError(f"inputs.simulator: {exc}") from exc
        if min(config.looms, config.knitting, config.dyeing) < 0:
            raise ConfigError("inputs.simulator: machine counts must be >= 0")
        spec = FactorySpec(self.cluster, self.factory, config.looms, config.knitting, config.dyeing)
        self.fleet = Fleet(spec, seed=config.seed)

    def start(self) -> None:
        """Nothing to connect to."""

    def gather(self, ts_ms: int) -> list[Reading]:
        """Step the simulated fleet to ``ts_ms``."""
        if self.fleet is None:
            raise RuntimeError("init() must run before gather()")
        return self.fleet.step(ts_ms)

    def stop(self) -> None:
        """Nothing to release."""

    @property
    def machines(self) -> list[MachineAddress]:
        """Addresses of every simulated machine (after ``init``)."""
        return self.fleet.machines if self.fleet else []


registry.add("simulator", SimulatorInput)
