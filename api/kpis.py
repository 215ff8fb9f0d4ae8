"""KPI tables for the API: the analytics service's shift rows, rolled up on request.

Per-machine shift rows (``kpi_shift``) are stored by analytics; a hall, a factory or a
day is the same roll-up the cluster database uses (:func:`analytics.rollup.factory_rollup`:
times and counts summed, rates recomputed from the sums, ratios weighted by planned
time), so every level of the API agrees with every other and with the cluster view.
A day is the factory's local production date, the date part of the shift label.

Example
-------
>>> rows = [{"machine": "l1", "hall": "w1", "type": "loom_airjet", "shift": "2026-01-05/A",
...          "time": 0, "planned_s": 100.0, "run_s": 80.0, "oee": 0.7},
...         {"machine": "l2", "hall": "w1", "type": "loom_airjet", "shift": "2026-01-05/A",
...          "time": 0, "planned_s": 300.0, "run_s": 270.0, "oee": 0.9}]
>>> [(r.key, r.machines, round(r.kpis["availability"], 3)) for r in roll_up(rows, "hall", "shift")]
[('w1', 2, 0.875)]
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from analytics.rollup import factory_rollup
from millwatch.influxql import InfluxQL, span_where

__all__ = ["KpiRow", "Level", "Period", "read_shift_rows", "roll_up", "to_csv"]

Level = Literal["machine", "hall", "factory"]
Period = Literal["shift", "day"]
TAGS: Final = ("cluster", "factory", "hall", "machine", "type", "shift")
#: Bookkeeping columns of the stored rows that are not KPIs.
NOT_KPIS: Final = frozenset({"start_ms", "end_ms", "seq"})


@dataclass
class KpiRow:
    """KPIs of one machine, hall or factory, one machine type and one shift or day."""

    key: str
    machine_type: str
    period: str
    start_ms: int
    machines: int
    kpis: dict[str, float]


def read_shift_rows(
    influx: InfluxQL,
    db: str,
    start_ms: int,
    end_ms: int,
    filters: Mapping[str, str | None],
) -> list[dict[str, Any]]:
    """Stored ``kpi_shift`` rows of shifts starting in ``[start_ms, end_ms)``.

    ``filters`` maps tag names (``hall``, ``machine``, ``type``) to a required value;
    values travel as bind parameters.
    """
    where, params = span_where(start_ms, end_ms, filters)
    series = influx.query(
        db,
        f'SELECT * FROM "kpi_shift" WHERE {where} GROUP BY "hall", "machine", "type", "shift"',
        params,
    )
    rows = []
    for s in series:
        for values in s.values:
            row = dict(zip(s.columns, values, strict=True))
            row.update(s.tags)
            rows.append(row)
    return rows


def roll_up(rows: Sequence[Mapping[str, Any]], level: Level, period: Period) -> list[KpiRow]:
    """Aggregate shift rows per ``level`` key, machine type and ``period``."""
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        key = row.get(level, "") if level != "factory" else row.get("factory", "")
        label = str(row["shift"]) if period == "shift" else str(row["shift"]).split("/")[0]
        groups[(str(key), str(row["type"]), label)].append(row)
    out = []
    for (key, machine_type, label), members in sorted(groups.items()):
        numeric = [_kpi_columns(r) for r in members]
        kpis = numeric[0] if level == "machine" and period == "shift" else factory_rollup(numeric)
        kpis.pop("machines", None)
        out.append(
            KpiRow(
                key=key,
                machine_type=machine_type,
                period=label,
                start_ms=min(int(r["time"]) for r in members),
                machines=len({r.get("machine") for r in members}),
                kpis={k: float(v) for k, v in sorted(kpis.items())},
            )
        )
    return out


def _kpi_columns(row: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in row.items()
        if k not in TAGS and k != "time" and k not in NOT_KPIS and isinstance(v, int | float)
    }


def to_csv(rows: Iterable[KpiRow], level: Level) -> str:
    """KPI rows as CSV: key columns first, then every KPI name in alphabetical order."""
    rows = list(rows)
    names = sorted({k for r in rows for k in r.kpis})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([level, "machine_type", "period", "start_ms", "machines", *names])
    for r in rows:
        cells = [r.kpis.get(n, "") for n in names]
        writer.writerow([r.key, r.machine_type, r.period, r.start_ms, r.machines, *cells])
    return buffer.getvalue()
