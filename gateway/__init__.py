"""The millwatch edge gateway: read machines through input plugins, publish over MQTT.

Data path: input plugins (``gateway.inputs``) → :class:`Agent` batches per machine →
:class:`Outbox` (durable SQLite FIFO, written before publishing) → :class:`Publisher`
(MQTT 5, QoS 1, rows deleted on PUBACK). :class:`Gateway` wires them together and
``python -m gateway -c gateway.toml`` runs one; ``gateway/sample.toml`` documents
every setting.
"""

from gateway.agent import Agent, Produced
from gateway.errors import (
    ConfigError,
    GatewayError,
    OutboxFullError,
    OutboxStorageError,
    PublishError,
)
from gateway.metrics import GatewayMetrics
from gateway.outbox import Outbox, OutboxRow
from gateway.publisher import Publisher
from gateway.service import Gateway
from gateway.settings import GatewaySettings

__all__ = [
    "Agent",
    "ConfigError",
    "Gateway",
    "GatewayError",
    "GatewayMetrics",
    "GatewaySettings",
    "Outbox",
    "OutboxFullError",
    "OutboxRow",
    "OutboxStorageError",
    "Produced",
    "PublishError",
    "Publisher",
]
