"""Ingest self-metrics: Prometheus collectors plus a flat snapshot for InfluxDB.

Every :class:`IngestMetrics` owns its own ``CollectorRegistry``, so several ingest
instances (as in the tests) can live in one process without name clashes.

Exposed names, each behind the prefix ``millwatch_ingest_`` (the ``internal_ingest``
snapshot and ``millwatch up`` drop it)::

    messages_received_total{channel}   messages taken off MQTT (redeliveries too)
    messages_rejected_total{reason}    rejections: contract violations, ``ingest_error``,
                                       ``influx_rejected``; counted once the dead_letter
                                       row is stored, just before the ack (see below)
    lines_written_total{measurement}   data points InfluxDB accepted (dead_letter rows not)
    write_retries_total                failed write attempts that will be retried
    write_errors_total                 write requests the server refused for good (4xx)
    acked_total                        PUBACKs sent
    unacked                            messages received and not yet settled
    ack_lag_seconds                    age of the oldest unsettled message
    redeliveries_purged_total          queued copies dropped to bound memory; the broker
                                       resends them (see :mod:`ingest.consumer`)
    batch_write_seconds                histogram: time to store one batch, retries included
    connect_refused_total{reason}      CONNACKs refusing us (e.g. "Bad user name or
                                       password"); paho keeps reconnecting
    broker_dropped_messages            broker's ``$SYS/broker/publish/messages/dropped``

Like ``messages_received_total`` and ``lines_written_total``, the reject counter
counts events, not distinct messages: a rejected message whose ack never reached
the broker (the connection dropped first) is redelivered, rejected and counted
again. Distinct rejects are the rows of ``dead_letter`` in ``millwatch_internal``
(one per delivery, timestamped with its receive time).

:meth:`IngestMetrics.snapshot` flattens the same values for the
``internal_ingest`` measurement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ingest.errors import INFLUX_REJECTED, INGEST_ERROR
from millwatch import contract
from millwatch.selfmetrics import MetricsServer, snapshot

__all__ = ["IngestMetrics"]

#: Label values created up front, so every series exists (at 0) from the start and
#: ``rate()`` and summed totals work before the first event. Reasons are those the
#: contract's decoders document, plus ``ingest_error`` (a decoder crash) and
#: ``influx_rejected`` (InfluxDB refused the message); a reason not listed here is
#: still counted when it occurs.
#: Prometheus names carry the service, as the gateway's do; snapshots drop it.
PREFIX: Final = "millwatch_ingest_"
CHANNELS: Final = ("telemetry", "event", "fault_label", "metrics", "invalid")
REJECT_REASONS: Final = (*contract.REJECT_REASONS, INGEST_ERROR, INFLUX_REJECTED)
MEASUREMENTS: Final = (
    *sorted({t.measurement for t in contract.MACHINE_TYPES.values()}),
    contract.EVENT_MEASUREMENT,
    contract.FAULT_MEASUREMENT,
    "internal_gateway",
)
_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class IngestMetrics:
    """Counters and gauges of one ingest worker."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_received = Counter(
            f"{PREFIX}messages_received", "MQTT messages taken in", ["channel"], registry=r
        )
        self.messages_rejected = Counter(
            f"{PREFIX}messages_rejected",
            "Messages rejected and dead-lettered (redeliveries count again)",
            ["reason"],
            registry=r,
        )
        self.lines_written = Counter(
            f"{PREFIX}lines_written", "Data points InfluxDB accepted", ["measurement"], registry=r
        )
        self.write_retries = Counter(
            f"{PREFIX}write_retries", "Failed write attempts that are retried", registry=r
        )
        self.write_errors = Counter(
            f"{PREFIX}write_errors",
            "Write requests refused for good (4xx, partial write)",
            registry=r,
        )
        self.acked = Counter(f"{PREFIX}acked", "PUBACKs sent", registry=r)
        self.unacked = Gauge(f"{PREFIX}unacked", "Messages not settled yet", registry=r)
        self.redeliveries_purged = Counter(
            f"{PREFIX}redeliveries_purged",
            "Queued copies of unacked messages dropped because the broker resends them",
            registry=r,
        )
        self.ack_lag = Gauge(
            f"{PREFIX}ack_lag_seconds", "Age of the oldest unsettled message", registry=r
        )
        self.batch_write_seconds = Histogram(
            f"{PREFIX}batch_write_seconds",
            "Time to store one batch, retries included",
            registry=r,
            buckets=_BUCKETS,
        )
        self.connect_refused = Counter(
            f"{PREFIX}connect_refused",
            "CONNACKs that refused the connection (bad login, not authorized...), by reason",
            ["reason"],
            registry=r,
        )
        self.broker_dropped = Gauge(
            f"{PREFIX}broker_dropped_messages",
            "Broker $SYS publish/messages/dropped",
            registry=r,
        )

        for channel in CHANNELS:
            self.messages_received.labels(channel=channel)
        for reason in REJECT_REASONS:
            self.messages_rejected.labels(reason=reason)
        for measurement in MEASUREMENTS:
            self.lines_written.labels(measurement=measurement)

    def track_unacked(self, count: Callable[[], float], lag: Callable[[], float]) -> None:
        """Read ``unacked`` and ``ack_lag_seconds`` live from the consumer."""
        self.unacked.set_function(count)
        self.ack_lag.set_function(lag)

    def snapshot(self) -> dict[str, float]:
        """Flatten every sample into ``{field: value}`` for ``internal_ingest``.

        E.g. ``messages_rejected_total`` and ``messages_rejected_schema_total``; see
        :func:`millwatch.selfmetrics.snapshot`.
        """
        return snapshot(self.registry, PREFIX)

    def serve(self, host: str, port: int) -> MetricsServer:
        """Start the Prometheus text endpoint on ``host:port`` (0 picks a free port)."""
        return MetricsServer(self.registry, host, port)
