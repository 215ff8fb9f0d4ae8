"""The contract between the gateway core and its input plugins.

An input reads machines (a PLC, a serial interface, a simulator) and hands the core
whole machine groups at once: one array per field with one value per machine, so a
hall of looms costs one call per tick, not one per machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from gateway.errors import ConfigError
from millwatch.contract import MachineAddress

__all__ = ["ConfigError", "Input", "Reading"]


@dataclass
class Reading:
    """Samples of one machine group at one instant.

    ``fields`` maps a contract field name to an array of shape (n_machines,), NaN where
    a machine has no value. ``events`` holds ``(machine index, record)`` pairs, each
    record a contract event (``ts``, ``kind``, ``code``, ``reason``…); ``labels`` the
    same for fault-label records (``ts``, ``fault_id``, ``fault_type``, ``phase``,
    ``severity``), which only simulators know.
    """

    machine_type: str
    machines: Sequence[MachineAddress]
    ts_ms: int
    fields: dict[str, np.ndarray]
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    labels: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


class Input(Protocol):
    """An input plugin: validate in ``init``, connect in ``start``, read in ``gather``."""

    def init(self) -> None:
        """Check the configuration without I/O; raise ``ConfigError``."""

    def start(self) -> None:
        """Open connections to the machines."""

    def gather(self, ts_ms: int) -> list[Reading]:
        """Read every machine group once, stamped ``ts_ms`` (UTC epoch ms)."""
        ...

    def stop(self) -> None:
        """Release connections."""
