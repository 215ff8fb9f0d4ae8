"""Adoption of machines seen in telemetry, with InfluxDB answered by a MockTransport."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, issue_key
from api.settings import ApiSettings
from millwatch.influxql import InfluxQL

F = "/v1/registry/factories"
T0 = 1767168000000


def _series(machine: str, hall: str, kind: str, ts: int) -> dict[str, Any]:
    return {
        "name": "loom" if kind.startswith("loom") else "knit",
        "tags": {"machine": machine, "hall": hall, "type": kind},
        "columns": ["time", "seq"],
        "values": [[ts, 1]],
    }


SERIES = [
    _series("l0001", "weave1", "loom_airjet", T0),
    _series("l0002", "weave2", "loom_airjet", T0 + 5000),
    _series("l0002", "weave9", "loom_airjet", T0),  # moved halls: the newest one counts
    _series("k0001", "knit1", "knit_circular", T0 + 1000),
    _series("bad_id", "weave1", "loom_airjet", T0),  # breaks the contract: ignored
]


class Influx:
    """Answers the adoption query and records what was asked."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("refused")
        params = json.loads(request.url.params.get("params", "{}"))
        series = [
            s for s in SERIES if s["tags"]["machine"] == params.get("machine", s["tags"]["machine"])
        ]
        return httpx.Response(200, json={"results": [{"statement_id": 0, "series": series}]})


@pytest.fixture
def rig() -> Iterator[tuple[TestClient, Influx]]:
    influx = Influx()
    client_influx = InfluxQL("http://influx", transport=httpx.MockTransport(influx))
    settings = ApiSettings(registry_url="sqlite://", influx_url="http://influx")
    app = create_app(settings, influx=client_influx)
    with TestClient(app) as client:
        with app.state.ctx.database.session() as session:
            _, token = issue_key(session, Role.ADMIN)
            session.commit()
        client.headers["Authorization"] = f"Bearer {token}"
        assert client.post(F, json={"id": "f01", "name": "Mill"}).status_code == 201
        assert client.post(f"{F}/f01/halls", json={"id": "weave1"}).status_code == 201
        machine = {"id": "l0001", "hall_id": "weave1", "machine_type": "loom_airjet"}
        assert client.post(f"{F}/f01/machines", json=machine).status_code == 201
        yield client, influx


def test_lists_unregistered_with_hall_type_and_last_seen(rig: tuple[TestClient, Influx]) -> None:
    client, influx = rig
    response = client.get(f"{F}/f01/unregistered", params={"window_h": 24})
    assert response.status_code == 200, response.text
    assert response.json()["items"] == [
        {
            "id": "k0001",
            "hall_id": "knit1",
            "machine_type": "knit_circular",
            "last_seen": "2025-12-31T08:00:01Z",
        },
        {
            "id": "l0002",
            "hall_id": "weave2",
            "machine_type": "loom_airjet",
            "last_seen": "2025-12-31T08:00:05Z",
        },
    ]
    request = influx.requests[-1]
    assert request.url.params["db"] == "f_f01"
    query = request.url.params["q"]
    assert "ORDER BY time DESC LIMIT 1" in query
    assert "$since" in query
    assert "since" in json.loads(request.url.params["params"])


def test_adopt_creates_hall_and_machine(rig: tuple[TestClient, Influx]) -> None:
    client, influx = rig
    adopted = client.post(
        f"{F}/f01/unregistered/l0002/adopt", json={"vendor": "Toyota", "params": {"width_cm": 190}}
    )
    assert adopted.status_code == 201, adopted.text
    assert adopted.json()["hall_id"] == "weave2"
    assert adopted.json()["vendor"] == "Toyota"
    assert json.loads(influx.requests[-1].url.params["params"])["machine"] == "l0002"
    assert "$machine" in influx.requests[-1].url.params["q"]
    assert client.get(f"{F}/f01/halls/weave2").status_code == 200
    assert client.get(f"{F}/f01/machines/l0002").json()["machine_type"] == "loom_airjet"
    left = client.get(f"{F}/f01/unregistered").json()["items"]
    assert [m["id"] for m in left] == ["k0001"]
    # Without a body, into an existing hall.
    assert client.post(f"{F}/f01/unregistered/k0001/adopt").status_code == 201


def test_adopt_errors(rig: tuple[TestClient, Influx]) -> None:
    client, influx = rig
    assert client.post(f"{F}/f01/unregistered/l0001/adopt").status_code == 409
    assert client.post(f"{F}/f01/unregistered/l0404/adopt").status_code == 404
    assert client.post(f"{F}/f02/unregistered/l0002/adopt").status_code == 404
    assert client.get(f"{F}/f02/unregistered").status_code == 404
    bad_line = client.post(f"{F}/f01/unregistered/l0002/adopt", json={"line_id": "none"})
    assert bad_line.status_code == 422
    assert client.get(f"{F}/f01/halls/weave2").status_code == 404  # rolled back
    influx.down = True
    down = client.get(f"{F}/f01/unregistered")
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
