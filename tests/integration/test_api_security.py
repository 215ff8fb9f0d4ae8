"""InfluxQL injection attempts through every parameter of every read endpoint.

Each GET operation of the OpenAPI schema gets, in each of its query and path parameters
in turn, strings that would change an InfluxQL statement if they were pasted into one.
No answer may be a server error or carry another factory's data, and the database must
hold exactly what it held before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from .apirig import ONLY_AP2, ApiRig

PAYLOADS = (
    "' OR '1'='1",
    'k0002" OR "machine" =~ /.*/',
    "x'; DROP DATABASE \"f_ap1\"; SELECT '",
    "$machine",
    "/.*/",
    "k0002\\' OR 1=1 --",
    "ap2",
    'speed_rpm") FROM "knit" WHERE 1=1; SHOW DATABASES; --',
    "0 OR time > 0",
)


@pytest.fixture(scope="module")
def client(api_rig: ApiRig) -> Iterator[TestClient]:
    with api_rig.client(rate_limit="100000/second") as client:
        yield client


def _operations(client: TestClient) -> list[tuple[str, list[dict]]]:
    paths = client.get("/openapi.json").json()["paths"]
    return [
        (path, op.get("parameters", []))
        for path, ops in paths.items()
        for method, op in ops.items()
        if method == "get"
    ]


def _counts(rig: ApiRig) -> dict[str, int]:
    """Rows per database and measurement (summed over fields)."""
    out = {}
    for db in ("f_ap1", "f_ap2", "cluster_kpi"):
        names = [row[0] for s in rig.store.query(db, "SHOW MEASUREMENTS") for row in s.values]
        for name in names:
            counted = rig.store.query(db, f'SELECT count(*) FROM "{name}"')
            out[f"{db}.{name}"] = sum(v for v in counted[0].values[0][1:] if isinstance(v, int))
    assert len(out) > 10
    return out


def test_no_parameter_reaches_influxql(api_rig: ApiRig, client: TestClient) -> None:
    before = _counts(api_rig)
    headers = api_rig.headers("ap1")
    tried = 0
    for path, parameters in _operations(client):
        defaults = {"machine_id": "k0002", "alarm_id": api_rig.alarm_ids[0]}
        for parameter in parameters:
            if parameter["in"] not in ("query", "path"):
                continue
            for payload in PAYLOADS:
                values = dict(defaults)
                query = {"field": "speed_rpm"} if path.endswith("/telemetry") else {}
                if parameter["in"] == "path":
                    values[parameter["name"]] = payload
                else:
                    query[parameter["name"]] = payload
                url = re.sub(r"\{(\w+)\}", lambda m, v=values: v.get(m.group(1), "x"), path)
                response = client.get(url, headers=headers, params=query)
                tried += 1
                assert response.status_code < 500, (url, query, response.text)
                if response.status_code == 200:
                    for marker in ("f_ap2", ONLY_AP2, *api_rig.other_alarm_ids):
                        assert marker not in response.text, (url, query)
    assert tried > 200
    assert _counts(api_rig) == before
