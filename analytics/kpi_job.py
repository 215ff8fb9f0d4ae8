"""Shift KPIs of one factory, recomputed whenever a shift's data changed.

Each pass audits the horizon (``kpi_horizon_h``) of every machine type: hours whose raw
rows outnumber the rows behind their 60-s buckets are downsampled again, and a shift
whose row count differs from the count its KPIs were computed from is computed again.
That covers the open shift (it grows every minute), a closed shift that late data
reached (a gateway replaying its outbox after an outage, a backfill), and, after a
restart, every shift of the horizon once. Shift KPIs go to ``kpi_shift`` in the factory
database; finished dyeing batches to ``kpi_batch``; factory aggregates per type and
shift to ``factory_kpi`` in the cluster database.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from analytics.downsample import HOUR_MS, DownsampleSync
from analytics.kpi.dye import batch_table
from analytics.kpi.shift import dye_batch_kpis, shift_kpis
from analytics.points import row_lines
from analytics.rollup import factory_rollup
from analytics.shifts import ShiftWindows, shift_windows
from analytics.store import AnalyticsStore
from ingest.logs import kv
from millwatch.site import FactorySite

__all__ = ["CLUSTER_DATABASE", "KpiJob"]

log = logging.getLogger(__name__)

#: Database of the cluster roll-ups: aggregates per factory, never raw data.
CLUSTER_DATABASE: Final = "cluster_kpi"
_ROW_TAGS: Final = ("hall", "machine", "type", "shift")
#: Machine types without production KPIs (a hall's climate sensor has no states).
NO_KPIS: Final = frozenset({"hall_env"})
#: Dyeing batches run up to ~10 h: events this far before a shift give its batches a start.
BATCH_LOOKBACK_MS: Final = 12 * HOUR_MS


@dataclass
class KpiJob:
    """Recomputes one factory's changed shifts; ``run`` once per KPI pass."""

    store: AnalyticsStore
    sync: DownsampleSync
    calendar: FactorySite
    tags: Mapping[str, str]
    computed: dict[tuple[str, int], int] = field(default_factory=dict)

    def run(
        self, types: Sequence[str], now_ms: int, settled_ms: int, horizon_h: float
    ) -> dict[str, int]:
        """Audit and recompute; return counts of shifts (by why) and points written.

        A shift's fingerprint is its rows behind the 60-s buckets plus its events (for
        dyeing, from a batch look-back before the shift: batches end in the shift they
        are reported in). Its fingerprint is remembered only once its KPIs are stored,
        so a failed write is retried on the next pass.
        """
        c = self.calendar
        horizon_start = now_ms - int(horizon_h * HOUR_MS)
        windows = shift_windows(c.timezone, c.shifts, horizon_start, now_ms, c.shift_start)
        counts = {"first": 0, "late": 0, "open": 0, "kpi_shift": 0, "kpi_batch": 0}
        counts["factory_kpi"] = 0
        begin = int(windows.start_ms[0])
        self.computed = {k: v for k, v in self.computed.items() if k[1] >= begin}
        for machine_type in types:
            rows = self.sync.audit(machine_type, begin, settled_ms)
            if machine_type in NO_KPIS:
                continue
            events = self.store.hourly_rows(self.sync.db, machine_type, begin, settled_ms, "events")
            hourly = np.zeros(max(len(rows), len(events)), dtype=np.int64)
            hourly[: len(rows)] += rows
            hourly[: len(events)] += events
            for w in range(len(windows)):
                key = (machine_type, int(windows.start_ms[w]))
                fingerprint = self._fingerprint(machine_type, windows, w, hourly, begin)
                before = self.computed.get(key)
                if fingerprint == before or (fingerprint == 0 and before is None):
                    continue
                self._compute(machine_type, windows, w, now_ms, counts)
                self.computed[key] = fingerprint
                if before is None:
                    counts["first"] += 1
                else:
                    counts["open" if int(windows.end_ms[w]) > now_ms else "late"] += 1
        return counts

    @staticmethod
    def _fingerprint(
        machine_type: str, windows: ShiftWindows, w: int, hourly: np.ndarray, begin: int
    ) -> int:
        lookback = BATCH_LOOKBACK_MS if machine_type == "dye_jet" else 0
        lo = max((int(windows.start_ms[w]) - lookback - begin) // HOUR_MS, 0)
        hi = -(-(int(windows.end_ms[w]) - begin) // HOUR_MS)
        return int(hourly[lo:hi].sum())

    def _compute(
        self,
        machine_type: str,
        windows: ShiftWindows,
        w: int,
        now_ms: int,
        counts: dict[str, int],
    ) -> None:
        db = self.sync.db
        start, end = int(windows.start_ms[w]), int(windows.end_ms[w])
        window = ShiftWindows(
            windows.start_ms[w : w + 1], windows.end_ms[w : w + 1], [windows.labels[w]]
        )
        stop = min(end, now_ms)
        first = start - (BATCH_LOOKBACK_MS if machine_type == "dye_jet" else 0)
        panel = self.store.read_panel(db, machine_type, first, stop)
        events = self.store.read_events(db, machine_type, first, stop)
        if not panel.machines:
            return
        table = shift_kpis(machine_type, panel, events, window, now_ms=stop)
        rows = self._tagged(table.rows(), "shift")
        lines = row_lines("kpi_shift", rows, self.tags, _ROW_TAGS, "start_ms")
        counts["kpi_shift"] += self.store.write(db, lines)
        if machine_type == "dye_jet" and np.isfinite(batch_table(events).cycle_s).any():
            batches = self._tagged(dye_batch_kpis(panel, events, now_ms=stop).rows(), "batch_id")
            finished = [b for b in batches if start <= b["end_ms"] < end]
            lines = row_lines("kpi_batch", finished, self.tags, (*_ROW_TAGS, "batch_id"), "end_ms")
            counts["kpi_batch"] += self.store.write(db, lines)
        aggregate = {
            **factory_rollup(table.rows()),
            "type": machine_type,
            "shift": windows.labels[w],
            "start_ms": start,
        }
        lines = row_lines("factory_kpi", [aggregate], self.tags, ("type", "shift"), "start_ms")
        counts["factory_kpi"] += self.store.write(CLUSTER_DATABASE, lines)
        log.info(
            kv(
                "shift_kpis",
                db=db,
                type=machine_type,
                shift=windows.labels[w],
                machines=len(panel.machines),
            )
        )

    def _tagged(self, rows: list[dict[str, Any]], window_as: str) -> list[dict[str, Any]]:
        """Rename KPI row keys to the stored tag names and add each machine's hall."""
        out = []
        for row in rows:
            tagged = {k: v for k, v in row.items() if k not in ("machine_type", "window")}
            tagged |= {"type": row["machine_type"], window_as: row["window"]}
            tagged["hall"] = self.store.halls.get(self.sync.db, {}).get(str(row["machine"]), "")
            out.append(tagged)
        return out
