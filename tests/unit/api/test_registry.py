"""Registry admin API: CRUD round trips, 404/409/422, the admin gate on every route."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, issue_key
from api.models import Factory
from api.settings import ApiSettings

BASE = "/v1/registry"
F = f"{BASE}/factories"


@pytest.fixture
def app_client() -> Iterator[tuple[Any, TestClient]]:
    app = create_app(ApiSettings(registry_url="sqlite://", influx_url="http://127.0.0.1:9"))
    with TestClient(app) as client:
        yield app, client


def _token(app: Any, role: Role, factory_id: str | None = None) -> str:
    with app.state.ctx.database.session() as session:
        if factory_id and session.get(Factory, factory_id) is None:
            session.add(Factory(id=factory_id, cluster="c1", name=factory_id))
        _, token = issue_key(session, role, factory_id)
        session.commit()
    return token


@pytest.fixture
def admin(app_client: tuple[Any, TestClient]) -> TestClient:
    app, client = app_client
    client.headers["Authorization"] = f"Bearer {_token(app, Role.ADMIN)}"
    return client


def _factory(client: TestClient, factory_id: str = "f01", **extra: Any) -> dict[str, Any]:
    body = {"id": factory_id, "name": "Mill", "timezone": "Asia/Dhaka", **extra}
    response = client.post(F, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _hall(client: TestClient, factory_id: str = "f01", hall_id: str = "weave1") -> None:
    response = client.post(f"{F}/{factory_id}/halls", json={"id": hall_id, "name": "Weaving"})
    assert response.status_code == 201, response.text


def test_factory_round_trip(admin: TestClient) -> None:
    created = _factory(admin, shifts="2x12", shift_start="08:00")
    assert created == {
        "id": "f01",
        "cluster": "c1",
        "name": "Mill",
        "timezone": "Asia/Dhaka",
        "shifts": "2x12",
        "shift_start": "08:00",
    }
    assert admin.get(f"{F}/f01").json() == created
    changed = admin.patch(f"{F}/f01", json={"name": "Mill 1", "timezone": "UTC"})
    assert changed.status_code == 200
    assert changed.json()["name"] == "Mill 1"
    listing = admin.get(F).json()
    assert listing["total"] == 1
    assert listing["items"][0]["timezone"] == "UTC"
    assert admin.delete(f"{F}/f01").status_code == 204
    assert admin.get(f"{F}/f01").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"id": "F01", "name": "x"},
        {"id": "f_1", "name": "x"},
        {"id": "f01", "name": "x", "timezone": "Mars/Olympus"},
        {"id": "f01", "name": "x", "shifts": "4x6"},
        {"id": "f01", "name": "x", "shift_start": "24:00"},
        {"id": "f01", "name": "x", "surprise": 1},
    ],
)
def test_factory_invalid_422(admin: TestClient, body: dict[str, Any]) -> None:
    response = admin.post(F, json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_conflict_missing_and_malformed(admin: TestClient) -> None:
    _factory(admin)
    assert admin.post(F, json={"id": "f01", "name": "again"}).status_code == 409
    assert admin.get(f"{F}/f99").status_code == 404
    assert admin.get(f"{F}/F99").status_code == 422
    assert admin.get(f"{F}/f99/machines").status_code == 404
    assert admin.patch(f"{F}/f01", json={"name": None}).status_code == 422


def test_hall_line_article_machine_round_trip(admin: TestClient) -> None:
    _factory(admin)
    _hall(admin)
    line = admin.post(f"{F}/f01/lines", json={"id": "line-a", "hall_id": "weave1"})
    assert line.status_code == 201, line.text
    article = {"id": "pc-7712", "name": "PC-7712", "family": "shirting", "params": {"ppcm": 28}}
    assert admin.post(f"{F}/f01/articles", json=article).status_code == 201
    machine = {
        "id": "l0001",
        "hall_id": "weave1",
        "line_id": "line-a",
        "machine_type": "loom_airjet",
        "vendor": "Toyota",
        "model": "JAT810",
        "article_id": "pc-7712",
        "params": {"width_cm": 190, "gauge": "n/a"},
    }
    created = admin.post(f"{F}/f01/machines", json=machine)
    assert created.status_code == 201, created.text
    assert created.json() == {**machine, "factory_id": "f01"}
    assert admin.get(f"{F}/f01/machines/l0001").json() == created.json()
    assert admin.get(f"{F}/f01/machines", params={"hall_id": "weave1"}).json()["total"] == 1
    assert (
        admin.get(f"{F}/f01/machines", params={"machine_type": "knit_circular"}).json()["total"]
        == 0
    )
    patched = admin.patch(f"{F}/f01/machines/l0001", json={"line_id": None, "vendor": None})
    assert patched.status_code == 200
    assert patched.json()["line_id"] is None
    assert patched.json()["vendor"] is None
    assert patched.json()["model"] == "JAT810"
    # Still in use: the article by the machine, the hall by the machine and the line.
    assert admin.delete(f"{F}/f01/articles/pc-7712").status_code == 409
    assert admin.delete(f"{F}/f01/halls/weave1").status_code == 409
    assert admin.delete(f"{F}/f01").status_code == 409
    assert admin.delete(f"{F}/f01/machines/l0001").status_code == 204
    assert admin.delete(f"{F}/f01/articles/pc-7712").status_code == 204
    assert admin.delete(f"{F}/f01/lines/line-a").status_code == 204
    assert admin.delete(f"{F}/f01/halls/weave1").status_code == 204
    assert admin.delete(f"{F}/f01").status_code == 204


def test_machine_references_and_types(admin: TestClient) -> None:
    _factory(admin)
    _hall(admin)
    _hall(admin, hall_id="knit1")
    assert admin.post(f"{F}/f01/lines", json={"id": "l-k", "hall_id": "knit1"}).status_code == 201
    base = {"id": "l0001", "hall_id": "weave1", "machine_type": "loom_airjet"}
    for bad in (
        {"machine_type": "spinning_frame"},
        {"hall_id": "nowhere"},
        {"line_id": "nope"},
        {"line_id": "l-k"},  # a line of another hall
        {"article_id": "nope"},
        {"params": {"nested": {"x": 1}}},
    ):
        response = admin.post(f"{F}/f01/machines", json={**base, **bad})
        assert response.status_code == 422, (bad, response.text)
    assert admin.post(f"{F}/f01/machines", json=base).status_code == 201
    assert admin.post(f"{F}/f01/machines", json=base).status_code == 409
    moved = admin.patch(f"{F}/f01/machines/l0001", json={"hall_id": "gone"})
    assert moved.status_code == 422
    assert admin.get(f"{F}/f01/machines/l0001").json()["hall_id"] == "weave1"
    assert admin.patch(f"{F}/f01/machines/l0001", json={"machine_type": None}).status_code == 422
    assert admin.post(f"{F}/f01/lines", json={"id": "x", "hall_id": "gone"}).status_code == 422
    assert admin.get(f"{F}/f01/halls/gone").status_code == 404


def test_pagination(admin: TestClient) -> None:
    for n in range(5):
        _factory(admin, f"f{n:02d}")
    page = admin.get(F, params={"limit": 2, "offset": 2}).json()
    assert [f["id"] for f in page["items"]] == ["f02", "f03"]
    assert page["total"] == 5
    assert "offset=4" in page["next"]


def _registry_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every registry route, from the app's own OpenAPI document."""
    paths = app.openapi()["paths"]
    return [
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith(BASE)
        for method in operations
    ]


def _concrete(path: str) -> str:
    values = {"factory_id": "f01", "key_id": "abc123", "gateway_id": "gw1"}
    for name in ("hall_id", "line_id", "article_id", "machine_id"):
        values[name] = "x1"
    return path.format(**values)


@pytest.mark.parametrize("role", [Role.FACTORY_ENGINEER, Role.CLUSTER_OPERATOR])
def test_every_registry_route_is_admin_only(app_client: tuple[Any, TestClient], role: Role) -> None:
    app, client = app_client
    token = _token(app, role, "f01" if role is Role.FACTORY_ENGINEER else None)
    routes = _registry_routes(app)
    assert len(routes) >= 30
    for method, path in routes:
        response = client.request(method, _concrete(path), headers={"X-API-Key": token}, json={})
        assert response.status_code == 403, (method, path, response.text)
        response = client.request(method, _concrete(path), json={})
        assert response.status_code == 401, (method, path)


def test_openapi_documents_registry_routes(app_client: tuple[Any, TestClient]) -> None:
    app, client = app_client
    spec = client.get("/openapi.json").json()
    for method, path in _registry_routes(app):
        operation = spec["paths"][path][method.lower()]
        assert operation["summary"], path
        assert {"401", "403"} <= set(operation["responses"]), path
