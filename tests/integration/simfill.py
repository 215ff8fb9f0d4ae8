"""Fill a real InfluxDB with a simulated factory's history, as ingest would store it.

The analytics tests need hours of realistic data in the database quickly; going
through MQTT would only test the pipeline again (its own tests do that). The lines are
made by ingest's own formatter, so the stored points are exactly what ingest writes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analytics.store import AnalyticsStore
from ingest.lineproto import record_lines, telemetry_lines
from millwatch.contract import RecordBatch, TelemetryBatch, factory_database
from simulators.fleet import Fleet
from simulators.scenario import load_scenario


@dataclass
class Filled:
    """What was written: row counts per machine type and every event and label record.

    ``held`` holds the lines of the held-back span, for a test to deliver late.
    """

    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    held: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)


def fill(
    store: AnalyticsStore,
    factory: str,
    start_ms: int,
    seconds: int,
    *,
    scenario: str = "default",
    seed: int = 1,
    address_factory: str | None = None,
    faults: bool = True,
    flush_every: int = 600,
    hold_back: tuple[int, int] | None = None,
) -> Filled:
    """Simulate ``factory`` for ``seconds`` at 1 s from ``start_ms`` and store it.

    Flushes (``flush_every`` ticks each) starting inside ``hold_back`` = ``[lo, hi)`` ms
    are kept in ``Filled.held`` instead of being written.
    """
    fleet = Fleet(
        load_scenario(scenario),
        factory,
        seed=seed,
        faults=faults,
        end_ms=start_ms + seconds * 1000,
        address_factory=address_factory,
    )
    filled = Filled()
    pending: list[list[Any]] = []
    for tick in range(seconds):
        pending.append(fleet.step(start_ms + tick * 1000))
        if len(pending) == flush_every or tick == seconds - 1:
            held = hold_back is not None and hold_back[0] <= pending[0][0].ts_ms < hold_back[1]
            _flush(store, address_factory or factory, pending, filled, held)
            pending = []
    return filled


def _flush(
    store: AnalyticsStore, factory: str, ticks: list[list[Any]], filled: Filled, held: bool
) -> None:
    lines: list[str] = []
    for g in range(len(ticks[0])):
        readings = [tick[g] for tick in ticks]
        first = readings[0]
        ts = np.array([r.ts_ms for r in readings], dtype=np.int64)
        columns = {name: [r.fields[name] for r in readings] for name in first.fields}
        for j, address in enumerate(first.machines):
            values = {
                name: np.array([col[j] for col in column], dtype=_dtype(column[0]))
                for name, column in columns.items()
            }
            batch = TelemetryBatch(first.machine_type, 0, ts, values)
            lines.append(telemetry_lines(address, batch))
            filled.rows[first.machine_type] += len(ts)
            events = [rec for r in readings for i, rec in r.events if i == j]
            labels = [rec for r in readings for i, rec in r.labels if i == j]
            if events:
                lines.append(
                    record_lines(address, RecordBatch(first.machine_type, 0, events), "event")
                )
                filled.events += [{**e, "machine": address.machine} for e in events]
            if labels:
                lines.append(
                    record_lines(address, RecordBatch(first.machine_type, 0, labels), "fault_label")
                )
                filled.labels += [{**e, "machine": address.machine} for e in labels]
    if held:
        filled.held += lines
    else:
        store.write(factory_database(factory), lines)


def _dtype(sample: np.ndarray) -> type:
    return object if sample.dtype == object else float
