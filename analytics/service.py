"""The analytics service: every ``interval_s``, each factory's KPIs and anomalies.

One pass per interval goes factory by factory (each has its own database, jobs and
state, so the factories can be split across workers):

1. downsample the raw rows that settled since the last pass into the 60-s tables;
2. score the new buckets for anomalies and store scores and alarms;
3. every ``kpi_every_s``, audit the KPI horizon for late data and recompute the shifts
   whose data changed, with their cluster roll-ups;
4. report the factory's pass as an ``internal_analytics`` point in ``millwatch_internal``
   (pass time, scoring lag, the worker's counters) for the platform health dashboard,
   unless InfluxDB failed the pass (the failure is counted in the Prometheus counters).

A failing query or write is logged and counted, and that factory is tried again on
the next pass; the other factories go on. So does any other error (a bug), logged with
its traceback and counted under the stage it happened in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from analytics.anomaly_job import AnomalyJob
from analytics.downsample import HOUR_MS, DownsampleSync
from analytics.kpi_job import KpiJob
from analytics.metrics import AnalyticsMetrics
from analytics.settings import AnalyticsSettings
from analytics.store import AnalyticsStore, QueryError
from ingest.errors import WriteError
from ingest.lineproto import point_line
from ingest.logs import kv
from millwatch.contract import INTERNAL_DATABASE, factory_database, now_ms
from millwatch.lifecycle import Lifecycle
from millwatch.site import FactorySite

__all__ = ["INTERNAL_MEASUREMENT", "AnalyticsService", "FactoryJobs"]

log = logging.getLogger("analytics")

#: The service's self-metrics point, one per factory and pass, in ``millwatch_internal``.
INTERNAL_MEASUREMENT: Final = "internal_analytics"
#: Worker counters copied into each point (totals since the worker started).
REPORTED: Final = (
    "cycles_total",
    "errors_total",
    "points_written_total",
    "alarms_raised_total",
    "monitor_fits_total",
    "kpi_shifts_computed_total",
)


@dataclass
class FactoryJobs:
    """Everything the service keeps for one factory (all rebuildable from InfluxDB)."""

    calendar: FactorySite
    sync: DownsampleSync
    anomalies: AnomalyJob
    kpis: KpiJob
    kpi_due_ms: int = 0


@dataclass
class AnalyticsService(Lifecycle):
    """Runs passes on a thread between ``start`` and ``stop``; ``run_pass`` runs one."""

    settings: AnalyticsSettings
    factories: Sequence[FactorySite]
    store: AnalyticsStore | None = None
    clock: Callable[[], int] = now_ms
    metrics: AnalyticsMetrics = field(default_factory=AnalyticsMetrics)

    def __post_init__(self) -> None:
        s = self.settings
        if self.store is None:
            token = s.influx_token.get_secret_value() if s.influx_token else None
            self.store = AnalyticsStore(s.influx_url, token, s.influx_timeout_s)
        self.jobs = [self._jobs(f) for f in self.factories]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._server = None

    def _jobs(self, calendar: FactorySite) -> FactoryJobs:
        assert self.store is not None
        db = factory_database(calendar.id)
        tags = {"cluster": self.settings.cluster, "factory": calendar.id}
        sync = DownsampleSync(self.store, db)
        return FactoryJobs(
            calendar,
            sync,
            AnomalyJob(self.store, db, tags, self.settings),
            KpiJob(self.store, sync, calendar, tags),
        )

    def start(self) -> None:
        """Serve the counters and start passing every ``interval_s``."""
        s = self.settings
        self._server = self.metrics.serve(s.metrics_host, s.metrics_port)
        self._thread = threading.Thread(target=self._loop, name="analytics", daemon=True)
        self._thread.start()
        log.info(kv("analytics_started", factories=len(self.jobs), port=self._server.port))

    def stop(self) -> None:
        """Finish the current pass, then stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=600)
        if self._server is not None:
            self._server.close()
        if self.store is not None:
            self.store.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.run_pass()
            self._stop.wait(max(self.settings.interval_s - (time.monotonic() - began), 0.0))

    def run_pass(self) -> None:
        """One pass over every factory."""
        with self.metrics.cycle_seconds.time():
            for jobs in self.jobs:
                if self._stop.is_set():
                    break
                began = time.monotonic()
                if self._factory_pass(jobs, self.clock()):
                    self._report(jobs, time.monotonic() - began)
        self.metrics.cycles.inc()

    def _factory_pass(self, jobs: FactoryJobs, now: int) -> bool:
        """Run one factory's stages; False when InfluxDB failed (then nothing is reported)."""
        assert self.store is not None
        s, m = self.settings, self.metrics
        settled = now - int(s.settle_s * 1000)
        stage = "discover"
        try:
            types = self.store.machine_types(jobs.sync.db)
            stage = "downsample"
            horizon_start = now - int(max(s.kpi_horizon_h, s.train_h) * HOUR_MS)
            for machine_type in types:
                jobs.sync.advance(machine_type, horizon_start, settled)
            stage = "anomalies"
            done = jobs.anomalies.run(types, settled - settled % 60_000)
            m.fits.inc(done.pop("fits"))
            self._count(done)
            m.lag.labels(factory=jobs.calendar.id).set(
                (now - jobs.anomalies.scored_until_ms) / 1000
            )
            if types and now >= jobs.kpi_due_ms:  # no data yet: try again next pass
                stage = "kpis"
                done = jobs.kpis.run(types, now, settled, s.kpi_horizon_h)
                jobs.kpi_due_ms = now + int(s.kpi_every_s * 1000)
                for why in ("first", "late", "open"):
                    m.kpi_shifts.labels(why=why).inc(done.pop(why))
                self._count(done)
        except (QueryError, WriteError) as exc:
            m.errors.labels(stage=stage).inc()
            log.error(kv("pass_failed", factory=jobs.calendar.id, stage=stage, error=str(exc)))
            return False  # no self-metrics write to pile on a failing InfluxDB
        except Exception:  # a bug must not stop the other factories or later passes
            m.errors.labels(stage=stage).inc()
            log.exception(kv("pass_crashed", factory=jobs.calendar.id, stage=stage))
        return True

    def _report(self, jobs: FactoryJobs, seconds: float) -> None:
        """Store one factory's pass in ``internal_analytics``; a failure is only counted."""
        assert self.store is not None
        now = self.clock()
        totals = self.metrics.snapshot()
        fields = {
            "pass_s": seconds,
            "lag_s": (now - jobs.anomalies.scored_until_ms) / 1000,
            **{name: totals[name] for name in REPORTED if name in totals},
        }
        tags = {"cluster": self.settings.cluster, "factory": jobs.calendar.id}
        try:
            self.store.write(
                INTERNAL_DATABASE, [point_line(INTERNAL_MEASUREMENT, tags, fields, now * 1_000_000)]
            )
        except (QueryError, WriteError) as exc:
            self.metrics.errors.labels(stage="report").inc()
            log.error(kv("report_failed", factory=jobs.calendar.id, error=str(exc)))

    def _count(self, done: dict[str, int]) -> None:
        self.metrics.alarms.inc(done.pop("new_alarms", 0))
        for measurement, n in done.items():
            self.metrics.points.labels(measurement=measurement).inc(n)
