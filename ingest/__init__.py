"""millwatch ingest: MQTT telemetry from the gateways into InfluxDB, at least once.

Messages arrive on a persistent MQTT v5 session (shared subscription, QoS 1,
manual acks), are decoded with :mod:`millwatch.contract`, turned into line
protocol (:mod:`ingest.lineproto`), written in batches, and acked only after
InfluxDB has them. Redelivered messages rewrite identical points, so duplicates
never reach InfluxDB. Invalid messages are counted, dead-lettered and acked.

Modules: ``settings`` (configuration), ``errors`` (exception tree), ``lineproto``
(formatting), ``decode`` (message to lines), ``consumer`` (MQTT side),
``writer`` (batching, retries, acks), ``outputs`` (InfluxDB v1/v2, memory),
``metrics`` (self-metrics), ``service`` (the :class:`Ingest` worker).
"""

from ingest.errors import IngestError, WriteError
from ingest.metrics import IngestMetrics
from ingest.service import Ingest, run
from ingest.settings import IngestSettings

__all__ = ["Ingest", "IngestError", "IngestMetrics", "IngestSettings", "WriteError", "run"]
