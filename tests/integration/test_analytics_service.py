"""The analytics service against a real InfluxDB filled with a simulated weaving mill.

Three hours of factory f01 (48 air-jet looms, 1 Hz) are stored as ingest stores them,
with ten minutes held back to arrive late. The tests reconcile what the service wrote
with the raw rows and events: downsampled buckets against the same simulation reduced
in memory, shift KPIs against the stop events and counters, late data against the
recomputed shift.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from analytics.frame import Panel
from analytics.kpi_job import CLUSTER_DATABASE
from analytics.service import AnalyticsService
from analytics.settings import AnalyticsSettings
from analytics.simdata import simulate
from analytics.store import AnalyticsStore
from millwatch.servers import InfluxDB
from millwatch.site import FactorySite

from .simfill import Filled, fill

#: Monday 2026-01-05 00:00 UTC = 06:00 in Dhaka, the start of shift A.
START = 1_767_571_200_000
HOURS = 3
END = START + HOURS * 3_600_000
HELD = (START + 3_600_000, START + 4_200_000)
FACTORY = "an1"
DB = f"f_{FACTORY}"
SHIFT_A = "2026-01-05/A"


@dataclass
class Rig:
    """The filled database after two service passes, the held-back data between them."""

    store: AnalyticsStore
    service: AnalyticsService
    filled: Filled
    first_pass: dict[str, float]
    second_pass: dict[str, float]
    picks_and_stops_before_late_data: tuple[float, float]
    rows_before_late_data: tuple[int, int]


@pytest.fixture(scope="module")
def rig(influxdb: InfluxDB) -> Iterator[Rig]:
    store = AnalyticsStore(influxdb.url)
    filled = fill(store, "f01", START, HOURS * 3600, address_factory=FACTORY, hold_back=HELD)
    settings = AnalyticsSettings(
        influx_url=influxdb.url, train_h=1.5, min_train_h=1, kpi_horizon_h=6, settle_s=0
    )
    calendar = FactorySite(id=FACTORY, timezone="Asia/Dhaka", shifts="3x8")
    service = AnalyticsService(settings, [calendar], store=store, clock=lambda: END)
    service.run_pass()
    first, before = service.metrics.snapshot(), (_kpi(store, "picks"), _kpi(store, "stops"))
    rows = _one(store, DB, "SELECT sum(rows) FROM loom_1m")[0][1]
    raw = _one(store, DB, "SELECT count(seq) FROM loom")[0][1]
    store.write(DB, filled.held)  # ten minutes of shift A arrive late
    service.jobs[0].kpi_due_ms = 0
    service.run_pass()
    yield Rig(store, service, filled, first, service.metrics.snapshot(), before, (rows, raw))
    store.close()


def _one(store: AnalyticsStore, db: str, q: str) -> list[list[object]]:
    return [row for s in store.query(db, q) for row in s.values]


def _kpi(store: AnalyticsStore, field: str) -> float:
    q = f"SELECT sum(\"{field}\") FROM kpi_shift WHERE shift = '{SHIFT_A}' AND type = 'loom_airjet'"
    return float(_one(store, DB, q)[0][1])


def test_first_pass_downsamples_and_computes_every_part(rig: Rig) -> None:
    p = rig.first_pass
    assert p["errors_total"] == 0
    assert p["monitor_fits_total"] == 1
    assert p["kpi_shifts_computed_first_total"] == 1  # looms; climate sensors get no KPIs
    rows, raw = rig.rows_before_late_data
    assert rows == raw == 48 * (HOURS * 3600 - 600)  # all but the held-back 10 minutes


def test_late_data_is_downsampled_and_its_shift_recomputed(rig: Rig) -> None:
    second = rig.second_pass
    assert second["errors_total"] == 0
    assert second["kpi_shifts_computed_open_total"] == 1  # shift A runs until 08:00 UTC
    rows = _one(rig.store, DB, "SELECT sum(rows) FROM loom_1m")[0][1]
    assert rows == 48 * HOURS * 3600
    picks, stops = rig.picks_and_stops_before_late_data
    # The gap cost no production (counters carry it over); its stop events now count.
    assert _kpi(rig.store, "picks") == picks
    assert _kpi(rig.store, "stops") > stops


def test_downsampled_tables_equal_the_in_memory_reduction(rig: Rig) -> None:
    """InfluxQL buckets and ``analytics.simdata`` buckets are the same panel convention."""
    stored = rig.store.read_panel(DB, "loom_airjet", START, END)
    memory = simulate("default", days=HOURS / 24, factories=["f01"], progress=None)
    expected: Panel = memory.panels("f01")["loom_airjet"]
    assert stored.machines == expected.machines
    for name in (
        "speed_rpm",
        "vib_rms_mm_s",
        "picks_total",
        "picks_total:first",
        "warp_tension_kn:sd",
    ):
        np.testing.assert_allclose(
            stored[name], expected[name], rtol=1e-9, equal_nan=True, err_msg=name
        )
    same_mode = np.mean(stored["state_code"] == expected["state_code"])
    assert same_mode > 0.999


def test_shift_kpis_reconcile_with_events_and_counters(rig: Rig) -> None:
    events = [e for e in rig.filled.events if e["ts"] < END]
    stops = sum(e["kind"] == "stop" and e["code"] == "STOP_PROCESS" for e in events)
    assert _kpi(rig.store, "stops") == stops
    classes = sum(_kpi(rig.store, f"stops_{c}") for c in ("warp", "weft", "other"))
    assert classes == stops
    resets = {e["machine"] for e in events if e["kind"] == "counter_reset"}
    per_machine = rig.store.query(DB, 'SELECT spread("picks_total") FROM loom GROUP BY machine')
    raw_picks = sum(s.values[0][1] for s in per_machine if s.tags["machine"] not in resets)
    q = f"SELECT picks, machine FROM kpi_shift WHERE shift = '{SHIFT_A}' AND type = 'loom_airjet'"
    kpi = {r[2]: r[1] for r in _one(rig.store, DB, q)}
    assert len(per_machine) == 48 and len(kpi) == 48
    assert sum(v for m, v in kpi.items() if m not in resets) == raw_picks
    run_s = _kpi(rig.store, "run_s")
    assert 0.6 * 48 * HOURS * 3600 < run_s < 48 * HOURS * 3600


def test_anomaly_scores_and_alarms_are_stored(rig: Rig) -> None:
    scores = _one(rig.store, DB, "SELECT count(score), min(score), max(score) FROM anomaly")[0]
    assert scores[1] > 0 and 0.0 <= scores[2] <= scores[3] <= 1.0
    alarms = rig.second_pass["points_written_anomaly_alarm_total"]
    stored = _one(rig.store, DB, "SELECT count(score) FROM anomaly_alarm")
    assert (stored[0][1] if stored else 0) == alarms


def test_cluster_database_holds_aggregates_only(rig: Rig) -> None:
    q = f"SELECT machines, oee, factory FROM factory_kpi WHERE factory = '{FACTORY}'"
    rows = _one(rig.store, CLUSTER_DATABASE, q)
    assert rows and all(r[1] == 48 and 0 < r[2] <= 1 and r[3] == FACTORY for r in rows)
    keys = {row[0] for s in rig.store.query(CLUSTER_DATABASE, "SHOW TAG KEYS") for row in s.values}
    assert "machine" not in keys and "hall" not in keys
    measurements = _one(rig.store, CLUSTER_DATABASE, "SHOW MEASUREMENTS")
    assert [m[0] for m in measurements] == ["factory_kpi"]


def test_a_dyehouse_starts_up_and_late_events_alone_recompute_a_shift(influxdb: InfluxDB) -> None:
    """Day one of a dyehouse: batches still running, then stop events arriving late."""
    store = AnalyticsStore(influxdb.url)
    fill(store, "f03", START, 2 * 3600, address_factory="an3")
    settings = AnalyticsSettings(
        influx_url=influxdb.url, train_h=1.5, min_train_h=1, kpi_horizon_h=6, settle_s=0
    )
    calendar = FactorySite(id="an3", timezone="Europe/Istanbul", shifts="3x8")
    end = START + 2 * 3_600_000
    service = AnalyticsService(settings, [calendar], store=store, clock=lambda: end)
    service.run_pass()
    first = service.metrics.snapshot()
    assert first["errors_total"] == 0
    per_type = store.query("f_an3", 'SELECT count(run_s) FROM kpi_shift GROUP BY "type"')
    assert {s.tags["type"] for s in per_type} == {"dye_jet", "stenter"}
    # Late stop events of a stenter, with no telemetry: the shift is recomputed.
    q = "SELECT sum(stops) FROM kpi_shift WHERE type = 'stenter'"
    stops = _one(store, "f_an3", q)[0][1]
    late = [
        f"machine_event,cluster=c1,factory=an3,hall=finish1,machine=s0001,type=stenter,"
        f'kind=stop seq=0i,code="STOP_PROCESS",reason="TEAR" {(START + 600_000 + i) * 1_000_000}'
        for i in range(3)
    ]
    store.write("f_an3", late)
    service.jobs[0].kpi_due_ms = 0
    service.run_pass()
    second = service.metrics.snapshot()
    assert second["kpi_shifts_computed_total"] > first["kpi_shifts_computed_total"]
    assert _one(store, "f_an3", q)[0][1] == stops + 3
    store.close()
