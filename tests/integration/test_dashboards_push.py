"""``millwatch dashboards push`` against a recording stand-in for Grafana's HTTP API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dashboards.__main__ import main
from dashboards.build import FACTORY_SCOPED, render_dashboards
from dashboards.push import push

from .grafana_standin import GrafanaStandin, serve

FACTORIES = ["f01", "f02"]


@pytest.fixture
def grafana() -> Iterator[GrafanaStandin]:
    with serve() as standin:
        yield standin


def test_first_push_creates_datasources_folders_and_dashboards(grafana: GrafanaStandin) -> None:
    report = push(grafana.url, "tok-1", FACTORIES, influx_url="http://influx:8086")
    boards = render_dashboards()
    shared = set(boards) - FACTORY_SCOPED
    assert set(grafana.datasources) == {
        "mw-factory-f01",
        "mw-factory-f02",
        "mw-internal",
        "mw-cluster",
    }
    assert grafana.datasources["mw-factory-f02"]["jsonData"]["dbName"] == "f_f02"
    assert grafana.datasources["mw-internal"]["url"] == "http://influx:8086"
    assert set(grafana.folders) == {"mw-f01", "mw-f02", "mw-cluster"}
    expected = {f"{uid}-{f}" for uid in FACTORY_SCOPED for f in FACTORIES} | shared
    assert set(grafana.dashboards) == expected == set(report.dashboards)
    for uid, saved in grafana.dashboards.items():
        assert saved["overwrite"] is True
        assert "id" not in saved["dashboard"]
        folder = "mw-cluster" if uid in shared else f"mw-{uid.rsplit('-', 1)[1]}"
        assert saved["folderUid"] == folder


def test_factory_copies_are_pinned_to_their_datasource(grafana: GrafanaStandin) -> None:
    push(grafana.url, "tok", FACTORIES)
    saved = grafana.dashboards["mw-factory-overview-f02"]["dashboard"]
    factory = next(v for v in saved["templating"]["list"] if v["name"] == "factory")
    assert factory["regex"] == "/^mw-factory-f02$/"
    assert factory["current"]["value"] == "mw-factory-f02"
    assert saved["title"].endswith("f02")
    original = render_dashboards()["mw-factory-overview"]
    assert saved["panels"] == original["panels"]


def test_endpoints_and_auth_header(grafana: GrafanaStandin) -> None:
    push(grafana.url, "s3cret", ["f01"], influx_url="http://influx:8086")
    calls = {(r.method, r.path.split("?")[0]) for r in grafana.requests}
    assert ("GET", "/api/datasources/uid/mw-factory-f01") in calls
    assert ("POST", "/api/datasources") in calls
    assert ("GET", "/api/folders/mw-f01") in calls
    assert ("POST", "/api/folders") in calls
    assert ("POST", "/api/dashboards/db") in calls
    assert {m for m, _ in calls} <= {"GET", "POST", "PUT"}
    assert all(r.headers.get("Authorization") == "Bearer s3cret" for r in grafana.requests)


def test_second_push_overwrites_in_place(grafana: GrafanaStandin) -> None:
    push(grafana.url, "tok", FACTORIES, influx_url="http://influx:8086")
    first = {uid: saved["dashboard"] for uid, saved in grafana.dashboards.items()}
    before = len(grafana.requests)
    push(grafana.url, "tok", FACTORIES, influx_url="http://influx:8086")
    again = grafana.requests[before:]
    # Same uids, same content; data sources updated by uid, folders not created twice.
    assert {uid: saved["dashboard"] for uid, saved in grafana.dashboards.items()} == first
    assert not [r for r in again if r.method == "POST" and r.path.startswith("/api/folders")]
    assert not [r for r in again if r.method == "POST" and r.path == "/api/datasources"]
    puts = [r.path for r in again if r.method == "PUT"]
    assert sorted(puts) == sorted(f"/api/datasources/uid/{uid}" for uid in grafana.datasources)
    assert len([r for r in again if r.path == "/api/dashboards/db"]) == len(first)


def test_cli_push_uses_the_scenario_factories(
    grafana: GrafanaStandin, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["push", "--url", grafana.url, "--token", "tok"]) == 0
    assert set(grafana.folders) == {"mw-f01", "mw-f02", "mw-f03", "mw-cluster"}
    assert "dashboards into 4 folders" in capsys.readouterr().out


def test_cli_push_without_token_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    assert main(["push", "--url", "http://127.0.0.1:9"]) == 2
