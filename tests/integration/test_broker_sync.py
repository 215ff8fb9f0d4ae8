"""Gateway logins revoked or issued through the API reach a running secured broker at once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, issue_key
from api.db import Database
from api.models import Factory
from api.mosquitto import INGEST_SERVICE, hash_password, registry_files
from api.settings import ApiSettings
from millwatch.private_file import write_private
from millwatch.servers import Mosquitto


def _connack(broker: Mosquitto, user: str, password: str) -> int:
    """The CONNACK reason of one connect attempt with this login."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=uuid.uuid4().hex, protocol=mqtt.MQTTv5
    )
    client.username_pw_set(user, password)
    reasons: list[int] = []
    client.on_connect = lambda c, u, f, rc, p: reasons.append(rc.value)
    client.connect(broker.host, broker.port)
    deadline = time.monotonic() + 10
    while not reasons and time.monotonic() < deadline:
        client.loop(timeout=0.1)
    client.disconnect()
    assert reasons, "no CONNACK"
    return reasons[0]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[TestClient, Mosquitto, Path]]:
    folder = tmp_path / "mosquitto"
    database = Database("sqlite://")
    database.create_all()
    with database.session() as session:
        session.add(Factory(id="f1", cluster="c1", name="Mill"))
        admin = issue_key(session, Role.ADMIN)[1]
        session.commit()
        ingest_line = hash_password(INGEST_SERVICE.user, "ingest-secret")
        files = registry_files(session, "c1", [ingest_line])
    write_private(folder / "passwd", files.passwd)
    write_private(folder / "acl", files.acl)
    broker = Mosquitto(folder, password_file=folder / "passwd", acl_file=folder / "acl")
    settings = ApiSettings(
        registry_url="sqlite://", influx_url="http://127.0.0.1:9", broker_dir=folder
    )
    with broker, TestClient(create_app(settings, database=database)) as client:
        client.headers["Authorization"] = f"Bearer {admin}"
        yield client, broker, folder
    database.dispose()


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_issue_rotate_and_revoke_through_the_api_take_effect_on_the_running_broker(rig) -> None:
    client, broker, folder = rig
    assert (folder / "mosquitto.pid").read_text().strip() == str(broker.pid)
    issued = client.post("/v1/registry/factories/f1/gateways", json={"id": "gw1"})
    assert issued.status_code == 201, issued.text
    user, password = "f1.gw1", issued.json()["password"]
    _until(lambda: _connack(broker, user, password) == 0, "the new login is not accepted")

    rotated = client.post("/v1/registry/factories/f1/gateways/gw1/rotate").json()["password"]
    _until(lambda: _connack(broker, user, password) != 0, "the old password still works")
    assert _connack(broker, user, rotated) == 0

    assert client.post("/v1/registry/factories/f1/gateways/gw1/revoke").status_code == 200
    _until(lambda: _connack(broker, user, rotated) != 0, "the revoked login still works")
    # The service login the registry does not hold survives every rewrite.
    assert _connack(broker, INGEST_SERVICE.user, "ingest-secret") == 0
    assert oct((folder / "passwd").stat().st_mode & 0o777) == "0o600"
