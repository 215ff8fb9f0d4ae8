"""Anomaly scoring of one factory: train the monitor, score new buckets, keep alarms.

The monitor learns from the factory's own recent history (``train_h``, at least
``min_train_h`` of it) and relearns every ``refit_h``, so a cluster of hundreds of mills
needs no per-machine configuration. Each pass scores the buckets that settled since the
last one, reading ``context_min`` earlier minutes so rolling features have their
history (scores are causal: a bucket's score uses only data up to it). After a restart
the last ``train_h`` are scored again; the points are the same, so nothing doubles.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analytics.alarm_book import AlarmBook
from analytics.frame import Panel
from analytics.monitor import Monitor
from analytics.points import alarm_line, score_lines
from analytics.settings import AnalyticsSettings
from analytics.store import BUCKET_MS, AnalyticsStore
from ingest.logs import kv

__all__ = ["AnomalyJob"]

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
#: A monitor trained on less than its full span is trained again this often.
YOUNG_REFIT_MS = 10 * 60_000
#: Longest span scored in one pass, so a restart after a long backfill shows progress.
SCORE_CHUNK_MS = 6 * HOUR_MS


@dataclass
class AnomalyJob:
    """Scores one factory database; ``run`` once per service pass."""

    store: AnalyticsStore
    db: str
    tags: Mapping[str, str]
    settings: AnalyticsSettings
    monitor: Monitor | None = None
    fitted_at_ms: int = 0
    fitted_hours: float = 0.0
    scored_until_ms: int = 0
    alarms: AlarmBook = field(default_factory=lambda: AlarmBook(merge_gap_ms=30 * 60_000))

    def run(self, types: Sequence[str], settled_ms: int) -> dict[str, int]:
        """Refit when due, score every settled bucket not scored yet; return counts.

        Scoring stops at the last bucket holding data: buckets a backfill or a gateway's
        outbox has not delivered yet are scored when they arrive, not left empty. A span
        without data followed by data is a gap and is passed over. A
        monitor trained on less than ``train_h`` (a young stack, a backfill in progress)
        is trained again every ``YOUNG_REFIT_MS`` until it has its full span.
        """
        counts = {"fits": 0, "anomaly": 0, "anomaly_alarm": 0, "new_alarms": 0}
        since_fit = settled_ms - self.fitted_at_ms
        young = self.fitted_hours < self.settings.train_h and since_fit >= YOUNG_REFIT_MS
        if self.monitor is None or young or since_fit >= int(self.settings.refit_h * HOUR_MS):
            counts["fits"] = self._fit(types, settled_ms)
        if self.monitor is None:
            return counts
        if not self.scored_until_ms:
            self.scored_until_ms = settled_ms - int(self.settings.train_h * HOUR_MS)
        while self.scored_until_ms < settled_ms:
            hi = min(self.scored_until_ms + SCORE_CHUNK_MS, settled_ms)
            done, last_data_ms = self._score(types, self.scored_until_ms, hi)
            for key, value in done.items():
                counts[key] += value
            if last_data_ms < hi and not self._data_after(types, hi, settled_ms):
                self.scored_until_ms = max(self.scored_until_ms, last_data_ms)
                break  # the rest has no data yet
            self.scored_until_ms = hi  # scored, or a gap with data after it
        return counts

    def _panels(self, types: Sequence[str], start_ms: int, end_ms: int) -> dict[str, Panel]:
        panels = {t: self.store.read_panel(self.db, t, start_ms, end_ms) for t in types}
        return {t: p for t, p in panels.items() if p.machines}

    def _events(self, panels: Mapping[str, Panel], start_ms: int, end_ms: int) -> dict:
        """Each panel type's events over the same span.

        Stop reasons and alarm codes become rate signals, step changes mark
        transitions (``Monitor.fit``).
        """
        return {t: self.store.read_events(self.db, t, start_ms, end_ms) for t in panels}

    def _data_after(self, types: Sequence[str], start_ms: int, end_ms: int) -> bool:
        """Whether any 60-s bucket in ``[start_ms, end_ms)`` holds data."""
        if end_ms <= start_ms:
            return False
        return any(
            self.store.hourly_rows(self.db, t, start_ms, end_ms, "rolled_up").any() for t in types
        )

    def _fit(self, types: Sequence[str], settled_ms: int) -> int:
        start = settled_ms - int(self.settings.train_h * HOUR_MS)
        panels = self._panels(types, start, settled_ms)
        span_h = _data_hours(panels)
        if span_h < self.settings.min_train_h:
            log.info(kv("monitor_waiting", db=self.db, hours=round(span_h, 2)))
            return 0
        events = self._events(panels, start, settled_ms)
        monitor = Monitor(halls=dict(self.store.halls.get(self.db, {})))
        self.monitor = monitor.fit(panels, events)
        self.fitted_at_ms, self.fitted_hours = settled_ms, span_h
        log.info(kv("monitor_fitted", db=self.db, hours=round(span_h, 1), types=len(panels)))
        return 1

    def _score(self, types: Sequence[str], lo: int, hi: int) -> tuple[dict[str, int], int]:
        """Score ``[lo, hi)``; return the counts and the end of the last bucket with data."""
        if self.monitor is None:  # pragma: no cover - run() checks first
            return {}, lo
        context = self.settings.context_min * 60_000
        panels = self._panels(types, lo - context, hi)
        last_data_ms = _last_data_ms(panels, lo)
        scores = self.monitor.score(panels, self._events(panels, lo - context, hi))
        halls = self.store.halls.get(self.db, {})
        lines = [
            line
            for machine_type, s in scores.items()
            for line in score_lines(s, machine_type, halls, self.tags, lo)
        ]
        written = {"anomaly": self.store.write(self.db, lines)}
        alarms, fresh = self.alarms.update(self.monitor.alarms(scores), lo)
        for alarm in fresh:
            log.warning(kv("alarm_raised", db=self.db, **_describe(alarm)))
        alarm_lines = [alarm_line(alarm, halls, self.tags) for alarm in alarms]
        written["anomaly_alarm"] = self.store.write(self.db, alarm_lines)
        written["new_alarms"] = len(fresh)
        return written, last_data_ms


def _last_data_ms(panels: Mapping[str, Panel], default: int) -> int:
    """End of the last bucket of any panel that holds at least one raw row."""
    ends = [default]
    for panel in panels.values():
        present = _buckets_with_data(panel)
        if len(present):
            ends.append(int(panel.ts_ms[present[-1]]) + BUCKET_MS)
    return max(ends)


def _buckets_with_data(panel: Panel) -> np.ndarray:
    """Indexes of the buckets where any machine has at least one raw row."""
    return np.flatnonzero(np.nansum(panel["rows"], axis=0) > 0)


def _data_hours(panels: Mapping[str, Panel]) -> float:
    """Hours between the first and the last bucket holding any data."""
    spans = []
    for panel in panels.values():
        present = _buckets_with_data(panel)
        if len(present):
            spans.append((present[-1] - present[0] + 1) * BUCKET_MS / HOUR_MS)
    return max(spans, default=0.0)


def _describe(alarm: Any) -> dict[str, object]:
    return {
        "machine": alarm.machine,
        "signal": alarm.signal,
        "kind": alarm.kind,
        "z": round(float(alarm.z), 1),
        "score": round(float(alarm.peak_score), 2),
        "since_ms": alarm.start_ms,
    }
