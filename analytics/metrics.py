"""Analytics self-metrics (prefix ``millwatch_analytics_``), served for Prometheus.

Exposed names::

    cycles_total                    passes over every factory
    cycle_seconds                   histogram: time of one pass
    kpi_shifts_computed_total{why}  shift KPI recomputations: ``open`` (the running shift),
                                    ``late`` (a closed shift got new rows), ``first``
    points_written_total{measurement}  KPI, anomaly, alarm and roll-up points stored
    alarms_raised_total             alarm episodes first seen
    monitor_fits_total              anomaly monitors (re)trained
    errors_total{stage}             failed queries/writes/computations; the cycle goes on
                                    with the next factory and retries the next time
    lag_seconds{factory}            age of the newest scored bucket
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from millwatch.selfmetrics import MetricsServer, snapshot

__all__ = ["PREFIX", "AnalyticsMetrics"]

PREFIX: Final = "millwatch_analytics_"


class AnalyticsMetrics:
    """The collectors of one analytics worker, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r, p = self.registry, PREFIX
        self.cycles = Counter(f"{p}cycles", "passes over every factory", registry=r)
        self.cycle_seconds = Histogram(f"{p}cycle_seconds", "time of one pass", registry=r)
        self.kpi_shifts = Counter(
            f"{p}kpi_shifts_computed", "shift KPI recomputations", ["why"], registry=r
        )
        self.points = Counter(f"{p}points_written", "points stored", ["measurement"], registry=r)
        self.alarms = Counter(f"{p}alarms_raised", "alarm episodes first seen", registry=r)
        self.fits = Counter(f"{p}monitor_fits", "anomaly monitors trained", registry=r)
        self.errors = Counter(f"{p}errors", "failed stages", ["stage"], registry=r)
        self.lag = Gauge(
            f"{p}lag_seconds", "age of the newest scored bucket", ["factory"], registry=r
        )
        for why in ("open", "late", "first"):
            self.kpi_shifts.labels(why=why)

    def snapshot(self) -> dict[str, float]:
        """Flat counters without the prefix (for logs and tests)."""
        return snapshot(self.registry, PREFIX)

    def serve(self, host: str, port: int) -> MetricsServer:
        """Serve ``/metrics`` on ``host:port`` (0 picks a free port)."""
        return MetricsServer(self.registry, host, port)
