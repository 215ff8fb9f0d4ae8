"""Cross-factory benchmarks: percentile bands that reveal no single factory.

Each factory's KPIs over the range are rolled up from the cluster database's shift
aggregates (the same roll-up as everywhere: sums and planned-time weights). Across
factories, a band is the 10th/50th/90th percentile of one KPI within one machine class
(comparing like with like). A band built from fewer than ``k`` factories is withheld,
and so is a factory's position in it: with two factories, "p90" or "better than half"
would be the other factory's figure.

Example
-------
>>> values = {"f1": 0.80, "f2": 0.85, "f3": 0.90, "f4": 0.70, "f5": 0.75}
>>> band = make_band("loom_airjet", "oee", values, own="f3", min_factories=5)
>>> band.p50, band.own_value, band.own_position_pct
(0.8, 0.9, 100.0)
>>> make_band("loom_airjet", "oee", values, own="f3", min_factories=6).p50 is None
True
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
from pydantic import BaseModel, Field

from analytics.rollup import factory_rollup
from millwatch.influxql import InfluxQL, span_where

__all__ = ["BENCHMARK_KPIS", "Band", "factory_aggregates", "make_band"]

CLUSTER_DATABASE: Final = "cluster_kpi"
#: KPIs with a band, and whether a higher value is better.
BENCHMARK_KPIS: Final[dict[str, bool]] = {
    "oee": True,
    "availability": True,
    "efficiency": True,
    "stops_per_1e5_picks": False,
    "kg_per_h": True,
    "rft_pct": True,
    "cycle_ratio": False,
    "water_l_per_kg": False,
    "steam_kg_per_kg": False,
    "kwh_per_kg": False,
}


class Band(BaseModel):
    """One KPI's spread across factories of one machine class."""

    machine_type: str = Field(examples=["loom_airjet"])
    kpi: str = Field(examples=["oee"])
    higher_is_better: bool
    factories: int = Field(description="Factories with a value", examples=[7])
    suppressed: bool = Field(description="True when fewer than the minimum factories")
    p10: float | None = None
    p50: float | None = None
    p90: float | None = None
    own_value: float | None = Field(None, description="Your factory's value (engineers)")
    own_position_pct: float | None = Field(
        None, description="Share of the other factories you do better than, 0-100"
    )


def make_band(
    machine_type: str,
    kpi: str,
    values: Mapping[str, float],
    own: str | None,
    min_factories: int,
) -> Band:
    """The band of ``values`` (factory -> KPI), withheld below ``min_factories``."""
    higher = BENCHMARK_KPIS[kpi]
    finite = {f: v for f, v in values.items() if np.isfinite(v)}
    band = Band(
        machine_type=machine_type,
        kpi=kpi,
        higher_is_better=higher,
        factories=len(finite),
        suppressed=len(finite) < min_factories,
        own_value=finite.get(own) if own else None,
    )
    if band.suppressed:
        return band
    array = np.array(list(finite.values()))
    band.p10, band.p50, band.p90 = (float(x) for x in np.percentile(array, [10, 50, 90]))
    if band.own_value is not None:
        others = np.array([v for f, v in finite.items() if f != own])
        better = others < band.own_value if higher else others > band.own_value
        ties = others == band.own_value
        band.own_position_pct = float(100 * (better.sum() + 0.5 * ties.sum()) / len(others))
    return band


def factory_aggregates(
    influx: InfluxQL, start_ms: int, end_ms: int, machine_type: str | None
) -> dict[tuple[str, str], dict[str, float]]:
    """``(factory, machine type) -> KPIs`` rolled up over the shifts starting in the range."""
    where, params = span_where(start_ms, end_ms, {"type": machine_type})
    series = influx.query(
        CLUSTER_DATABASE,
        f'SELECT * FROM "factory_kpi" WHERE {where} GROUP BY "factory", "type", "shift"',
        params,
    )
    shifts: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for s in series:
        for values in s.values:
            row = {
                k: v
                for k, v in zip(s.columns, values, strict=True)
                if k != "time" and isinstance(v, int | float)
            }
            shifts[(s.tags.get("factory", ""), s.tags.get("type", ""))].append(row)
    out = {}
    for key, rows in shifts.items():
        machines = max(r.get("machines", 0.0) for r in rows)
        aggregate = factory_rollup(rows)
        aggregate["machines"] = machines
        aggregate["shifts"] = float(len(rows))
        out[key] = aggregate
    return out
