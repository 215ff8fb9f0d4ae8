"""Adoption on a real InfluxDB 1.6: the registry's query finds unregistered machines."""

import time
import uuid
from datetime import datetime

import httpx
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, issue_key
from api.settings import ApiSettings
from millwatch.contract import factory_database
from millwatch.servers import InfluxDB

F = "/v1/registry/factories"


def test_unregistered_machines_from_real_influxdb(influxdb: InfluxDB) -> None:
    factory = f"a{uuid.uuid4().hex[:8]}"
    db = factory_database(factory)
    now = time.time_ns()
    S = 10**9  # noqa: N806
    tags = f"cluster=c1,factory={factory}"
    lines = [
        f"loom,{tags},hall=weave1,machine=l0001,type=loom_airjet seq=1i {now - 60 * 10**9}",
        f"loom,{tags},hall=weave1,machine=l0002,type=loom_airjet seq=1i {now - 120 * 10**9}",
        f"loom,{tags},hall=weave1,machine=l0002,type=loom_airjet seq=2i {now - 30 * 10**9}",
        f"loom,{tags},hall=weave2,machine=l0002,type=loom_airjet,hist=1 seq=0i {now - 3600 * S}",
        f"knit,{tags},hall=knit1,machine=k0001,type=knit_circular seq=5i {now - 10 * 10**9}",
        f"hall_env,{tags},hall=knit1,machine=env-knit1,type=hall_env seq=1i "
        f"{now - 10 * 86400 * 10**9}",
    ]
    with httpx.Client(base_url=influxdb.url, trust_env=False) as http:
        assert http.post("/query", params={"q": f'CREATE DATABASE "{db}"'}).is_success
        assert http.post("/write", params={"db": db}, content="\n".join(lines)).status_code == 204

    app = create_app(ApiSettings(registry_url="sqlite://", influx_url=influxdb.url))
    with TestClient(app) as client:
        with app.state.ctx.database.session() as session:
            _, token = issue_key(session, Role.ADMIN)
            session.commit()
        client.headers["Authorization"] = f"Bearer {token}"
        assert client.post(F, json={"id": factory, "name": "Adoption"}).status_code == 201
        assert client.post(f"{F}/{factory}/halls", json={"id": "weave1"}).status_code == 201
        machine = {"id": "l0001", "hall_id": "weave1", "machine_type": "loom_airjet"}
        assert client.post(f"{F}/{factory}/machines", json=machine).status_code == 201

        listing = client.get(f"{F}/{factory}/unregistered", params={"window_h": 24})
        assert listing.status_code == 200, listing.text
        items = {m["id"]: m for m in listing.json()["items"]}
        assert sorted(items) == ["k0001", "l0002"]  # env-knit1 is older than the window
        assert items["l0002"]["hall_id"] == "weave1"  # its newest series, not the backfill
        seen_ms = now // 10**6 - 30_000
        last_seen = items["l0002"]["last_seen"].replace("Z", "+00:00")
        assert abs(datetime.fromisoformat(last_seen).timestamp() * 1000 - seen_ms) < 1000
        wide = client.get(f"{F}/{factory}/unregistered", params={"window_h": 24 * 30}).json()
        assert {m["id"] for m in wide["items"]} == {"k0001", "l0002", "env-knit1"}

        adopted = client.post(f"{F}/{factory}/unregistered/env-knit1/adopt?window_h=720")
        assert adopted.status_code == 201, adopted.text
        assert adopted.json()["machine_type"] == "hall_env"
        assert client.get(f"{F}/{factory}/halls/knit1").status_code == 200
        assert client.post(f"{F}/{factory}/unregistered/env-knit1/adopt").status_code == 409
        assert client.post(f"{F}/{factory}/unregistered/k0404/adopt").status_code == 404
