"""Keeps each factory's 60-s tables in step with its raw rows, late data included.

New data is downsampled as soon as its buckets have settled. Every so often the whole
horizon is audited: hours whose raw row count differs from the rows behind their 60-s
buckets (a backfill, a gateway that replayed its outbox after an outage) are
downsampled again, and reported so the shifts they fall in get their KPIs recomputed.
Nothing here needs memory across restarts: the counts in InfluxDB are the state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from analytics.store import BUCKET_MS, AnalyticsStore
from ingest.logs import kv

__all__ = ["HOUR_MS", "DownsampleSync"]

log = logging.getLogger(__name__)

HOUR_MS: Final = 3_600_000
#: Largest span downsampled by one query, so a long backfill shows progress.
CHUNK_MS: Final = 2 * HOUR_MS


@dataclass
class DownsampleSync:
    """Downsampling state of one factory database (watermarks per machine type)."""

    store: AnalyticsStore
    db: str
    done_until: dict[str, int] = field(default_factory=dict)

    def advance(self, machine_type: str, start_ms: int, settled_ms: int) -> int:
        """Downsample new buckets from the watermark (or ``start_ms``) to ``settled_ms``."""
        end = settled_ms - settled_ms % BUCKET_MS
        begin = max(self.done_until.get(machine_type, start_ms), start_ms)
        begin -= begin % BUCKET_MS
        buckets = 0
        for lo in range(begin, end, CHUNK_MS):
            hi = min(lo + CHUNK_MS, end)
            buckets += self.store.downsample(self.db, machine_type, lo, hi)
            if end - begin > CHUNK_MS:  # a backlog (start-up, backfill): show progress
                done = (hi - begin) / (end - begin)
                log.info(kv("downsampling", db=self.db, type=machine_type, done=f"{done:.0%}"))
        if end > begin:
            self.done_until[machine_type] = end
        return buckets

    def audit(self, machine_type: str, start_ms: int, settled_ms: int) -> np.ndarray:
        """Downsample again every hour of ``[start_ms, settled_ms)`` that gained raw rows.

        ``start_ms`` should sit on an hour boundary of the factory's shifts. Returns the
        raw rows per hour from ``start_ms`` up to the watermark, which after the audit
        are the rows behind each hour's 60-s buckets too.
        """
        end = min(settled_ms - settled_ms % BUCKET_MS, self.done_until.get(machine_type, 0))
        if end <= start_ms:
            return np.zeros(0, dtype=np.int64)
        raw = self.store.hourly_rows(self.db, machine_type, start_ms, end, "raw")
        rolled = self.store.hourly_rows(self.db, machine_type, start_ms, end, "rolled_up")
        for lo, hi in _runs(np.flatnonzero(raw != rolled), start_ms, end):
            self.store.downsample(self.db, machine_type, lo, hi)
            log.info(
                kv("late_data_downsampled", db=self.db, type=machine_type, start_ms=lo, end_ms=hi)
            )
        return raw


def _runs(hours: np.ndarray, start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """Merge hour indexes into ``[lo, hi)`` spans clipped to ``end_ms``.

    >>> _runs(np.array([0, 1, 3]), 0, 10 * HOUR_MS)
    [(0, 7200000), (10800000, 14400000)]
    """
    if not len(hours):
        return []
    breaks = np.flatnonzero(np.diff(hours) > 1)
    firsts = hours[np.r_[0, breaks + 1]]
    lasts = hours[np.r_[breaks, len(hours) - 1]]
    return [
        (start_ms + int(a) * HOUR_MS, min(start_ms + (int(b) + 1) * HOUR_MS, end_ms))
        for a, b in zip(firsts, lasts, strict=True)
    ]
