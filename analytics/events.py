"""Machine events as columns: the input of every state-, stop- and batch-based KPI.

Rows come from the ``machine_event`` measurement (or straight from a simulator's
readings); an :class:`EventTable` keeps them as equally long numpy columns sorted by
machine, then time, so per-machine computations are slices and ``np.diff``, not loops.

Example
-------
>>> table = EventTable.from_records([
...     {"machine": "l2", "ts": 5_000, "kind": "state", "code": "RUN"},
...     {"machine": "l1", "ts": 9_000, "kind": "stop", "code": "STOP_PROCESS", "reason": "WARP"},
...     {"machine": "l1", "ts": 1_000, "kind": "state", "code": "RUN"},
... ])
>>> table.machine.tolist(), table.ts_ms.tolist()
(['l1', 'l1', 'l2'], [1000, 9000, 5000])
>>> table.where(kind="stop").reason.tolist()
['WARP']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["EventTable"]

_TEXT = ("machine", "kind", "code", "reason", "batch_id")
_NUMBER = ("duration_s", "feeder", "step_no")


@dataclass
class EventTable:
    """Event columns of equal length, sorted by (machine, ts_ms).

    Text columns hold ``""`` and number columns NaN where an event has no such key.
    """

    ts_ms: np.ndarray
    machine: np.ndarray
    kind: np.ndarray
    code: np.ndarray
    reason: np.ndarray
    batch_id: np.ndarray
    duration_s: np.ndarray
    feeder: np.ndarray
    step_no: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_ms)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> EventTable:
        """Build from dicts with ``machine``, ``ts`` (epoch ms) and contract event keys."""
        rows = list(records)
        columns: dict[str, np.ndarray] = {
            "ts_ms": np.array([int(r["ts"]) for r in rows], dtype=np.int64)
        }
        for name in _TEXT:
            columns[name] = np.array([str(r.get(name) or "") for r in rows], dtype=object)
        for name in _NUMBER:
            columns[name] = np.array(
                [np.nan if r.get(name) is None else float(r[name]) for r in rows], dtype=float
            )
        return cls(**columns).sorted()

    def sorted(self) -> EventTable:
        """The same events ordered by machine, then time (stable for equal times)."""
        order = np.lexsort((self.ts_ms, self.machine.astype(str)))
        return self.take(order)

    def take(self, index: np.ndarray) -> EventTable:
        """The events at ``index`` (an integer or boolean array)."""
        return EventTable(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def where(self, **equal: str) -> EventTable:
        """The events whose text columns equal the given values, e.g. ``kind="stop"``."""
        mask = np.ones(len(self), dtype=bool)
        for name, value in equal.items():
            mask &= getattr(self, name) == value
        return self.take(mask)
