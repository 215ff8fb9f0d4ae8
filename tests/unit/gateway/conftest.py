"""Fakes for the gateway unit tests: an MQTT client that records, and scripted inputs."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from gateway.inputs.base import Reading
from gateway.settings import GatewaySettings
from millwatch.contract import MachineAddress, decode_records, decode_telemetry, parse_topic


def machine_seq(topic: str, payload: bytes) -> tuple[str, str, int]:
    """(machine, channel, seq) of one machine message, whatever its channel."""
    parsed = parse_topic(topic)
    assert parsed.address is not None, topic
    if parsed.channel == "telemetry":
        seq = decode_telemetry(payload).seq
    else:
        seq = decode_records(payload, parsed.channel).seq
    return parsed.address.machine, parsed.channel, seq


@dataclass
class Sent:
    mid: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class FakeMqttClient:
    """Records publishes; the test fires connect, disconnect and PUBACKs by hand.

    ``rcs`` scripts the return codes of the next ``publish`` calls. With
    ``auto_ack`` every QoS-1 message is acked *inside* ``publish()``, before the
    caller sees the mid (the race a real broker on loopback can produce).
    Retained messages (gateway status) are always acked at once.
    """

    def __init__(self, client_id: str, auto_ack: bool = False) -> None:
        self.client_id = client_id
        self.auto_ack = auto_ack
        self.on_connect: Any = None
        self.on_disconnect: Any = None
        self.on_publish: Any = None
        self.sent: list[Sent] = []
        self.unacked: dict[int, mqtt.MQTTMessageInfo] = {}
        self.rcs: deque[mqtt.MQTTErrorCode] = deque()
        self.raise_on: Callable[[str], bool] = lambda topic: False
        self.will: tuple[str, bytes, int, bool] | None = None
        self.max_inflight: int | None = None
        self.reconnect_delay: tuple[float, float] | None = None
        self.connect_args: tuple[str, int, int] | None = None
        self.loop_running = False
        self.disconnected = False
        self._mid = 0
        self._lock = threading.RLock()

    # --- the client surface the publisher uses --------------------------------
    def will_set(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.will = (topic, payload, qos, retain)

    def reconnect_delay_set(self, min_delay: float, max_delay: float) -> None:
        self.reconnect_delay = (min_delay, max_delay)

    def max_inflight_messages_set(self, inflight: int) -> None:
        self.max_inflight = inflight

    def max_queued_messages_set(self, queue_size: int) -> None:
        self.max_queued = queue_size

    def connect_async(self, host: str, port: int, keepalive: int) -> None:
        self.connect_args = (host, port, keepalive)

    def loop_start(self) -> None:
        self.loop_running = True

    def loop_stop(self) -> None:
        self.loop_running = False

    def disconnect(self) -> None:
        self.disconnected = True

    def publish(
        self, topic: str, payload: bytes, qos: int = 0, retain: bool = False
    ) -> mqtt.MQTTMessageInfo:
        if self.raise_on(topic):
            raise ValueError("Invalid topic.")
        with self._lock:
            self._mid = self._mid % 65535 + 1
            info = mqtt.MQTTMessageInfo(self._mid)
            info.rc = self.rcs.popleft() if self.rcs else mqtt.MQTT_ERR_SUCCESS
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                return info
            self.sent.append(Sent(info.mid, topic, bytes(payload), qos, retain))
            if qos > 0:
                self.unacked[info.mid] = info
        if qos > 0 and (self.auto_ack or retain):
            self.ack(info.mid)
        return info

    # --- what the broker would do ----------------------------------------------
    def connect(self) -> None:
        self.on_connect(self, None, None, ReasonCode(PacketTypes.CONNACK, "Success"), None)

    def drop(self) -> None:
        self.on_disconnect(
            self, None, None, ReasonCode(PacketTypes.DISCONNECT, "Unspecified error"), None
        )

    def ack(self, mid: int, code: int = 0) -> None:
        with self._lock:
            info = self.unacked.pop(mid)
        self.on_publish(self, None, mid, ReasonCode(PacketTypes.PUBACK, identifier=code), None)
        info._set_as_published()

    def ack_all(self, code: int = 0) -> None:
        for mid in sorted(self.unacked):
            self.ack(mid, code)

    def data(self) -> list[Sent]:
        """Messages sent on machine topics (not the gateway's status or metrics)."""
        return [s for s in self.sent if "/_gateway/" not in s.topic]


class ScriptedInput:
    """Looms ``l0000``..: field ``speed_rpm`` = 100*tick + machine, an event on machine 1
    every third tick, and ``gather`` raising on the ticks listed in ``fail_on``."""

    def __init__(
        self,
        n: int = 3,
        hall: str = "weave1",
        fail_on: tuple[int, ...] = (),
        start_failures: int = 0,
    ) -> None:
        self.machines = [MachineAddress("c1", "f01", hall, f"l{i:04d}") for i in range(n)]
        self.fail_on = set(fail_on)
        self.start_failures = start_failures
        self.calls = 0
        self.started = 0
        self.stopped = 0

    def init(self) -> None:
        pass

    def start(self) -> None:
        if self.start_failures:
            self.start_failures -= 1
            raise ConnectionError("PLC unreachable")
        self.started += 1

    def gather(self, ts_ms: int) -> list[Reading]:
        tick = self.calls
        self.calls += 1
        if tick in self.fail_on:
            raise TimeoutError("no answer from PLC")
        n = len(self.machines)
        fields = {
            "speed_rpm": 100.0 * tick + np.arange(n),
            "picks_total": np.full(n, float(tick)),
            "state_code": np.ones(n),
        }
        events = []
        if tick % 3 == 0 and n > 1:
            events.append((1, {"ts": ts_ms, "kind": "stop", "code": "STOP_PROCESS"}))
        return [Reading("loom_airjet", self.machines, ts_ms, fields, events)]

    def stop(self) -> None:
        self.stopped += 1


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., GatewaySettings]:
    def make(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "cluster": "c1",
            "factory": "f01",
            "gateway_id": "gw1",
            "outbox_path": tmp_path / "outbox.sqlite",
            "fast_forward": True,
            "start_ts_ms": 1_767_168_000_000,
        }
        values.update(overrides)
        return GatewaySettings(**values)

    return make


@pytest.fixture
def fake_clients() -> Iterator[list[FakeMqttClient]]:
    """Every fake client built by ``client_factory`` below, in order."""
    yield []


@pytest.fixture
def client_factory(fake_clients: list[FakeMqttClient]) -> Callable[[str], FakeMqttClient]:
    def factory(client_id: str) -> FakeMqttClient:
        client = FakeMqttClient(client_id)
        fake_clients.append(client)
        return client

    return factory


@pytest.fixture
def make_input() -> type[ScriptedInput]:
    return ScriptedInput
