"""A secured Mosquitto with registry-generated passwd and ACL files, as ``millwatch up`` runs it.

The registry issues gateway logins (``api.seed.gateway_logins``) and writes both files
(``api.mosquitto.registry_files``) with the ``ingest`` service login; the broker must
refuse anonymous and wrong logins, confine each gateway to its own factory for
publishing and subscribing, carry a real gateway's data into InfluxDB through ingest's
shared subscription, lock a revoked gateway out on reload (SIGHUP), and serve TLS.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from api.db import Database
from api.models import Factory, GatewayCredential
from api.mosquitto import INGEST_SERVICE, hash_password, registry_files
from api.seed import gateway_logins
from gateway import Gateway, GatewaySettings
from ingest import Ingest, IngestSettings
from millwatch import contract
from millwatch.servers import InfluxDB, Mosquitto, TlsListener, free_port

TIMEOUT_S = 5.0
INGEST_PASSWORD = "ingest-secret"
NOT_AUTHORIZED = 0x87
#: Mosquitto 2.0.11 answers a wrong password with 0x87 "Not authorized", not 0x86.
BAD_LOGIN = (0x86, NOT_AUTHORIZED)


@dataclass
class Registry:
    """A registry with two factories of one cluster and the broker files made from it."""

    database: Database
    cluster: str
    factories: tuple[str, str]
    passwords: dict[str, str]  # by broker user
    folder: Path

    def write_files(self) -> None:
        with self.database.session() as session:
            lines = [hash_password(INGEST_SERVICE.user, INGEST_PASSWORD)]
            files = registry_files(session, self.cluster, lines)
        (self.folder / "passwd").write_text(files.passwd)
        (self.folder / "acl").write_text(files.acl)

    def revoke(self, user: str) -> None:
        with self.database.session() as session:
            session.get(GatewayCredential, user).revoked_at = datetime.now(UTC)
            session.commit()
        self.write_files()

    def broker(self, data_dir: Path, **kwargs: Any) -> Mosquitto:
        files = {"password_file": self.folder / "passwd", "acl_file": self.folder / "acl"}
        return Mosquitto(data_dir, **files, **kwargs)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    # Fresh factory ids: the session's InfluxDB is shared and databases are f_{factory}.
    tag = uuid.uuid4().hex[:6]
    factories = (f"a{tag}", f"b{tag}")
    database = Database("sqlite://")
    database.create_all()
    with database.session() as session:
        session.add_all(Factory(id=f, cluster="c1", name=f) for f in factories)
        session.commit()
        passwords = gateway_logins(session, factories, "gw1")
    reg = Registry(database, "c1", factories, passwords, tmp_path)
    reg.write_files()
    yield reg
    database.dispose()


@pytest.fixture
def broker(registry: Registry, tmp_path: Path) -> Iterator[Mosquitto]:
    with registry.broker(tmp_path / "broker") as server:
        yield server


class Client:
    """A paho MQTT v5 client whose CONNACK, PUBACK, SUBACK and messages come back in order."""

    def __init__(
        self,
        broker: Mosquitto,
        login: tuple[str, str] | None,
        port: int | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.paho = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=uuid.uuid4().hex, protocol=mqtt.MQTTv5
        )
        self.paho.reconnect_delay_set(5, 5)  # one CONNACK per test step, no retry storm
        if login is not None:
            self.paho.username_pw_set(*login)
        if ca_file is not None:
            self.paho.tls_set(ca_certs=str(ca_file))
        self.connack: queue.Queue[Any] = queue.Queue()
        self.messages: queue.Queue[str] = queue.Queue()
        self.acks: queue.Queue[Any] = queue.Queue()
        self.paho.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.paho.on_message = lambda c, u, msg: self.messages.put(msg.topic)
        self.paho.on_publish = lambda c, u, mid, rc, p: self.acks.put(rc)
        self.paho.on_subscribe = lambda c, u, mid, codes, p: self.acks.put(codes[0])
        self.paho.connect(broker.host, port or broker.port)
        self.paho.loop_start()

    def reason(self) -> Any:
        """The CONNACK's reason code."""
        return self.connack.get(timeout=TIMEOUT_S)

    def publish(self, topic: str) -> Any:
        """Publish at QoS 1; the PUBACK's reason code."""
        self.paho.publish(topic, b"{}", qos=1)
        return self.acks.get(timeout=TIMEOUT_S)

    def subscribe(self, topic: str) -> Any:
        """Subscribe at QoS 1; the SUBACK's reason code."""
        self.paho.subscribe(topic, qos=1)
        return self.acks.get(timeout=TIMEOUT_S)

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


@pytest.fixture
def connect() -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(*args: Any, **kwargs: Any) -> Client:
        made.append(Client(*args, **kwargs))
        return made[-1]

    yield make
    for client in made:
        client.close()


def test_anonymous_and_wrong_logins_are_refused(
    registry: Registry, broker: Mosquitto, connect: Callable[..., Client]
) -> None:
    assert connect(broker, None).reason().value in (BAD_LOGIN, NOT_AUTHORIZED)
    user = f"{registry.factories[0]}.gw1"
    assert connect(broker, (user, "not-the-password")).reason().value in BAD_LOGIN
    other = registry.passwords[f"{registry.factories[1]}.gw1"]
    assert connect(broker, (user, other)).reason().value in BAD_LOGIN  # another's password
    assert connect(broker, ("ingest", "wrong")).reason().value in BAD_LOGIN
    assert not connect(broker, (user, registry.passwords[user])).reason().is_failure


def test_gateway_publishes_and_reads_only_within_its_factory(
    registry: Registry, broker: Mosquitto, connect: Callable[..., Client]
) -> None:
    own, other = registry.factories
    ingest = connect(broker, ("ingest", INGEST_PASSWORD))
    assert not ingest.reason().is_failure
    assert not ingest.subscribe(contract.subscription("telemetry", "ingest")).is_failure
    a, b = (f"{f}.gw1" for f in registry.factories)
    gateway = connect(broker, (a, registry.passwords[a]))
    neighbour = connect(broker, (b, registry.passwords[b]))
    assert not gateway.reason().is_failure
    assert not neighbour.reason().is_failure

    mine = f"mw/v1/c1/{own}/weave1/l0001/telemetry"
    assert not gateway.publish(mine).is_failure
    assert ingest.messages.get(timeout=TIMEOUT_S) == mine  # through $share/ingest/...

    theirs = f"mw/v1/c1/{other}/weave1/l0001/telemetry"
    for foreign in (
        theirs,  # another factory
        f"mw/v1/c2/{own}/weave1/l0001/telemetry",  # its factory id under another cluster
        "mw/v1/_deadletter/schema",  # ingest's topic
    ):
        assert gateway.publish(foreign).value == NOT_AUTHORIZED, foreign
    time.sleep(0.3)  # anything wrongly delivered would arrive by now
    assert ingest.messages.empty()

    # Mosquitto 2.0's acl_file grants any SUBSCRIBE (SUBACK 0x01) and enforces the read
    # ACL on each delivery: a gateway has no read line, so nothing ever reaches it.
    for pattern in (f"mw/v1/c1/{other}/#", "mw/v1/#", "#", contract.subscription("telemetry")):
        assert gateway.subscribe(pattern).value in (1, NOT_AUTHORIZED), pattern
    assert not neighbour.publish(theirs).is_failure
    assert ingest.messages.get(timeout=TIMEOUT_S) == theirs
    time.sleep(0.3)
    assert gateway.messages.empty()


def _gateway(registry: Registry, broker: Mosquitto, tmp: Path, password: str) -> Gateway:
    factory = registry.factories[0]
    settings = GatewaySettings(
        cluster="c1",
        factory=factory,
        gateway_id="gw1",
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        mqtt_username=f"{factory}.gw1",
        mqtt_password=password,
        outbox_path=tmp / "outbox.sqlite",
        sample_interval_s=0.05,
        inputs={"simulator": {"machines": {"loom_airjet": 2}, "seed": 1}},
    )
    gateway = Gateway(settings)
    gateway.start()
    return gateway


def _rows(query: Callable[[str, str], list[dict[str, Any]]], factory: str) -> int:
    try:
        rows = query(contract.factory_database(factory), "SELECT count(seq) FROM loom")
    except AssertionError:  # database not created yet
        return 0
    return int(rows[0]["count"]) if rows else 0


def _wait(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_real_gateway_delivers_through_the_secured_broker_until_revoked(
    registry: Registry,
    broker: Mosquitto,
    influxdb: InfluxDB,
    influx_query: Callable[[str, str], list[dict[str, Any]]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    factory = registry.factories[0]
    user = f"{factory}.gw1"
    settings = IngestSettings(
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        mqtt_username="ingest",
        mqtt_password=INGEST_PASSWORD,
        influx_url=influxdb.url,
        flush_interval_s=0.05,
    )
    with Ingest(settings) as ingest:
        assert ingest.wait_ready(10), "ingest did not log in and subscribe"
        gateway = _gateway(registry, broker, tmp_path, registry.passwords[user])
        try:
            _wait(lambda: _rows(influx_query, factory) >= 20, "rows in InfluxDB")
            assert gateway.metrics.snapshot()["publish_errors_total"] == 0

            caplog.set_level(logging.INFO)
            registry.revoke(user)
            broker.reload()  # Mosquitto drops the connected client its new files refuse
            _wait(lambda: not gateway.publisher.connected, "the revoked gateway disconnected")
            refused = gateway.metrics.snapshot
            _wait(lambda: refused().get("connect_refused_total", 0) > 0, "a refused reconnect", 20)
            depth = gateway.outbox.depth()
            _wait(lambda: gateway.outbox.depth() > depth, "the outbox keeping new data")
            assert not gateway.publisher.connected
        finally:
            gateway.stop(timeout=1)
    errors = [r for r in caplog.records if "mqtt_connect_refused" in r.getMessage()]
    assert errors and errors[0].levelno == logging.ERROR
    assert user in errors[0].getMessage()
    assert registry.passwords[user] not in caplog.text
    assert INGEST_PASSWORD not in caplog.text


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "broker.pem", folder / "broker.key"
    args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        ["openssl", *args, "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def test_tls_listener_takes_the_same_logins(
    registry: Registry, tmp_path: Path, connect: Callable[..., Client]
) -> None:
    cert, key = _self_signed(tmp_path)
    tls = TlsListener(free_port(), cert, key)
    user = f"{registry.factories[0]}.gw1"
    with registry.broker(tmp_path / "broker", tls=tls) as broker:
        client = connect(broker, (user, registry.passwords[user]), tls.port, cert)
        assert not client.reason().is_failure
        assert not client.publish(f"mw/v1/c1/{registry.factories[0]}/weave1/l1/event").is_failure
        assert connect(broker, (user, "wrong"), tls.port, cert).reason().value in BAD_LOGIN
