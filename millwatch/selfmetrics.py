"""Self-metrics shared by every service: one flat snapshot format and the HTTP endpoint.

Each service keeps its Prometheus collectors in a registry of its own (several services
can share a test process). The snapshot is what travels outside Prometheus: the
gateway publishes it on the contract ``metrics`` channel and ingest writes it to
``millwatch_internal``, so its names must be valid InfluxDB field keys
(``[a-z0-9_]``, as ``contract.decode_metrics`` checks).
"""

from __future__ import annotations

import re
import threading
from typing import Final
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

__all__ = ["MetricsServer", "snapshot"]

_NOT_KEY: Final = re.compile(r"[^a-z0-9_]+")


def snapshot(registry: CollectorRegistry, prefix: str) -> dict[str, float]:
    """Flatten ``registry`` into ``{field: value}`` without ``prefix``.

    A labelled sample adds to the plain name's total and gets a field of its own with the
    label values before ``_total``; histograms give ``_sum`` and ``_count``; a labelled
    counter never used still reports its total as 0.

    >>> from prometheus_client import Counter
    >>> r = CollectorRegistry()
    >>> c = Counter("x_errors", "", ["rc"], registry=r)
    >>> c.labels(rc="MQTT_ERR_NO_CONN").inc(2)
    >>> snapshot(r, "x_")
    {'errors_total': 2.0, 'errors_mqtt_err_no_conn_total': 2.0}
    """
    out: dict[str, float] = {}
    for family in registry.collect():
        if family.type == "counter":
            out.setdefault(f"{family.name.removeprefix(prefix)}_total", 0.0)
        for sample in family.samples:
            name = sample.name.removeprefix(prefix)
            if name.endswith(("_created", "_bucket")):
                continue
            if not sample.labels:
                out[name] = float(sample.value)
                continue
            out[name] = out.get(name, 0.0) + sample.value
            label = _NOT_KEY.sub("_", "_".join(sample.labels.values()).lower()).strip("_")
            base, total = name.removesuffix("_total"), name.endswith("_total")
            out[f"{base}_{label}{'_total' if total else ''}"] = float(sample.value)
    return out


class MetricsServer:
    """A running Prometheus text endpoint (``/metrics``); :meth:`close` stops it."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        server, thread = start_http_server(port, addr=host, registry=registry)
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.port = int(server.server_port)

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
