"""Gateway logins from the registry API confine each gateway to its factory on a real broker.

The registry issues logins for gateway gw-a of f01 and gw-b of f02 and serves the
passwd and ACL files; a Mosquitto started with them (plus an ``ingest`` service user)
must let gw-a publish under f01 only, refuse a wrong password, and forget a revoked login.
"""

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, issue_key
from api.mosquitto import hash_password
from api.settings import ApiSettings
from millwatch.servers import Mosquitto

R = "/v1/registry"
TIMEOUT_S = 5.0


class Client:
    """A paho MQTT v5 client that reports CONNACK, PUBACK and messages synchronously."""

    def __init__(self, broker: Mosquitto, username: str, password: str, client_id: str) -> None:
        self.paho = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.paho.username_pw_set(username, password)
        self.connack: queue.Queue[Any] = queue.Queue()
        self.messages: queue.Queue[str] = queue.Queue()
        self.pubacks: dict[int, Any] = {}
        self.subacks: queue.Queue[list[Any]] = queue.Queue()
        self._acked = threading.Condition()
        self.paho.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.paho.on_message = lambda c, u, msg: self.messages.put(msg.topic)
        self.paho.on_publish = self._on_publish
        self.paho.on_subscribe = lambda c, u, mid, codes, p: self.subacks.put(codes)
        self.paho.connect(broker.host, broker.port)
        self.paho.loop_start()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._acked:
            self.pubacks[mid] = reason
            self._acked.notify_all()

    def connected(self) -> bool:
        return not self.connack.get(timeout=TIMEOUT_S).is_failure

    def publish(self, topic: str) -> Any:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        mid = self.paho.publish(topic, b"{}", qos=1).mid
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self.pubacks, TIMEOUT_S)
            return self.pubacks[mid]

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


@pytest.fixture
def registry() -> Iterator[TestClient]:
    app = create_app(ApiSettings(registry_url="sqlite://", influx_url="http://127.0.0.1:9"))
    with TestClient(app) as client:
        with app.state.ctx.database.session() as session:
            _, token = issue_key(session, Role.ADMIN)
            session.commit()
        client.headers["Authorization"] = f"Bearer {token}"
        for factory in ("f01", "f02"):
            body = {"id": factory, "name": factory}
            assert client.post(f"{R}/factories", json=body).status_code == 201
        yield client


def _write_files(registry: TestClient, folder: Path, ingest_password: str) -> str:
    passwd = registry.get(f"{R}/mosquitto/passwd").text
    passwd += hash_password("ingest", ingest_password) + "\n"
    (folder / "passwd").write_text(passwd)
    (folder / "acl").write_text(registry.get(f"{R}/mosquitto/acl").text)
    return f"allow_anonymous false\npassword_file {folder}/passwd\nacl_file {folder}/acl\n"


def test_gateway_publishes_only_under_its_factory(registry: TestClient, tmp_path: Path) -> None:
    gw_a = registry.post(f"{R}/factories/f01/gateways", json={"id": "gw-a"}).json()
    gw_b = registry.post(f"{R}/factories/f02/gateways", json={"id": "gw-b"}).json()
    extra = _write_files(registry, tmp_path, "ingest-secret")
    clients: list[Client] = []
    with Mosquitto(tmp_path / "broker", extra_conf=extra) as broker:
        try:
            ingest = Client(broker, "ingest", "ingest-secret", "millwatch-ingest-0")
            clients.append(ingest)
            assert ingest.connected()
            ingest.paho.subscribe("$share/ingest/mw/v1/+/+/+/+/telemetry", qos=1)
            assert not ingest.subacks.get(timeout=TIMEOUT_S)[0].is_failure

            a = Client(broker, gw_a["username"], gw_a["password"], "gw-c1-f01-gw-a")
            b = Client(broker, gw_b["username"], gw_b["password"], "gw-c1-f02-gw-b")
            clients += [a, b]
            assert a.connected()
            assert b.connected()

            own = "mw/v1/c1/f01/weave1/l0001/telemetry"
            assert not a.publish(own).is_failure
            assert ingest.messages.get(timeout=TIMEOUT_S) == own

            foreign = "mw/v1/c1/f02/weave1/l0001/telemetry"
            refused = a.publish(foreign)
            assert refused.value == 0x87, str(refused)  # Not authorized
            assert not a.publish("mw/v1/c1/f01/_gateway/gw-a/status").is_failure
            assert not b.publish(foreign).is_failure
            assert ingest.messages.get(timeout=TIMEOUT_S) == foreign  # b's, never a's
            assert ingest.messages.empty()

            wrong = Client(broker, gw_a["username"], "not-the-password", "intruder")
            clients.append(wrong)
            assert not wrong.connected()
            swapped = Client(broker, gw_b["username"], gw_a["password"], "swapped")
            clients.append(swapped)
            assert not swapped.connected()
        finally:
            for client in clients:
                client.close()


def test_revoked_gateway_cannot_connect(registry: TestClient, tmp_path: Path) -> None:
    gw = registry.post(f"{R}/factories/f01/gateways", json={"id": "gw-a"}).json()
    assert registry.post(f"{R}/factories/f01/gateways/gw-a/revoke").status_code == 200
    extra = _write_files(registry, tmp_path, "ingest-secret")
    with Mosquitto(tmp_path / "broker", extra_conf=extra) as broker:
        client = Client(broker, gw["username"], gw["password"], "gw-c1-f01-gw-a")
        try:
            assert not client.connected()
        finally:
            client.close()
