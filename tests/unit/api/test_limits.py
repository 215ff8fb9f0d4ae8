"""Rate limits, failed-key limits and the request body limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, issue_key
from api.db import Database
from api.models import Factory
from api.settings import ApiSettings


@pytest.fixture
def keys() -> tuple[Database, dict[str, str]]:
    database = Database("sqlite://")
    database.create_all()
    with database.session() as session:
        session.add(Factory(id="f1", cluster="c1", name="Mill"))
        tokens = {
            "a": issue_key(session, Role.FACTORY_ENGINEER, "f1")[1],
            "b": issue_key(session, Role.FACTORY_ENGINEER, "f1")[1],
        }
        session.commit()
    return database, tokens


def _client(database: Database, **settings: object) -> Iterator[TestClient]:
    options = ApiSettings(registry_url="sqlite://", influx_url="http://127.0.0.1:9", **settings)
    with TestClient(create_app(options, database=database)) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_go_on(keys) -> None:
    database, tokens = keys
    for client in _client(database, rate_limit="3/minute"):
        answers = [client.get("/v1/me", headers=_bearer(tokens["a"])) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        limited = answers[-1]
        assert limited.headers["content-type"] == "application/problem+json"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert client.get("/v1/me", headers=_bearer(tokens["b"])).status_code == 200


def test_many_invalid_keys_get_429_but_a_valid_key_from_the_same_address_works(keys) -> None:
    database, tokens = keys
    for client in _client(database, auth_failure_limit="5/minute"):
        bad = [client.get("/v1/me", headers=_bearer(f"mwk_abc_{i}")) for i in range(7)]
        assert [r.status_code for r in bad] == [401] * 5 + [429] * 2
        assert client.get("/v1/me", headers=_bearer(tokens["a"])).status_code == 200
        assert client.get("/v1/me").status_code == 401  # no key at all is not a guess


def test_bodies_over_the_limit_are_refused_before_they_are_read(keys) -> None:
    database, tokens = keys
    for client in _client(database, max_body_bytes=2048):
        url = "/v1/alarms/1.loom_airjet.l1.process/comments"
        big = client.post(url, headers=_bearer(tokens["a"]), json={"text": "x" * 5000})
        assert big.status_code == 413 and big.json()["title"] == "Request too large"

        def chunks() -> Iterator[bytes]:
            yield b'{"text": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}'

        headers = {**_bearer(tokens["a"]), "Content-Type": "application/json"}
        chunked = client.post(url, headers=headers, content=chunks())
        assert chunked.status_code == 413, chunked.text
        assert chunked.headers["content-type"] == "application/problem+json"


def test_bad_limit_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        ApiSettings(rate_limit="lots")
