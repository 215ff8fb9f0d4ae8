"""Authorization matrix: every role x every endpoint x own and other factory.

Routes are read from the app's OpenAPI schema, so a new endpoint joins the matrix by existing.
The policy is written down once (``allowed``); each cell checks the status and, for a
factory engineer, that nothing of another factory appears in the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings

from .apirig import ONLY_AP2, ApiRig

CALLERS = ("ap1", "cluster_operator", "admin", "anonymous", "revoked", "expired")
OTHER_TENANT_MARKERS = ("ap2", "ap3", ONLY_AP2)


def _routes() -> list[tuple[str, str]]:
    app = create_app(ApiSettings(registry_url="sqlite://", influx_url="http://127.0.0.1:9"))
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in sorted(operations)
    ]


ROUTES = _routes()


def allowed(path: str) -> set[str]:
    """Which callers a route admits."""
    if path == "/health":
        return set(CALLERS)
    if path == "/v1/me":
        return {"ap1", "cluster_operator", "admin"}
    if path.startswith("/v1/registry"):
        return {"admin"}
    if path.startswith("/v1/cluster"):
        return {"cluster_operator"}
    if path == "/v1/benchmarks":
        return {"ap1", "cluster_operator"}
    return {"ap1"}


def _fill(rig: ApiRig, path: str, other: bool, caller: str) -> str:
    if caller == "admin":  # the admin may delete: never hand it the rig's own objects
        return re.sub(r"\{(\w+)\}", "nothing-here", path)
    values = {
        "machine_id": ONLY_AP2 if other else "k0001",
        "alarm_id": (rig.other_alarm_ids if other else rig.alarm_ids)[1],
        "factory_id": "ap2" if other else "ap1",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x1"), path)


def _body(path: str) -> dict | None:
    return {"text": "checked"} if path.endswith("/comments") else {}


def test_the_matrix_covers_every_tenant_route() -> None:
    paths = {p for _, p in ROUTES}
    assert {"/v1/machines/{machine_id}", "/v1/alarms/{alarm_id}/ack", "/v1/kpis.csv"} <= paths
    assert any(p.startswith("/v1/registry") for p in paths)


@pytest.fixture(scope="module")
def client(api_rig: ApiRig) -> Iterator[TestClient]:
    # Hundreds of revoked/expired attempts from one address: the failed-key limit of its own test.
    with api_rig.client(benchmark_min_factories=2, auth_failure_limit="100000/minute") as client:
        yield client


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_authorization_matrix(
    api_rig: ApiRig, client: TestClient, method: str, path: str, caller: str
) -> None:
    headers = {} if caller == "anonymous" else api_rig.headers(caller)
    for other in (False, True) if "{" in path else (False,):
        url = _fill(api_rig, path, other, caller)
        body = _body(path) if method in ("POST", "PUT", "PATCH") else None
        params = {"field": "speed_rpm"} if path.endswith("/telemetry") else None
        response = client.request(method, url, headers=headers, json=body, params=params)
        status = response.status_code
        if caller not in allowed(path):
            expected = 401 if caller in ("anonymous", "revoked", "expired") else 403
            assert status == expected, (url, response.text)
            assert response.headers["content-type"] == "application/problem+json"
        elif caller == "ap1" and other:
            assert status == 404, (url, response.text)
        else:
            assert status < 400 or caller == "admin", (url, response.text)
            assert status not in (401, 403, 500), (url, response.text)
        if caller == "ap1":  # nothing of another factory beyond what the caller sent
            for marker in OTHER_TENANT_MARKERS:
                if marker not in url:
                    assert marker not in response.text, (url, marker, response.text[:300])


def test_an_engineers_filters_cannot_reach_another_factory(api_rig: ApiRig) -> None:
    headers = api_rig.headers("ap1")
    with api_rig.client() as client:
        for url, params in (
            ("/v1/machines", {"hall": "knit1"}),
            ("/v1/kpis", {"machine": ONLY_AP2}),
            ("/v1/kpis.csv", {"machine": ONLY_AP2}),
            ("/v1/alarms", {"machine": "k0003", "state": "all"}),
            ("/v1/anomalies", {"machine": ONLY_AP2}),
        ):
            response = client.get(url, headers=headers, params=params)
            assert response.status_code == 200
            for marker in (*OTHER_TENANT_MARKERS, *api_rig.other_alarm_ids):
                assert marker not in response.text, (url, marker)
        not_found = client.get(f"/v1/alarms/{api_rig.other_alarm_ids[0]}", headers=headers)
        missing = client.get("/v1/alarms/1.knit_circular.k0003.process", headers=headers)
        assert not_found.status_code == missing.status_code == 404
        # The same title and the same shape of detail: nothing tells "exists elsewhere".
        assert not_found.json()["title"] == missing.json()["title"]
        assert set(not_found.json()) == set(missing.json())
