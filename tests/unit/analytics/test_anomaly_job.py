"""The anomaly job's bookkeeping against an in-memory store: when it trains and scores."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from analytics import anomaly_job
from analytics.anomaly_job import AnomalyJob
from analytics.events import EventTable
from analytics.frame import Panel
from analytics.settings import AnalyticsSettings

HOUR = 3_600_000
MINUTE = 60_000


@dataclass
class MemoryStore:
    """Serves one climate-sensor panel of 6 h; ``delivered_ms`` is how much has arrived."""

    delivered_ms: int
    gap: tuple[int, int] = (0, 0)
    halls: dict[str, dict[str, str]] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)
    event_reads: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(3)
        ts = np.arange(0, 6 * HOUR, MINUTE)
        shape = (4, len(ts))
        self.full = Panel(
            [f"env-{i}" for i in range(4)],
            ts,
            MINUTE,
            {
                "rows": np.full(shape, 60.0),
                "temp_c": 29 + rng.normal(0, 0.3, shape),
                "temp_c:sd": np.abs(rng.normal(0.1, 0.02, shape)),
                "rh_pct": 80 + rng.normal(0, 1.0, shape),
                "rh_pct:sd": np.abs(rng.normal(0.3, 0.05, shape)),
            },
        )

    def _mask(self, start: int, end: int) -> np.ndarray:
        ts = self.full.ts_ms
        there = (ts < self.delivered_ms) & ~((ts >= self.gap[0]) & (ts < self.gap[1]))
        return (ts >= start) & (ts < end), there

    def read_panel(self, db: str, machine_type: str, start: int, end: int) -> Panel:
        span, there = self._mask(start, end)
        values = {k: np.where(there[span], v[:, span], np.nan) for k, v in self.full.values.items()}
        return Panel(self.full.machines, self.full.ts_ms[span], MINUTE, values)

    def read_events(self, db: str, machine_type: str, start: int, end: int) -> EventTable:
        self.event_reads.append((start, end))
        return EventTable.from_records([])

    def hourly_rows(
        self, db: str, machine_type: str, start: int, end: int, source: str
    ) -> np.ndarray:
        span, there = self._mask(start, end)
        return np.array([int((span & there).sum() > 0) * 60])

    def write(self, db: str, lines: list[str]) -> int:
        self.written += lines
        return len(lines)


def _job(store: MemoryStore) -> AnomalyJob:
    settings = AnalyticsSettings(train_h=2, min_train_h=0.5, context_min=30)
    return AnomalyJob(store, "f_x", {"factory": "x"}, settings)  # type: ignore[arg-type]


def test_scoring_waits_for_data_that_has_not_arrived() -> None:
    store = MemoryStore(delivered_ms=2 * HOUR)
    job = _job(store)
    done = job.run(["hall_env"], settled_ms=3 * HOUR)
    assert done["fits"] == 1
    assert job.scored_until_ms == 2 * HOUR  # not 3 h: the last hour has not arrived yet
    first = len(store.written)
    store.delivered_ms = 3 * HOUR  # a backfill or an outbox replay delivers it
    job.run(["hall_env"], settled_ms=3 * HOUR)
    assert job.scored_until_ms == 3 * HOUR
    scored = [line for line in store.written[first:] if line.startswith("anomaly,")]
    assert len(scored) == 4 * 60  # each machine's last hour, once


def test_a_gap_followed_by_data_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(anomaly_job, "SCORE_CHUNK_MS", HOUR)
    store = MemoryStore(delivered_ms=6 * HOUR, gap=(2 * HOUR, 5 * HOUR))
    job = _job(store)
    job.run(["hall_env"], settled_ms=int(1.5 * HOUR))
    job.run(["hall_env"], settled_ms=6 * HOUR)
    assert job.scored_until_ms == 6 * HOUR


def test_too_little_history_trains_nothing() -> None:
    store = MemoryStore(delivered_ms=20 * MINUTE)
    job = _job(store)
    assert job.run(["hall_env"], settled_ms=2 * HOUR)["fits"] == 0
    assert job.monitor is None and store.written == []


def test_events_are_read_over_the_training_span_and_the_scoring_context() -> None:
    store = MemoryStore(delivered_ms=3 * HOUR)
    job = _job(store)
    job.run(["hall_env"], settled_ms=3 * HOUR)
    # Trained on [1 h, 3 h) and scored from 1 h with 30 min of context before it.
    assert store.event_reads[0] == (1 * HOUR, 3 * HOUR)
    assert store.event_reads[1] == (1 * HOUR - 30 * MINUTE, 3 * HOUR)
