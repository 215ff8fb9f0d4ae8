"""millwatch ingest: MQTT telemetry from the gateways into InfluxDB, at least once.

Messages arrive on a persistent MQTT v5 session (shared subscription, QoS 1,
manual acks), are decoded with :mod:`millwatch.contract`, turned into line
protocol (:mod:`ingest.lineproto`), written in batches, and acked only after
InfluxDB has them. Redelivered messages rewrite identical points, so duplicates
never reach InfluxDB. Invalid messages, and valid ones InfluxDB refuses, are
counted, stored as ``dead_letter`` rows in ``millwatch_internal``, republished on
``mw/v1/_deadletter/{reason}`` and acked.

Modules: ``settings`` (configuration), ``errors`` (exception tree, reject
reasons), ``lineproto`` (formatting), ``decode`` (message to lines), ``inbox``
(deliveries and their queue), ``consumer`` (MQTT side), ``writer`` (batching,
retries, acks), ``outputs`` (InfluxDB v1/v2, memory), ``metrics``
(self-metrics), ``service`` (the :class:`Ingest` worker).
"""

from ingest.errors import IngestError, WriteError
from ingest.metrics import IngestMetrics
from ingest.service import Ingest, run
from ingest.settings import IngestSettings

__all__ = ["Ingest", "IngestError", "IngestMetrics", "IngestSettings", "WriteError", "run"]
