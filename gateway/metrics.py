"""The gateway's self-metrics: Prometheus counters in a registry of their own.

Each :class:`GatewayMetrics` owns a ``CollectorRegistry``, so several gateways (tests,
benchmarks) in one process never share or collide on counters. The same numbers go
two ways: scraped over HTTP when ``metrics_port`` is set, and published as a
:meth:`~GatewayMetrics.snapshot` on the contract ``metrics`` channel.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge

from millwatch.selfmetrics import MetricsServer, snapshot

log = logging.getLogger(__name__)

PREFIX = "millwatch_gateway_"


class GatewayMetrics:
    """Counters and gauges of one gateway; attribute names match the exported names."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r, p = self.registry, PREFIX
        self.messages_produced = Counter(
            f"{p}messages_produced", "Messages the agent appended to the outbox.", registry=r
        )
        self.messages_published = Counter(
            f"{p}messages_published", "Messages handed to the MQTT client.", registry=r
        )
        self.messages_acked = Counter(
            f"{p}messages_acked", "Messages the broker acknowledged (PUBACK).", registry=r
        )
        self.publish_errors = Counter(
            f"{p}publish_errors",
            "Publish return codes and PUBACK reason codes other than success.",
            ["rc"],
            registry=r,
        )
        self.connect_refused = Counter(
            f"{p}connect_refused",
            "CONNACKs that refused the connection (bad login, not authorized...), by reason.",
            ["reason"],
            registry=r,
        )
        self.outbox_dropped = Counter(
            f"{p}outbox_dropped",
            "Messages lost to a full outbox or full disk, by policy.",
            ["policy"],
            registry=r,
        )
        self.samples = Counter(f"{p}samples", "Machine samples gathered.", registry=r)
        self.events = Counter(f"{p}events", "Machine events gathered.", registry=r)
        self.input_errors = Counter(
            f"{p}input_errors", "Input start or gather calls that raised.", registry=r
        )
        self.outbox_depth = Gauge(f"{p}outbox_depth", "Messages in the outbox.", registry=r)
        self.outbox_held = Gauge(
            f"{p}outbox_held",
            "Messages held in memory because the outbox could not be written.",
            registry=r,
        )
        self.outbox_storage_failing = Gauge(
            f"{p}outbox_storage_failing",
            "1 while the outbox cannot be written (disk full, I/O error): an alarm.",
            registry=r,
        )
        self.outbox_storage_errors = Counter(
            f"{p}outbox_storage_errors",
            "Outbox writes that failed (each is retried; nothing is lost by a failure).",
            registry=r,
        )
        self.in_flight = Gauge(
            f"{p}in_flight", "Messages handed to the MQTT client, not yet acked.", registry=r
        )
        self.connected = Gauge(f"{p}connected", "1 while connected to the broker.", registry=r)
        self._server: MetricsServer | None = None

    def snapshot(self) -> dict[str, float]:
        """Every counter as ``{field: value}`` for the MQTT metrics channel.

        >>> m = GatewayMetrics()
        >>> m.publish_errors.labels(rc="MQTT_ERR_QUEUE_SIZE").inc(2)
        >>> s = m.snapshot()
        >>> s["publish_errors_total"], s["publish_errors_mqtt_err_queue_size_total"]
        (2.0, 2.0)
        """
        return snapshot(self.registry, PREFIX)

    def start_http_server(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` for Prometheus on ``host:port`` from a daemon thread."""
        self._server = MetricsServer(self.registry, host, port)
        log.info("event=metrics_http_started addr=%s:%d", host, self._server.port)

    @property
    def http_port(self) -> int | None:
        """Port of the HTTP server (useful with port 0), or None when not serving."""
        return self._server.port if self._server else None

    def stop_http_server(self) -> None:
        """Stop the HTTP server if it runs."""
        if self._server is not None:
            self._server.close()
            self._server = None
