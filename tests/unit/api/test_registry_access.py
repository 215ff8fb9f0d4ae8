"""Registry admin API: API keys (issue, list, revoke -> 401) and gateway broker logins."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, issue_key
from api.settings import ApiSettings

BASE = "/v1/registry"


@pytest.fixture
def admin() -> Iterator[TestClient]:
    app = create_app(ApiSettings(registry_url="sqlite://", influx_url="http://127.0.0.1:9"))
    with TestClient(app) as client:
        with app.state.ctx.database.session() as session:
            _, token = issue_key(session, Role.ADMIN, label="bootstrap")
            session.commit()
        client.headers["Authorization"] = f"Bearer {token}"
        body = {"id": "f01", "name": "Mill 1", "timezone": "Asia/Dhaka"}
        assert client.post(f"{BASE}/factories", json=body).status_code == 201
        yield client


def _issue(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post(f"{BASE}/api-keys", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_issue_list_and_revoke_key(admin: TestClient) -> None:
    issued = _issue(admin, role="factory_engineer", factory_id="f01", label="maintenance")
    token = issued["token"]
    assert token.startswith(f"mwk_{issued['id']}_")
    me = admin.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"key_id": issued["id"], "role": "factory_engineer", "factory_id": "f01"}

    listing = admin.get(f"{BASE}/api-keys").json()
    assert listing["total"] == 2
    assert all("token" not in k and "secret_sha256" not in k for k in listing["items"])
    assert token not in str(listing)
    engineers = admin.get(f"{BASE}/api-keys", params={"role": "factory_engineer"}).json()
    assert [k["id"] for k in engineers["items"]] == [issued["id"]]

    revoked = admin.post(f"{BASE}/api-keys/{issued['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert admin.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert admin.post(f"{BASE}/api-keys/{issued['id']}/revoke").status_code == 200  # idempotent
    active = admin.get(f"{BASE}/api-keys", params={"status": "active"}).json()
    assert [k["role"] for k in active["items"]] == ["admin"]


def test_delete_revokes_and_last_admin_is_kept(admin: TestClient) -> None:
    operator = _issue(admin, role="cluster_operator", label="board")
    assert admin.delete(f"{BASE}/api-keys/{operator['id']}").status_code == 204
    assert admin.get(f"{BASE}/api-keys/{operator['id']}").json()["status"] == "revoked"
    assert (
        admin.get("/v1/me", headers={"Authorization": f"Bearer {operator['token']}"}).status_code
        == 401
    )
    assert admin.get(f"{BASE}/api-keys/abc").status_code == 404

    own = admin.get("/v1/me").json()["key_id"]
    assert admin.post(f"{BASE}/api-keys/{own}/revoke").status_code == 409
    second = _issue(admin, role="admin")
    assert admin.post(f"{BASE}/api-keys/{own}/revoke").status_code == 200
    assert admin.get("/v1/me").status_code == 401
    other = {"Authorization": f"Bearer {second['token']}"}
    assert admin.get(f"{BASE}/api-keys", headers=other).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"role": "factory_engineer"},
        {"role": "cluster_operator", "factory_id": "f01"},
        {"role": "factory_engineer", "factory_id": "f99"},
        {"role": "root"},
        {"role": "admin", "expires_at": "2020-01-01T00:00:00Z"},
        {"role": "admin", "expires_at": "2030-01-01T00:00:00"},
    ],
)
def test_bad_key_requests_422(admin: TestClient, body: dict[str, Any]) -> None:
    assert admin.post(f"{BASE}/api-keys", json=body).status_code == 422


def test_expiring_key(admin: TestClient) -> None:
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    issued = _issue(admin, role="cluster_operator", expires_at=soon)
    assert issued["status"] == "active"
    assert datetime.fromisoformat(issued["expires_at"]) > datetime.now(UTC)


def test_gateway_login_lifecycle(admin: TestClient) -> None:
    gateways = f"{BASE}/factories/f01/gateways"
    created = admin.post(gateways, json={"id": "gw1"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["username"] == "f01.gw1"
    assert body["publish_prefix"] == "mw/v1/c1/f01/#"
    password = body["password"]
    assert len(password) >= 40

    assert admin.post(gateways, json={"id": "gw1"}).status_code == 409
    assert admin.post(gateways, json={"id": "GW1"}).status_code == 422
    assert admin.post(f"{BASE}/factories/f99/gateways", json={"id": "gw1"}).status_code == 404
    listing = admin.get(gateways).json()
    assert listing["items"][0]["status"] == "active"
    assert password not in str(listing)

    passwd = admin.get(f"{BASE}/mosquitto/passwd")
    assert passwd.headers["content-type"].startswith("text/plain")
    assert passwd.text.startswith("f01.gw1:$7$")
    assert password not in passwd.text
    acl = admin.get(f"{BASE}/mosquitto/acl").text
    assert "user f01.gw1\ntopic write mw/v1/c1/f01/#\n" in acl
    assert "user ingest" in acl
    assert "user ingest" not in admin.get(f"{BASE}/mosquitto/acl?services=false").text

    rotated = admin.post(f"{gateways}/gw1/rotate").json()
    assert rotated["password"] != password
    assert admin.get(f"{BASE}/mosquitto/passwd").text != passwd.text

    assert admin.post(f"{gateways}/gw1/revoke").json()["status"] == "revoked"
    assert admin.get(f"{BASE}/mosquitto/passwd").text == ""
    assert "f01.gw1" not in admin.get(f"{BASE}/mosquitto/acl").text
    assert admin.delete(f"{gateways}/gw1").status_code == 204
    assert admin.get(f"{gateways}/gw1").json()["status"] == "revoked"
    assert admin.get(f"{gateways}/gw9").status_code == 404
    # A factory with an active login cannot be deleted; a revoked one does not block it.
    assert admin.post(f"{gateways}/gw1/rotate").status_code == 200
    assert admin.delete(f"{BASE}/factories/f01").status_code == 409
    assert admin.delete(f"{gateways}/gw1").status_code == 204
    assert admin.delete(f"{BASE}/factories/f01").status_code == 204


def test_gateway_username_too_long_422(admin: TestClient) -> None:
    long_factory = {"id": "f" * 32, "name": "Long"}
    assert admin.post(f"{BASE}/factories", json=long_factory).status_code == 201
    url = f"{BASE}/factories/{'f' * 32}/gateways"
    assert admin.post(url, json={"id": "g" * 32}).status_code == 422
    assert admin.post(url, json={"id": "g" * 31}).status_code == 201
