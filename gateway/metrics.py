"""The gateway's self-metrics: Prometheus counters in a registry of their own.

Each :class:`GatewayMetrics` owns a ``CollectorRegistry``, so several gateways (tests,
benchmarks) in one process never share or collide on counters. The same numbers go
two ways: scraped over HTTP when ``metrics_port`` is set, and published as a
:meth:`~GatewayMetrics.snapshot` on the contract ``metrics`` channel.
"""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

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
        self.outbox_dropped = Counter(
            f"{p}outbox_dropped",
            "Messages lost to a full outbox, by policy.",
            ["policy"],
            registry=r,
        )
        self.samples = Counter(f"{p}samples", "Machine samples gathered.", registry=r)
        self.events = Counter(f"{p}events", "Machine events gathered.", registry=r)
        self.input_errors = Counter(
            f"{p}input_errors", "Input start or gather calls that raised.", registry=r
        )
        self.outbox_depth = Gauge(f"{p}outbox_depth", "Messages in the outbox.", registry=r)
        self.in_flight = Gauge(
            f"{p}in_flight", "Messages handed to the MQTT client, not yet acked.", registry=r
        )
        self.connected = Gauge(f"{p}connected", "1 while connected to the broker.", registry=r)
        self._server: WSGIServer | None = None
        self._server_thread: threading.Thread | None = None

    def snapshot(self) -> dict[str, float]:
        """Every sample as ``{name: value}`` for the MQTT metrics channel.

        Names drop the ``millwatch_gateway_`` prefix; a labelled sample becomes
        ``name.labelvalue`` (``publish_errors_total.MQTT_ERR_QUEUE_SIZE``), and each
        labelled counter also gets its unlabelled sum, so a reader needs no label logic.

        >>> m = GatewayMetrics()
        >>> m.publish_errors.labels(rc="MQTT_ERR_QUEUE_SIZE").inc(2)
        >>> s = m.snapshot()
        >>> s["publish_errors_total"], s["publish_errors_total.MQTT_ERR_QUEUE_SIZE"]
        (2.0, 2.0)
        """
        out: dict[str, float] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                name = sample.name.removeprefix(PREFIX)
                if sample.labels:
                    out[name] = out.get(name, 0.0) + sample.value
                    name = ".".join([name, *sample.labels.values()])
                out[name] = float(sample.value)
            if family.type == "counter":  # labelled counters have no sample before use
                out.setdefault(f"{family.name.removeprefix(PREFIX)}_total", 0.0)
        return out

    def start_http_server(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` for Prometheus on ``host:port`` from a daemon thread."""
        self._server, self._server_thread = start_http_server(port, host, registry=self.registry)
        log.info("event=metrics_http_started addr=%s:%d", host, self.http_port)

    @property
    def http_port(self) -> int | None:
        """Port of the HTTP server (useful with port 0), or None when not serving."""
        return self._server.server_port if self._server else None

    def stop_http_server(self) -> None:
        """Stop the HTTP server if it runs."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
