"""The API's values against the real InfluxDB filled by the simulator.

Each endpoint is checked against an independent path to the same truth: raw rows
queried directly, or the KPI library run on the stored panel and events.
"""

from __future__ import annotations

import numpy as np
import pytest

from analytics.kpi.shift import shift_kpis
from analytics.rollup import factory_rollup
from analytics.shifts import shift_windows
from api.benchmark import BENCHMARK_KPIS
from api.models import Factory

from .apirig import FACTORIES, ONLY_AP2, ApiRig


@pytest.fixture(scope="module")
def rig(api_rig: ApiRig) -> ApiRig:
    return api_rig


@pytest.fixture(scope="module")
def client(rig: ApiRig):
    with rig.client(benchmark_min_factories=3) as client:
        yield client


def _iso(ms: int) -> str:
    return np.datetime64(ms, "ms").astype(str) + "Z"


def _one(rig: ApiRig, db: str, q: str) -> list[list]:
    return [row for s in rig.store.query(db, q) for row in s.values]


def test_machine_list_shows_live_state_of_every_registered_machine(rig, client) -> None:
    response = client.get("/v1/machines", headers=rig.headers("ap1"), params={"limit": 1000})
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == len(rig.machines["ap1"])
    assert {m["id"] for m in page["items"]} == set(rig.machines["ap1"])
    by_id = {m["id"]: m for m in page["items"]}
    assert all(m["status"]["online"] for m in page["items"])
    newest = _one(rig, "f_ap1", 'SELECT last("state_code") FROM "knit" GROUP BY "machine"')
    states = {
        s.tags["machine"]: int(s.values[0][1])
        for s in rig.store.query(
            "f_ap1", 'SELECT last("state_code") FROM "knit" GROUP BY "machine"'
        )
    }
    assert newest and states
    names = {
        0: "OFF_NOPLAN",
        1: "RUN",
        2: "STOP_PROCESS",
        3: "BREAKDOWN",
        4: "SETUP",
        5: "WAIT",
        6: "PLANNED_MAINT",
        7: "IDLE_READY",
    }
    for machine, code in states.items():
        assert by_id[machine]["status"]["state"] == names[code]
    stopped = [m for m in page["items"] if m["status"]["state"] == "STOP_PROCESS"]
    for m in stopped:  # a process stop always has its reason
        assert m["status"]["stop_reason"], m


def test_machine_list_pages_and_filters(rig, client) -> None:
    headers = rig.headers("ap1")
    first = client.get("/v1/machines", headers=headers, params={"limit": 10}).json()
    second = client.get(first["next"], headers=headers).json()
    assert len(first["items"]) == 10 and second["offset"] == 10
    assert not {m["id"] for m in first["items"]} & {m["id"] for m in second["items"]}
    env = client.get("/v1/machines", headers=headers, params={"machine_type": "hall_env"}).json()
    assert [m["id"] for m in env["items"]] == ["env-knit1"]


def test_telemetry_buckets_equal_raw_aggregates(rig, client) -> None:
    start, end = rig.end_ms - 1_800_000, rig.end_ms
    response = client.get(
        "/v1/machines/k0002/telemetry",
        headers=rig.headers("ap1"),
        params={
            "field": ["speed_rpm", "revs_total"],
            "start": _iso(start),
            "end": _iso(end),
            "interval_s": 300,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "raw" and body["interval_s"] == 300 and len(body["time"]) == 6
    direct = _one(
        rig,
        "f_ap1",
        f"SELECT mean(speed_rpm) FROM knit WHERE machine = 'k0002' AND time >= {start}ms "
        f"AND time < {end}ms GROUP BY time(300s, {start % 300_000}ms) fill(none)",
    )
    assert body["values"]["speed_rpm"] == pytest.approx([r[1] for r in direct])


def test_long_telemetry_ranges_read_the_minute_table(rig, client) -> None:
    response = client.get(
        "/v1/machines/k0002/telemetry",
        headers=rig.headers("ap1"),
        params={
            "field": "speed_rpm",
            "start": _iso(rig.end_ms - 7 * 3_600_000),
            "end": _iso(rig.end_ms),
            "interval_s": 600,
        },
    )
    body = response.json()
    assert body["source"] in ("1m", "1m+raw")
    raw = _one(
        rig,
        "f_ap1",
        f"SELECT mean(speed_rpm) FROM knit WHERE machine = 'k0002' AND time >= {rig.start_ms}ms "
        f"AND time < {rig.end_ms}ms GROUP BY time(600s, {rig.start_ms % 600_000}ms) fill(none)",
    )
    # Every full 60-s bucket holds 60 samples, so the mean of means is the raw mean.
    assert body["values"]["speed_rpm"] == pytest.approx([r[1] for r in raw], rel=1e-9)


def _library_kpis(rig: ApiRig, factory: str) -> list[dict]:
    """Shift KPIs computed right here by the KPI library from the stored panel."""
    with rig.database.session() as session:
        site = session.get(Factory, factory)
    windows = shift_windows(
        site.timezone, site.shifts, rig.start_ms - 86_400_000, rig.end_ms, site.shift_start
    )
    db = f"f_{factory}"
    rows = []
    for w in range(len(windows)):
        start, end = int(windows.start_ms[w]), int(windows.end_ms[w])
        if end <= rig.start_ms or start >= rig.end_ms:
            continue
        stop = min(end, rig.end_ms)
        panel = rig.store.read_panel(db, "knit_circular", start, stop)
        events = rig.store.read_events(db, "knit_circular", start, stop)
        one = type(windows)(
            windows.start_ms[w : w + 1], windows.end_ms[w : w + 1], [windows.labels[w]]
        )
        rows += shift_kpis("knit_circular", panel, events, one, now_ms=stop).rows()
    return rows


def test_kpis_per_machine_hall_and_factory_equal_the_kpi_library(rig, client) -> None:
    expected = _library_kpis(rig, "ap1")
    assert expected
    params = {
        "start": _iso(rig.start_ms - 86_400_000),
        "end": _iso(rig.end_ms),
        "machine_type": "knit_circular",
        "limit": 1000,
    }
    machines = client.get("/v1/kpis", headers=rig.headers("ap1"), params=params).json()["items"]
    got = {(r["key"], r["period"]): r["kpis"] for r in machines}
    assert len(got) == len(expected)
    for row in expected:
        api = got[(row["machine"], row["window"])]
        for name in ("oee", "availability", "efficiency", "kg_per_h", "run_s", "kg"):
            if np.isfinite(row.get(name, np.nan)):
                assert api[name] == pytest.approx(row[name], rel=1e-6, abs=1e-9), name
    factory = client.get(
        "/v1/kpis", headers=rig.headers("ap1"), params={**params, "level": "factory"}
    ).json()["items"]
    for item in factory:
        same_shift = [r for r in expected if r["window"] == item["period"]]
        truth = factory_rollup(same_shift)
        assert item["key"] == "ap1" and item["machines"] == len(same_shift)
        for name in ("oee", "availability", "kg"):
            assert item["kpis"][name] == pytest.approx(truth[name], rel=1e-6)
    csv = client.get("/v1/kpis.csv", headers=rig.headers("ap1"), params=params)
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("machine,machine_type,period,start_ms,machines,")
    assert len(lines) == 1 + len(expected)


def test_alarms_list_ack_and_comment(rig, client) -> None:
    headers = rig.headers("ap1")
    params = {"start": _iso(rig.start_ms), "end": _iso(rig.end_ms)}
    listed = client.get("/v1/alarms", headers=headers, params=params).json()
    ours = {a["id"]: a for a in listed["items"]}
    assert set(rig.alarm_ids) <= set(ours)
    machine_alarm, hall_alarm = (ours[i] for i in rig.alarm_ids)
    assert machine_alarm["open"] and machine_alarm["machine_id"] == "k0003"
    assert machine_alarm["signal"] == "speed_rpm" and machine_alarm["z"] == 6.5
    assert not hall_alarm["open"] and hall_alarm["machines"] == ["k0001", "k0002", "k0004"]
    open_ones = client.get("/v1/alarms", headers=headers, params={"state": "open"}).json()
    assert rig.alarm_ids[0] in {a["id"] for a in open_ones["items"]}
    assert rig.alarm_ids[1] not in {a["id"] for a in open_ones["items"]}

    acked = client.post(f"/v1/alarms/{rig.alarm_ids[0]}/ack", headers=headers).json()
    assert acked["acknowledged"]["by_key"]
    again = client.post(f"/v1/alarms/{rig.alarm_ids[0]}/ack", headers=headers).json()
    assert again["acknowledged"] == acked["acknowledged"]
    posted = client.post(
        f"/v1/alarms/{rig.alarm_ids[0]}/comments", headers=headers, json={"text": "bearing checked"}
    )
    assert posted.status_code == 201
    comments = client.get(f"/v1/alarms/{rig.alarm_ids[0]}/comments", headers=headers).json()
    assert [c["text"] for c in comments] == ["bearing checked"]
    unacked = client.get(
        "/v1/alarms", headers=headers, params={**params, "acknowledged": False}
    ).json()
    assert rig.alarm_ids[0] not in {a["id"] for a in unacked["items"]}


def test_anomaly_scores_come_from_the_analytics_pass(rig, client) -> None:
    headers = rig.headers("ap1")
    params = {"start": _iso(rig.start_ms), "end": _iso(rig.end_ms), "limit": 50}
    page = client.get("/v1/anomalies", headers=headers, params=params).json()
    stored = _one(rig, "f_ap1", f"SELECT count(score) FROM anomaly WHERE time >= {rig.start_ms}ms")
    assert page["total"] == stored[0][1] > 0
    times = [a["time"] for a in page["items"]]
    assert times == sorted(times, reverse=True) and len(times) == 50
    assert all(0 <= a["score"] <= 1 for a in page["items"])


def test_benchmark_bands_are_percentiles_of_factory_rollups(rig, client) -> None:
    params = {"start": _iso(rig.start_ms - 86_400_000), "end": _iso(rig.end_ms)}
    body = client.get("/v1/benchmarks", headers=rig.headers("ap2"), params=params).json()
    bands = {(b["machine_type"], b["kpi"]): b for b in body["bands"]}
    oee = bands[("knit_circular", "oee")]
    per_factory = {}
    for factory in FACTORIES:
        per_factory[factory] = factory_rollup(_library_kpis(rig, factory))["oee"]
    assert oee["factories"] == 3 and not oee["suppressed"]
    assert oee["p50"] == pytest.approx(np.percentile(list(per_factory.values()), 50), rel=1e-6)
    assert oee["own_value"] == pytest.approx(per_factory["ap2"], rel=1e-6)
    better = sum(v < per_factory["ap2"] for f, v in per_factory.items() if f != "ap2")
    assert oee["own_position_pct"] == pytest.approx(100 * better / 2)
    assert set(BENCHMARK_KPIS) >= {b["kpi"] for b in body["bands"]}


def test_bands_from_fewer_than_k_factories_are_withheld(rig) -> None:
    with rig.client(benchmark_min_factories=4) as client:
        body = client.get(
            "/v1/benchmarks",
            headers=rig.headers("ap1"),
            params={"start": _iso(rig.start_ms - 86_400_000)},
        ).json()
    assert body["min_factories"] == 4 and body["bands"]
    for band in body["bands"]:
        assert band["suppressed"] and band["factories"] == 3
        assert band["p10"] is band["p50"] is band["p90"] is band["own_position_pct"] is None


def test_operators_see_every_factorys_aggregates_and_no_machine(rig, client) -> None:
    headers = rig.headers("cluster_operator")
    body = client.get(
        "/v1/cluster/factories", headers=headers, params={"start": _iso(rig.start_ms - 86_400_000)}
    ).json()
    assert {i["factory_id"] for i in body["items"]} == set(FACTORIES)
    text = str(body)
    assert "k000" not in text and "knit1" not in text  # no machine, no hall
    assert client.get("/v1/machines", headers=headers).status_code == 403


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/machines/k0002/telemetry", {"field": "nope"}, 422),
        (
            "/v1/machines/k0002/telemetry",
            {"field": "speed_rpm", "start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            400,
        ),
        (
            "/v1/machines/k0002/telemetry",
            {"field": "speed_rpm", "start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            400,
        ),
        (
            "/v1/machines/k0002/telemetry",
            {
                "field": "speed_rpm",
                "interval_s": 1,
                "start": "2026-01-01T00:00:00Z",
                "end": "2026-01-02T00:00:00Z",
            },
            400,
        ),
        (
            "/v1/machines/k0002/telemetry",
            {"field": "speed_rpm", "start": "2026-01-01T00:00:00"},
            422,
        ),
        ("/v1/machines/K0002!/telemetry", {"field": "speed_rpm"}, 422),
        ("/v1/machines/nope-404", {}, 404),
        (f"/v1/machines/{ONLY_AP2}", {}, 404),
        ("/v1/alarms/123.loom_airjet.l0001.process", {}, 404),
        ("/v1/alarms/not-an-id", {}, 422),
        ("/v1/kpis", {"level": "planet"}, 422),
    ],
)
def test_bad_input_gets_a_problem_document(rig, client, path, params, status) -> None:
    response = client.get(path, headers=rig.headers("ap1"), params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["title"] and "detail" in problem


def test_injection_through_parameters_reaches_no_query(rig, client) -> None:
    headers = rig.headers("ap1")
    evil = "k0002' OR machine =~ /.*/"
    assert client.get(f"/v1/machines/{evil}", headers=headers).status_code in (404, 422)
    response = client.get(
        "/v1/machines/k0002/telemetry",
        headers=headers,
        params={"field": 'speed_rpm") FROM knit; DROP DATABASE "f_ap1'},
    )
    assert response.status_code == 422
    assert (
        client.get("/v1/kpis", headers=headers, params={"machine": "x' OR '1'='1"}).status_code
        == 422
    )
    assert rig.store.query("f_ap1", "SHOW MEASUREMENTS")  # still there


def test_health_reports_influxdb_and_registry(rig, client) -> None:
    body = client.get("/health").json()
    assert body == {"status": "ok", "influxdb": True, "registry": True}
    assert "millwatch_api_requests_total" in client.get("/metrics").text
