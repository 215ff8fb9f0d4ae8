"""The real servers start, and their configs give the guarantees ingest relies on."""

import threading
import uuid
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from millwatch import servers
from millwatch.servers import InfluxDB, Mosquitto, ServerError

from .conftest import Query

TIMEOUT_S = 30


class _Client:
    """A paho MQTT v5 client that waits for each acknowledgement and records messages."""

    def __init__(self, broker: Mosquitto, client_id: str, *, persistent: bool = False) -> None:
        self.received: list[mqtt.MQTTMessage] = []
        self.session_present: bool | None = None
        self._changed = threading.Condition()
        self._connected = threading.Event()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self._client.max_inflight_messages_set(100)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)
        if persistent:
            properties.SessionExpiryInterval = 3600  # v5: without it the session ends on disconnect
        self._client.connect(
            broker.host, broker.port, clean_start=not persistent, properties=properties
        )
        self._client.loop_start()
        assert self._connected.wait(TIMEOUT_S), "no CONNACK"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def subscribe(self, topic: str) -> None:
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.subscribe(topic, qos=1)
        assert subscribed.wait(TIMEOUT_S), "no SUBACK"

    def publish(self, topic: str, payloads: list[bytes]) -> None:
        infos = [self._client.publish(topic, payload, qos=1) for payload in payloads]
        for info in infos:
            info.wait_for_publish(TIMEOUT_S)
            assert info.is_published(), "no PUBACK"

    def wait_for(self, count: int) -> list[bytes]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.received) >= count, TIMEOUT_S)
            return [message.payload for message in self.received]

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.session_present = flags.session_present
        self._connected.set()

    def _on_message(self, client, userdata, message) -> None:
        with self._changed:
            self.received.append(message)
            self._changed.notify_all()


def test_mosquitto_delivers_qos1_to_subscriber(mosquitto: Mosquitto) -> None:
    assert mosquitto.running
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    with _Client(mosquitto, "sub") as sub, _Client(mosquitto, "pub") as pub:
        sub.subscribe("millwatch/test/#")
        pub.publish("millwatch/test/loom-1", [b"hello"])

        assert sub.wait_for(1) == [b"hello"]
        assert sub.received[0].topic == "millwatch/test/loom-1"
        assert sub.received[0].qos == 1


def test_stop_and_kill_end_the_process(mosquitto: Mosquitto) -> None:
    mosquitto.stop()
    assert not mosquitto.running
    assert mosquitto.pid is None
    mosquitto.stop()  # a second stop is a no-op

    mosquitto.start()
    assert mosquitto.running
    mosquitto.kill()
    assert not mosquitto.running


def test_queued_message_for_offline_subscriber_survives_restart(mosquitto: Mosquitto) -> None:
    with _Client(mosquitto, "ingest", persistent=True) as sub:
        sub.subscribe("millwatch/test/#")
    with _Client(mosquitto, "gateway") as pub:
        pub.publish("millwatch/test/loom-1", [b"queued before restart"])
    old_pid = mosquitto.pid

    mosquitto.restart()

    assert mosquitto.pid != old_pid
    with _Client(mosquitto, "ingest", persistent=True) as sub:
        assert sub.session_present
        assert sub.wait_for(1) == [b"queued before restart"]


def test_offline_queue_holds_more_than_mosquittos_default_1000(mosquitto: Mosquitto) -> None:
    sent = [str(i).encode() for i in range(3000)]
    with _Client(mosquitto, "ingest", persistent=True) as sub:
        sub.subscribe("millwatch/test/#")
    with _Client(mosquitto, "gateway") as pub:
        pub.publish("millwatch/test/loom-1", sent)

    with _Client(mosquitto, "ingest", persistent=True) as sub:
        assert sub.wait_for(len(sent)) == sent


def test_mosquitto_exit_during_start_reports_its_log(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, extra_conf="no_such_option true")

    with pytest.raises(ServerError, match=r"exited with code \d+(.|\n)*no_such_option"):
        broker.start()
    assert not broker.running


def test_influxdb_write_then_query(influxdb: InfluxDB, influx_query: Query) -> None:
    db = f"test_{uuid.uuid4().hex[:8]}"
    line = "loom,site=s1,machine_id=L01 rpm=412.5,picks=1200i 1700000000000000000"
    with httpx.Client(base_url=influxdb.url, trust_env=False) as http:
        http.post("/query", data={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()
        written = http.post("/write", params={"db": db}, content=line)
    assert written.status_code == 204, written.text

    rows = influx_query(db, "SELECT rpm, picks FROM loom GROUP BY *")

    assert rows == [
        {
            "time": 1700000000000000000,
            "rpm": 412.5,
            "picks": 1200,
            "site": "s1",
            "machine_id": "L01",
        }
    ]
    databases = influx_query(db, "SHOW DATABASES")
    assert {"name": db} in databases
    assert {"name": "_internal"} not in databases  # [monitor] store-enabled = false


@pytest.mark.parametrize(
    ("server_class", "message"),
    [
        (Mosquitto, r"mosquitto not found: run scripts/setup \(apt-get install mosquitto\)"),
        (InfluxDB, r"influxd not found: run scripts/setup \(apt-get install influxdb\)"),
    ],
)
def test_missing_binary_is_a_clear_error(
    server_class: type[Mosquitto | InfluxDB],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(servers.shutil, "which", lambda *args, **kwargs: None)
    server = server_class(tmp_path)

    with pytest.raises(ServerError, match=message):
        server.start()
    assert not server.running
