"""Wire output, consumer, writer and metrics into one ingest worker.

:class:`Ingest` runs in-process (tests, embedding); :func:`run` is what
``python -m ingest`` calls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

from ingest.consumer import Consumer, MqttClient, paho_client
from ingest.errors import IngestError
from ingest.logs import kv
from ingest.metrics import IngestMetrics
from ingest.outputs import Output, make_output
from ingest.settings import IngestSettings
from ingest.writer import Writer
from millwatch.lifecycle import Lifecycle
from millwatch.selfmetrics import MetricsServer

__all__ = ["Ingest", "run"]

log = logging.getLogger(__name__)

HEALTH_CHECK_S: Final = 1.0


class Ingest(Lifecycle):
    """One ingest worker: MQTT in, InfluxDB out, acks after the write.

    Parameters
    ----------
    settings
        Service settings.
    output
        Injected output; by default :func:`ingest.outputs.make_output`.
    client_factory
        Injected MQTT client builder (a fake in unit tests).

    Examples
    --------
    >>> from ingest.outputs import MemoryOutput
    >>> ingest = Ingest(IngestSettings(mqtt_port=1), output=MemoryOutput())
    >>> ingest.metrics.snapshot()["acked_total"]
    0.0
    """

    def __init__(
        self,
        settings: IngestSettings,
        output: Output | None = None,
        client_factory: Callable[[IngestSettings], MqttClient] = paho_client,
    ) -> None:
        self.settings = settings
        self.metrics = IngestMetrics()
        self.output = output if output is not None else make_output(settings)
        self.consumer = Consumer(settings, self.metrics, client_factory)
        self.writer = Writer(settings, self.output, self.consumer, self.metrics)
        self._server: MetricsServer | None = None
        self._started = self._stopped = False

    @property
    def metrics_port(self) -> int | None:
        """Port of the Prometheus endpoint, when one is served."""
        return self._server.port if self._server else None

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until connected and subscribed; ``False`` on timeout."""
        return self.consumer.ready.wait(timeout)

    def start(self) -> None:
        """Serve metrics (if configured), start the writer, connect to the broker."""
        s = self.settings
        if s.metrics_port:
            self._server = self.metrics.serve(s.metrics_host, s.metrics_port)
        self.writer.start()
        self.consumer.start()
        self._started = True
        log.info(
            kv(
                "ingest_started",
                worker=s.client_id,
                broker=f"{s.mqtt_host}:{s.mqtt_port}",
                influx=s.influx_url,
                api=s.influx_api,
                metrics_port=self.metrics_port or 0,
            )
        )

    def stop(self) -> None:
        """Stop taking messages, flush and ack what is buffered if InfluxDB is up, disconnect.

        Whatever could not be written stays unacked in the broker's persistent
        session and is delivered again on the next start.
        """
        if self._stopped:
            return
        self._stopped = True
        self.consumer.stop_accepting()
        if self._started:
            self.writer.stop()
            self.consumer.close()
        self.output.close()
        if self._server:
            self._server.close()
        snap = self.metrics.snapshot()
        log.info(
            kv(
                "ingest_stopped",
                worker=self.settings.client_id,
                acked=int(snap["acked_total"]),
                unacked=int(snap["unacked"]),
            )
        )


def run(settings: IngestSettings, stop: threading.Event) -> None:
    """Run one worker until ``stop`` is set, then shut it down cleanly.

    Raises
    ------
    IngestError
        If the writer thread died; the caller should exit non-zero so a
        supervisor restarts the worker (the broker then redelivers).
    """
    with Ingest(settings) as ingest:
        while not stop.wait(HEALTH_CHECK_S):
            if ingest.writer.failed is not None:
                raise IngestError("writer thread died") from ingest.writer.failed
