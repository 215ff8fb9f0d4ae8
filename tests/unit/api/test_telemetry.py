"""Telemetry buckets: where the 60-s table ends and raw samples take over."""

from __future__ import annotations

from typing import Any

from api.telemetry import pick_interval_s, read_buckets, uses_rollup
from millwatch.influxql import Series

HOUR = 3_600_000


class RecordingInflux:
    """Answers the newest-bucket probe with ``newest_ms`` and records every query."""

    def __init__(self, newest_ms: int | None) -> None:
        self.newest_ms = newest_ms
        self.queries: list[str] = []

    def query(self, db: str, q: str, params: dict[str, Any] | None = None) -> list[Series]:
        self.queries.append(q)
        assert params == {"machine": "l1"}
        if 'last("rows")' in q:
            if self.newest_ms is None:
                return []
            return [Series({}, ["time", "last"], [[self.newest_ms, 60]])]
        table = "1m" if '"loom_1m"' in q else "raw"
        return [Series({}, ["time", "speed_rpm"], [[0, table]])]


def test_short_ranges_read_raw_samples_only() -> None:
    influx = RecordingInflux(newest_ms=None)
    rows, source = read_buckets(influx, "f_x", "l1", "loom", ["speed_rpm"], "mean", 0, HOUR, 60)
    assert source == "raw" and len(influx.queries) == 1 and rows == [[0, "raw"]]


def test_long_ranges_read_the_table_up_to_a_bucket_boundary_then_raw() -> None:
    start, end = 10 * HOUR + 30_000, 22 * HOUR  # start 30 s into a minute
    newest = 20 * HOUR + 7 * 60_000  # the table's newest bucket: 20:07
    influx = RecordingInflux(newest)
    rows, source = read_buckets(influx, "f_x", "l1", "loom", ["speed_rpm"], "mean", start, end, 600)
    assert source == "1m+raw" and rows == [[0, "1m"], [0, "raw"]]
    table_q, raw_q = influx.queries[1:]
    grid = 10 * HOUR  # whole minute at or before start
    boundary = grid + (newest + 60_000 - grid) // 600_000 * 600_000  # 20:00, not 20:08
    assert f"time >= {grid}ms AND time < {boundary}ms" in table_q and '"loom_1m"' in table_q
    assert f"time >= {boundary}ms AND time < {end}ms" in raw_q and 'FROM "loom" ' in raw_q
    assert "GROUP BY time(600s, 0ms)" in table_q and "GROUP BY time(600s, 0ms)" in raw_q


def test_a_table_that_covers_the_range_needs_no_raw_query() -> None:
    influx = RecordingInflux(newest_ms=22 * HOUR - 60_000)
    _, source = read_buckets(influx, "f_x", "l1", "loom", ["speed_rpm"], "last", 0, 22 * HOUR, 60)
    assert source == "1m" and len(influx.queries) == 2


def test_an_empty_table_leaves_everything_to_raw() -> None:
    influx = RecordingInflux(newest_ms=None)
    _, source = read_buckets(influx, "f_x", "l1", "loom", ["speed_rpm"], "mean", 0, 8 * HOUR, 60)
    assert source == "raw"


def test_min_and_max_never_use_the_table_and_intervals_fit_max_points() -> None:
    assert not uses_rollup(86_400, 60, "max") and uses_rollup(86_400, 60, "mean")
    assert not uses_rollup(86_400, 90, "mean")  # not whole minutes
    assert pick_interval_s(92 * 86_400, 10_000) == 900
    assert pick_interval_s(3_600, 10_000) == 1
