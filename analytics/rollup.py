"""Factory roll-ups for the cluster database: aggregates only, never a machine's data.

Cluster operators compare factories, so each factory's machine KPIs of one type and
shift are reduced to one row: counts and times are summed, rates are recomputed from
the sums (stops per 10^5 picks from summed stops and picks, availability from summed
run and planned time), and the remaining ratios are averaged weighted by what they
are a share of (planned time; dyeing ratios by finished batches; MTTR by its stops and
MTBF by breakdowns, so they equal total repair or run time over the total count). Comparing within a
machine type is the fairness rule of the domain spec (compare within a product family).

Example
-------
>>> rows = [{"planned_s": 100.0, "run_s": 90.0, "oee": 0.8, "stops": 1.0, "picks": 1e5,
...          "stops_per_1e5_picks": 1.0},
...         {"planned_s": 300.0, "run_s": 240.0, "oee": 0.6, "stops": 3.0, "picks": 1e5,
...          "stops_per_1e5_picks": 3.0}]
>>> agg = factory_rollup(rows)
>>> agg["machines"], agg["availability"], agg["oee"], agg["stops_per_1e5_picks"]
(2.0, 0.825, 0.65, 2.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

__all__ = ["factory_rollup"]

#: Columns that add up across machines.
SUMMED: Final = frozenset(
    {"planned_s", "run_s", "picks", "revs", "kg", "batches", "breakdowns", "stops"}
)
#: Ratios weighted by finished batches instead of planned time.
PER_BATCH: Final = frozenset(
    {"rft_pct", "cycle_ratio", "water_l_per_kg", "steam_kg_per_kg", "kwh_per_kg"}
)


def factory_rollup(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """One aggregate row from the KPI rows of one factory, machine type and shift."""
    names = sorted({k for r in rows for k, v in r.items() if isinstance(v, int | float)})
    names = [n for n in names if not n.endswith("_ms")]
    table = {n: np.array([float(r.get(n, np.nan)) for r in rows]) for n in names}
    out: dict[str, float] = {"machines": float(len(rows))}
    planned = table.get("planned_s", np.ones(len(rows)))
    batches = table.get("batches", np.ones(len(rows)))
    for name, values in table.items():
        if name in SUMMED or (name.startswith("stops_") and "per_1e5" not in name):
            out[name] = float(np.nansum(values))
        else:
            out[name] = _weighted_mean(values, _weight(name, table, planned, batches))
    if out.get("planned_s"):
        out["availability"] = out["run_s"] / out["planned_s"] if "run_s" in out else np.nan
    if out.get("breakdowns") and "mtbf_s" in out:
        out["mtbf_s"] = out["run_s"] / out["breakdowns"]
    if out.get("picks"):
        for name in [n for n in out if n.startswith("stops_per_1e5_picks")]:
            stops = "stops" + name.removeprefix("stops_per_1e5_picks")
            if stops in out:
                out[name] = 1e5 * out[stops] / out["picks"]
    return {k: v for k, v in out.items() if np.isfinite(v)}


def _weight(
    name: str, table: Mapping[str, np.ndarray], planned: np.ndarray, batches: np.ndarray
) -> np.ndarray:
    """What a ratio column is an average over: MTTR over its stops, MTBF over failures."""
    if name.startswith("mttr_s_"):
        return table.get("stops_" + name.removeprefix("mttr_s_"), np.zeros_like(planned))
    if name in ("mttr_breakdown_s", "mtbf_s"):
        return table.get("breakdowns", np.zeros_like(planned))
    return batches if name in PER_BATCH else planned


def _weighted_mean(values: np.ndarray, weight: np.ndarray) -> float:
    ok = np.isfinite(values) & np.isfinite(weight) & (weight > 0)
    if not ok.any():
        return float("nan")
    return float(np.average(values[ok], weights=weight[ok]))
