"""Fakes for ingest unit tests: an MQTT client driven by hand, no sockets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from paho.mqtt.client import ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from ingest.consumer import Consumer
from ingest.metrics import PREFIX, IngestMetrics
from ingest.outputs import MemoryOutput
from ingest.settings import IngestSettings
from ingest.writer import Writer


class FakeInfo:
    def wait_for_publish(self, timeout: float | None = None) -> None:
        return None


class FakeMqttClient:
    """Records subscribe/publish/ack calls; tests call connect/drop/deliver."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.acks: list[int] = []
        self.published: list[tuple[str, bytes, int]] = []
        self.subscriptions: list[Any] = []
        self.routes: dict[str, Any] = {}
        self.connect_kwargs: dict[str, Any] = {}
        self.loop_running = False
        self.disconnected = False
        self.on_connect: Any = None
        self.on_disconnect: Any = None
        self.on_message: Any = None
        self.on_subscribe: Any = None
        self.on_connect_fail: Any = None
        self._mid = 0

    # -- paho surface -------------------------------------------------------
    def connect_async(self, host: str, port: int, keepalive: int, **kwargs: Any) -> None:
        self.connect_kwargs = {"host": host, "port": port, "keepalive": keepalive, **kwargs}

    def loop_start(self) -> None:
        self.loop_running = True

    def loop_stop(self) -> None:
        self.loop_running = False

    def disconnect(self) -> None:
        self.disconnected = True

    def subscribe(self, topics: Any) -> None:
        self.subscriptions.append(topics)
        granted = [ReasonCode(PacketTypes.SUBACK, identifier=qos) for _, qos in topics]
        self.on_subscribe(self, None, len(self.subscriptions), granted, None)

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> FakeInfo:
        self.published.append((topic, payload, qos))
        return FakeInfo()

    def ack(self, mid: int, qos: int) -> None:
        self.acks.append(mid)

    def message_callback_add(self, sub: str, callback: Any) -> None:
        self.routes[sub] = callback

    # -- test drivers ---------------------------------------------------------
    def connect(self, session_present: bool = True) -> None:
        rc = ReasonCode(PacketTypes.CONNACK, "Success")
        self.on_connect(self, None, ConnectFlags(session_present), rc, None)

    def drop(self) -> None:
        rc = ReasonCode(PacketTypes.DISCONNECT, "Unspecified error")
        self.on_disconnect(self, None, DisconnectFlags(False), rc, None)

    def deliver(self, topic: str, payload: bytes, qos: int = 1) -> int:
        self._mid += 1
        message = MQTTMessage(self._mid, topic.encode())
        message.payload = payload
        message.qos = qos
        route = self.routes.get(topic)
        (route or self.on_message)(self, None, message)
        return self._mid


@dataclass
class Rig:
    """A consumer + writer on a fake client and a memory output."""

    settings: IngestSettings
    client: FakeMqttClient
    output: MemoryOutput
    metrics: IngestMetrics
    consumer: Consumer
    writer: Writer

    def flush(self) -> None:
        """Run the writer loop body until the queue is empty."""
        while not self.consumer.queue.empty():
            batch, _ = self.writer.collect()
            if batch.deliveries:
                self.writer.deliver(batch)

    def value(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(PREFIX + name, labels or None) or 0.0


def make_settings(**overrides: Any) -> IngestSettings:
    base: dict[str, Any] = {
        "flush_interval_s": 0.01,
        "retry_initial_s": 0.001,
        "retry_max_s": 0.01,
        "internal_interval_s": 3600,
    }
    return IngestSettings(**(base | overrides))


class FakeClients:
    """A client factory for ``Consumer``/``Ingest`` that remembers what it built."""

    def __init__(self) -> None:
        self.created: list[FakeMqttClient] = []

    def __call__(self, settings: IngestSettings) -> FakeMqttClient:
        self.created.append(FakeMqttClient(settings))
        return self.created[-1]


@pytest.fixture
def fake_clients() -> FakeClients:
    return FakeClients()


@pytest.fixture
def make_rig() -> Callable[..., Rig]:
    def build(**overrides: Any) -> Rig:
        settings = make_settings(**overrides)
        factory = FakeClients()
        metrics = IngestMetrics()
        output = MemoryOutput()
        consumer = Consumer(settings, metrics, factory)
        writer = Writer(settings, output, consumer, metrics)
        return Rig(settings, factory.created[0], output, metrics, consumer, writer)

    return build


@pytest.fixture
def rig(make_rig: Callable[..., Rig]) -> Rig:
    r = make_rig()
    r.consumer.start()
    r.client.connect(session_present=False)
    return r
