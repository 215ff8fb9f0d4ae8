"""Every dashboard query, run against a real InfluxDB filled by the simulator.

No Grafana server can run here, so this is the proof the dashboards can give without
one: a small composite factory (looms, knitting, dyeing, a stenter; seven simulated
hours with seeded faults) is stored as ingest stores it, the analytics service passes
over it four times as if live (downsampling, anomaly scores and alarms, shift and batch
KPIs, cluster roll-ups, its own ``internal_analytics`` points), and ingest and gateway
self-metrics and dead letters are written with ingest's own formatters. Four more
factories' cluster roll-ups (scaled copies) make the five a benchmark band needs.

Then, for each committed dashboard JSON, the template variables are resolved the way
Grafana resolves them: each variable's own query runs against the database (with the
variables before it substituted) and must list values; a multi-value variable takes
"All" (``.*``), a single-value one takes each listed value in turn. ``$timeFilter``
becomes the absolute range of the filled data and ``$__interval`` 60 s. Every target
of every panel and every annotation query must run without error under every
assignment, and return a series with a non-null value under at least one (a machine
without fault labels shows an empty fault panel; another machine of its class has them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from analytics.service import AnalyticsService
from analytics.settings import AnalyticsSettings
from analytics.store import AnalyticsStore
from dashboards.build import PACKAGE_DIR, render_dashboards
from dashboards.common import ALL, CLUSTER_UID, FACTORY_DS_PREFIX, INTERNAL_UID
from gateway.metrics import GatewayMetrics
from ingest.decode import dead_letter_lines
from ingest.lineproto import gateway_metrics_lines, point_line
from ingest.metrics import IngestMetrics
from millwatch.contract import (
    INTERNAL_DATABASE,
    ContractError,
    GatewayAddress,
    decode_telemetry,
    factory_database,
)
from millwatch.servers import InfluxDB
from millwatch.site import FactorySite

from .simfill import fill

#: Monday 2026-02-02 00:00 UTC: a month after the analytics tests' data, so the shared
#: ``cluster_kpi`` and ``millwatch_internal`` databases hold only ours in this range.
START = 1_769_990_400_000
HOURS = 7  # a dyeing batch takes 4-6 h: at least one finishes
END = START + HOURS * 3_600_000
FACTORY = "dbx1"
MINUTE = 60_000
#: Hours after START at which the analytics service passes.
PASSES = (2, 4, 6, HOURS)
TIME_FILTER = f"time >= {START - 86_400_000}ms and time <= {END + 3_600_000}ms"
SCENARIO = """
name = "dashboards"
cluster = "c1"
seed = 7

[[factories]]
id = "dbx1"
archetype = "composite"
timezone = "UTC"
shifts = "3x8"
machines = { loom_airjet = 6, knit_circular = 3, dye_jet = 4, stenter = 1 }

[[faults]]
type = "sensor_stuck"
machine_types = "all"
count = 3
severity = [0.8, 1.0]

[[faults]]
type = "bearing_wear"
count = 2
severity = [0.9, 1.0]

[[faults]]
type = "lubrication_shortfall"
count = 2
severity = [0.9, 1.0]

[[faults]]
type = "yarn_tension_drift"
count = 2
severity = [0.9, 1.0]

[[faults]]
type = "burner_fault"
count = 2
severity = [0.9, 1.0]

[[faults]]
type = "heating_fault"
count = 1
severity = [0.9, 1.0]
"""
DASHBOARDS = sorted(render_dashboards())


@dataclass
class Rig:
    """The filled InfluxDB; ``lone_bands`` = band query results while one factory reports."""

    store: AnalyticsStore
    databases: dict[str, str]
    lone_bands: list[Any] = field(default_factory=list)


def _write_internal(store: AnalyticsStore) -> None:
    """Ingest and gateway counters every minute, and dead letters, as ingest writes them."""
    ingest, gateway = IngestMetrics(), GatewayMetrics()
    address = GatewayAddress("c1", FACTORY, "gw1")
    lines = []
    for minute, ts in enumerate(range(START, END, MINUTE)):
        ingest.messages_received.labels(channel="telemetry").inc(120)
        ingest.lines_written.labels(measurement="loom").inc(6 * 60)
        ingest.acked.inc(120)
        ingest.ack_lag.set(0.5 + minute % 7)
        gateway.messages_published.inc(120)
        gateway.outbox_depth.set(minute % 13)
        gateway.connected.set(1)
        lines.append(
            point_line("internal_ingest", {"worker": "ingest-1"}, ingest.snapshot(), ts * 10**6)
        )
        lines.append(gateway_metrics_lines(address, ts, gateway.snapshot()))
    topic = f"mw/v1/c1/{FACTORY}/weave1/l0001/telemetry"
    for i, payload in enumerate([b"{not json", b'{"v":2}', b'{"v":1,"seq":1,"type":"loom"}']):
        try:
            decode_telemetry(payload)
        except ContractError as error:
            lines.append(
                dead_letter_lines(topic, error, payload, (START + i * MINUTE) * 10**6).body
            )
    store.write(INTERNAL_DATABASE, lines)


@pytest.fixture(scope="module")
def rig(influxdb: InfluxDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    scenario = tmp_path_factory.mktemp("dashboards") / "scenario.toml"
    scenario.write_text(SCENARIO)
    store = AnalyticsStore(influxdb.url)
    fill(store, FACTORY, START, HOURS * 3600, scenario=str(scenario))
    _write_internal(store)
    settings = AnalyticsSettings(
        influx_url=influxdb.url, train_h=1.5, min_train_h=1, kpi_horizon_h=12, settle_s=0
    )
    now = [START]
    calendar = FactorySite(id=FACTORY, timezone="UTC", shifts="3x8")
    service = AnalyticsService(settings, [calendar], store=store, clock=lambda: now[0])
    for hour in PASSES:  # passes as if live: alarms all along the fill, not only at its end
        now[0] = START + hour * 3_600_000
        service.run_pass()
    assert service.metrics.snapshot()["errors_total"] == 0
    databases = {
        f"{FACTORY_DS_PREFIX}{FACTORY}": factory_database(FACTORY),
        INTERNAL_UID: INTERNAL_DATABASE,
        CLUSTER_UID: "cluster_kpi",
    }
    rig = Rig(store, databases)
    rig.lone_bands = _bands(rig)
    _more_factories(store)
    yield rig
    store.close()


def _more_factories(store: AnalyticsStore) -> None:
    """Four more factories' roll-ups: the real one's, scaled (a cluster of five).

    Simulating five factories would cost minutes; the band and k-anonymity queries
    only need five factories' rows, and these keep the real rows' shape and tags.
    """
    rows = store.query("cluster_kpi", f"SELECT * FROM factory_kpi WHERE factory = '{FACTORY}'")
    tags = {"cluster", "factory", "type", "shift"}
    lines = []
    for k in range(1, 5):
        for series in rows:
            for row in series.values:
                values = dict(zip(series.columns, row, strict=True))
                tag = {t: str(values[t]) for t in tags} | {"factory": f"{FACTORY}-{k}"}
                fields = {
                    c: v * (1 - 0.04 * k)
                    for c, v in values.items()
                    if c not in tags and c != "time" and isinstance(v, int | float)
                }
                lines.append(point_line("factory_kpi", tag, fields, int(values["time"]) * 10**6))
    store.write("cluster_kpi", lines)


def _bands(rig: Rig) -> list[Any]:
    board = _committed("mw-cluster-benchmark")
    queries = [t["query"] for p in board["panels"] for t in p.get("targets", [])]
    return [
        series
        for q in queries
        if "percentile" in q
        for machine_type in ("loom_airjet", "dye_jet")
        for series in _run(rig, CLUSTER_UID, q, {"type": machine_type})
    ]


_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def substitute(query: str, values: dict[str, str]) -> str:
    """Grafana's interpolation for our queries: macros first, then ``$var``/``${var}``."""
    query = query.replace("$timeFilter", TIME_FILTER).replace("$__interval", "60s")

    def one(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        return values.get(name, match[0])

    return _VARIABLE.sub(one, query)


def _run(rig: Rig, uid: str, query: str, values: dict[str, str]) -> list[Any]:
    db = rig.databases[substitute(uid, values)]
    text = substitute(query, values)
    assert not re.search(r"\$[\w{]", text), f"unsubstituted variable in {text!r}"
    return rig.store.query(db, text)  # raises QueryError on any InfluxQL error


def _non_null(series: list[Any]) -> bool:
    return any(v is not None for s in series for row in s.values for v in row[1:])


def _assignments(rig: Rig, variables: list[dict[str, Any]]) -> Iterator[dict[str, str]]:
    """Every way to set the variables as a user could, each from its own query's result."""

    def walk(i: int, values: dict[str, str]) -> Iterator[dict[str, str]]:
        if i == len(variables):
            yield dict(values)
            return
        var = variables[i]
        if var["type"] == "datasource":
            options = [name for name in rig.databases if re.match(var["regex"].strip("/"), name)]
        else:
            found = _run(rig, var["datasource"]["uid"], var["query"], values)
            options = sorted({str(row[-1]) for s in found for row in s.values})
        assert options, f"variable {var['name']} lists nothing"
        for option in [ALL] if var.get("includeAll") else options:
            yield from walk(i + 1, {**values, var["name"]: option})

    yield from walk(0, {})


def _targets(board: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(key, datasource uid, query) of every panel target and annotation."""
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            uid = (target.get("datasource") or panel["datasource"])["uid"]
            yield f"{panel['title']}/{target['refId']}", uid, target["query"]
    for annotation in board.get("annotations", {}).get("list", []):
        yield (
            f"annotation {annotation['name']}",
            annotation["datasource"]["uid"],
            annotation["target"]["query"],
        )


def _committed(uid: str) -> dict[str, Any]:
    return json.loads((PACKAGE_DIR / "json" / f"{uid}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("uid", DASHBOARDS)
def test_every_target_returns_data(rig: Rig, uid: str) -> None:
    board = _committed(uid)
    targets = list(_targets(board))
    assert targets
    proven = dict.fromkeys((key for key, _, _ in targets), False)
    for values in _assignments(rig, board["templating"]["list"]):
        for key, ds, query in targets:
            if not proven[key]:
                proven[key] = _non_null(_run(rig, ds, query, values))
    assert [key for key, ok in proven.items() if not ok] == []


def test_active_alarms_are_the_alarms_without_end(rig: Rig) -> None:
    db = factory_database(FACTORY)
    rows = [
        r
        for s in rig.store.query(db, 'SELECT "score", "end_ms" FROM "anomaly_alarm"')
        for r in s.values
    ]
    board = _committed("mw-factory-overview")
    stat = next(p for p in board["panels"] if p["title"] == "Active alarms" and p["type"] == "stat")
    result = _run(
        rig, "${factory}", stat["targets"][0]["query"], {"factory": f"{FACTORY_DS_PREFIX}{FACTORY}"}
    )
    open_alarms = sum(row[2] is None for row in rows)
    assert open_alarms >= 1 and len(rows) > open_alarms  # the fill has open and ended ones
    assert result[0].values[0][1] == open_alarms


def test_cluster_bands_are_ordered_and_name_no_factory(rig: Rig) -> None:
    board = _committed("mw-cluster-benchmark")
    bands = [t for p in board["panels"] for t in p.get("targets", []) if "percentile" in t["query"]]
    assert len(bands) == 6
    for target in bands:
        for series in _run(rig, CLUSTER_UID, target["query"], {"type": "loom_airjet"}):
            assert "factory" not in series.columns and not series.tags
            for _, p10, p50, p90 in series.values:
                assert p10 <= p50 <= p90


def test_analytics_reports_every_pass(rig: Rig) -> None:
    q = (
        'SELECT "pass_s", "lag_s", "points_written_total", "cycles_total" '
        f'FROM "internal_analytics" WHERE "factory" = \'{FACTORY}\' AND {TIME_FILTER}'
    )
    rows = [row for s in rig.store.query(INTERNAL_DATABASE, q) for row in s.values]
    assert [row[0] for row in rows] == [START + h * 3_600_000 for h in PASSES]
    assert all(row[1] > 0 and row[2] >= 0 for row in rows)
    assert [row[4] for row in rows] == list(range(len(PASSES)))  # counted after each pass
    assert rows[-1][3] > rows[0][3] > 0
