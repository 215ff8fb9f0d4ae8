"""Telemetry as aligned arrays: one ``(machines, times)`` matrix per field.

Every analytics computation (KPIs, detectors, the evaluation) works on a :class:`Panel`:
the samples of many machines of one type on one regular time grid, NaN where a machine
has no value. Rows from InfluxDB or readings from a simulator are pivoted into it once,
so the computations themselves never loop over machines or samples.

Example
-------
>>> import numpy as np
>>> panel = Panel.from_rows(
...     machines=np.array(["l1", "l2", "l1"]),
...     ts_ms=np.array([0, 60_000, 120_000]),
...     fields={"speed_rpm": np.array([800.0, 790.0, 805.0])},
...     step_ms=60_000,
... )
>>> panel.machines, panel.ts_ms.tolist()
(['l1', 'l2'], [0, 60000, 120000])
>>> panel["speed_rpm"].tolist()
[[800.0, nan, 805.0], [nan, 790.0, nan]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Panel"]


@dataclass
class Panel:
    """Samples of ``machines`` on the grid ``ts_ms``; ``values[f]`` has shape (M, T).

    ``ts_ms`` is UTC epoch ms, strictly increasing and evenly spaced by ``step_ms``
    (the left edge of each aggregation bucket when the rows were aggregated).
    """

    machines: list[str]
    ts_ms: np.ndarray
    step_ms: int
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        """The (M, T) matrix of field ``name``; all-NaN when the field is absent."""
        if name in self.values:
            return self.values[name]
        return np.full((len(self.machines), len(self.ts_ms)), np.nan)

    @property
    def fields(self) -> list[str]:
        """Names of the fields held."""
        return list(self.values)

    @classmethod
    def from_rows(
        cls,
        machines: np.ndarray,
        ts_ms: np.ndarray,
        fields: Mapping[str, np.ndarray],
        step_ms: int,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        machine_order: Sequence[str] | None = None,
    ) -> Panel:
        """Pivot long rows (one machine and time per row) onto a regular grid.

        A row lands in the bucket ``floor((ts - start) / step)``; when several rows
        share a bucket the last one wins. The grid spans ``[start_ms, end_ms)``,
        by default the rows' own range.
        """
        ts = np.asarray(ts_ms, dtype=np.int64)
        names = np.asarray(machines).astype(str)
        order = sorted(set(names.tolist())) if machine_order is None else list(machine_order)
        start = int(ts.min()) if start_ms is None and len(ts) else int(start_ms or 0)
        start -= start % step_ms if start_ms is None else 0
        stop = int(ts.max()) + 1 if end_ms is None and len(ts) else int(end_ms or start)
        n_t = max(0, -(-(stop - start) // step_ms))
        grid = start + step_ms * np.arange(n_t, dtype=np.int64)
        lookup = {m: i for i, m in enumerate(order)}
        distinct, inverse = np.unique(names, return_inverse=True)
        row = np.array([lookup.get(m, -1) for m in distinct.tolist()], dtype=np.int64)[inverse]
        col = (ts - start) // step_ms
        keep = (row >= 0) & (col >= 0) & (col < n_t)
        values = {}
        for name, column in fields.items():
            matrix = np.full((len(order), n_t), np.nan)
            matrix[row[keep], col[keep]] = np.asarray(column, dtype=np.float64)[keep]
            values[name] = matrix
        return cls(order, grid, step_ms, values)
