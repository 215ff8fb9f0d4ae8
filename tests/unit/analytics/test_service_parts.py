"""The analytics service's own parts without a server: settings, points, roll-ups, errors."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import ValidationError

from analytics.alarm_book import AlarmBook
from analytics.points import alarm_line, row_lines, score_lines
from analytics.rollup import factory_rollup
from analytics.service import AnalyticsService
from analytics.settings import AnalyticsSettings, load_factories
from analytics.store import AnalyticsStore, downsample_query, panel_columns
from millwatch.site import FactorySite


def test_factories_file_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "factories.toml"
    path.write_text(
        '[[factories]]\nid = "f01"\ntimezone = "Asia/Dhaka"\n\n'
        '[[factories]]\nid = "f02"\ntimezone = "Asia/Kolkata"\nshifts = "2x12"\n'
        'shift_start = "08:00"\n'
    )
    factories = load_factories(path)
    assert [(f.id, f.shifts, f.shift_start) for f in factories] == [
        ("f01", "3x8", "06:00"),
        ("f02", "2x12", "08:00"),
    ]
    assert AnalyticsSettings(factories_file=path).factories() == factories
    with pytest.raises(ValidationError):
        FactorySite(id="F 1", timezone="Asia/Dhaka")
    with pytest.raises(ValidationError):
        FactorySite(id="f1", timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        AnalyticsSettings(train_h=1, min_train_h=2)


def test_panel_columns_follow_the_convention() -> None:
    columns = dict((name, expr) for expr, name in panel_columns("loom_airjet"))
    assert columns["speed_rpm"] == 'mean("speed_rpm")'
    assert columns["speed_rpm:sd"] == 'stddev("speed_rpm")'
    assert columns["picks_total"] == 'last("picks_total")'
    assert columns["picks_total:first"] == 'first("picks_total")'
    assert columns["picks_total:max"] == 'max("picks_total")'
    assert columns["state_code"] == 'mode("state_code")'
    assert "state_code:sd" not in columns
    dye = dict((name, expr) for expr, name in panel_columns("dye_jet"))
    assert "batch_id" not in dye and "step_no" not in dye  # strings and step numbers
    q = downsample_query("stenter", 60_000, 180_000)
    assert 'FROM "stenter"' in q and "time >= 60000ms AND time < 180000ms" in q
    assert "INTO" not in q  # InfluxDB 2.x/3.x v1 APIs take no SELECT ... INTO
    assert '"zone12_temp_c:sd"' in q


def test_row_lines_tag_what_they_describe_and_skip_empty_rows() -> None:
    rows = [
        {"machine": "l1", "shift": "2026-01-05/A", "start_ms": 7, "oee": 0.5, "note": "ok"},
        {"machine": "l2", "shift": "2026-01-05/A", "start_ms": 7, "oee": math.nan},
    ]
    lines = row_lines("kpi_shift", rows, {"factory": "f1"}, ("machine", "shift"), "start_ms")
    assert lines == ['kpi_shift,factory=f1,machine=l1,shift=2026-01-05/A oee=0.5,note="ok" 7000000']


@dataclass
class _Scores:
    machines: list[str]
    ts_ms: np.ndarray
    score: np.ndarray
    z: np.ndarray
    signal: np.ndarray
    signals: list[str]


def test_score_lines_start_at_the_first_new_bucket() -> None:
    scores = _Scores(
        ["l1"],
        np.array([0, 60_000, 120_000]),
        np.array([[0.1, np.nan, 0.9]]),
        np.array([[1.0, np.nan, 6.5]]),
        np.array([[0, -1, 1]]),
        ["vib_rms_mm_s", "air_flow_nm3h"],
    )
    lines = score_lines(scores, "loom_airjet", {"l1": "weave1"}, {"factory": "f1"}, 60_000)
    assert lines == [
        "anomaly,factory=f1,hall=weave1,machine=l1,type=loom_airjet "
        'score=0.9,z=6.5,signal="air_flow_nm3h" 120000000000'
    ]


@dataclass
class _Alarm:
    machine: str | None
    machine_type: str
    signal: str
    kind: str
    detector: str
    start_ms: int
    end_ms: int | None
    peak_score: float
    z: float
    baseline: float
    machines: tuple[str, ...] = ()


def test_alarm_lines_for_machine_and_hall_alarms() -> None:
    open_alarm = _Alarm(
        "l1", "loom_airjet", "vib_rms_mm_s", "process", "robust", 60_000, None, 0.95, 7.0, 2.0
    )
    line = alarm_line(open_alarm, {"l1": "weave1"}, {"factory": "f1"})
    assert line.startswith("anomaly_alarm,factory=f1,hall=weave1,kind=process,machine=l1,")
    assert "end_ms" not in line  # still open
    hall = _Alarm(
        None,
        "loom_airjet",
        "air_supply_bar",
        "hall",
        "hall",
        0,
        120_000,
        0.99,
        -9.0,
        6.2,
        ("l1", "l2"),
    )
    line = alarm_line(hall, {"l1": "weave1", "l2": "weave1"}, {"factory": "f1"})
    assert ",machine=" not in line and "hall=weave1" in line
    assert 'machines="l1,l2"' in line and "end_ms=120000.0" in line


def test_rollup_sums_counts_recomputes_rates_and_weights_ratios() -> None:
    rows = [
        {
            "planned_s": 1000.0,
            "run_s": 900.0,
            "oee": 0.9,
            "picks": 2e5,
            "stops_warp": 2.0,
            "stops_per_1e5_picks_warp": 1.0,
            "rft_pct": 100.0,
            "batches": 1.0,
        },
        {
            "planned_s": 3000.0,
            "run_s": 1500.0,
            "oee": 0.5,
            "picks": 2e5,
            "stops_warp": 6.0,
            "stops_per_1e5_picks_warp": 3.0,
            "rft_pct": 50.0,
            "batches": 3.0,
        },
        {"planned_s": 0.0, "run_s": 0.0, "oee": math.nan, "picks": 0.0},
    ]
    agg = factory_rollup(rows)
    assert agg["machines"] == 3 and agg["planned_s"] == 4000 and agg["stops_warp"] == 8
    assert agg["availability"] == pytest.approx(2400 / 4000)
    assert agg["oee"] == pytest.approx((0.9 * 1000 + 0.5 * 3000) / 4000)  # by planned time
    assert agg["stops_per_1e5_picks_warp"] == pytest.approx(1e5 * 8 / 4e5)  # from the sums
    assert agg["rft_pct"] == pytest.approx((100 * 1 + 50 * 3) / 4)  # by finished batches


def test_rollup_of_repair_and_failure_times_is_total_time_over_total_count() -> None:
    rows = [
        {
            "planned_s": 8000.0,
            "run_s": 7000.0,
            "stops_warp": 1.0,
            "mttr_s_warp": 600.0,
            "breakdowns": 1.0,
            "mtbf_s": 7000.0,
            "mttr_breakdown_s": 3600.0,
        },
        {
            "planned_s": 8000.0,
            "run_s": 9000.0,
            "stops_warp": 10.0,
            "mttr_s_warp": 60.0,
            "breakdowns": 0.0,
            "mtbf_s": math.nan,
        },
    ]
    agg = factory_rollup(rows)
    assert agg["mttr_s_warp"] == pytest.approx((600 + 10 * 60) / 11)
    assert agg["mtbf_s"] == pytest.approx(16000 / 1)
    assert agg["mttr_breakdown_s"] == pytest.approx(3600)


def test_a_failing_database_is_counted_and_the_pass_goes_on() -> None:
    calls = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(503, text="influxdb is starting")

    store = AnalyticsStore("http://influx.invalid", transport=httpx.MockTransport(refuse))
    factories = [FactorySite(id=f, timezone="UTC") for f in ("f1", "f2")]
    service = AnalyticsService(AnalyticsSettings(), factories, store=store, clock=lambda: 10**12)
    service.run_pass()
    service.run_pass()
    counters = service.metrics.snapshot()
    assert counters["errors_discover_total"] == 4  # two factories, two passes
    assert counters["cycles_total"] == 2
    assert calls == ["/query"] * 4


def test_alarm_book_keeps_one_alarm_per_fault_across_passes() -> None:
    book = AlarmBook(merge_gap_ms=10 * 60_000)
    minute = 60_000

    def alarm(start: int, end: int | None, peak: float = 0.9, machine: str = "l1") -> _Alarm:
        return _Alarm(
            machine,
            "loom_airjet",
            "vib",
            "process",
            "robust",
            start * minute,
            None if end is None else end * minute,
            peak,
            5.0,
            2.0,
        )

    stored, new = book.update([alarm(95, None)], 100 * minute)  # reaches into the context
    assert [a.start_ms for a in new] == [100 * minute]
    # The next pass finds the same fault with another first bucket: it continues.
    stored, new = book.update([alarm(97, None, peak=0.99)], 101 * minute)
    assert new == [] and stored[0].start_ms == 100 * minute and stored[0].peak_score == 0.99
    # A second machine's alarm is its own; the first one is not found again: it ended.
    stored, new = book.update([alarm(102, None, machine="l2")], 102 * minute)
    ended = {a.machine: a.end_ms for a in stored}
    assert ended == {"l2": None, "l1": 102 * minute} and [a.machine for a in new] == ["l2"]
    # Long after, a fresh episode of l1 is a new alarm, and the closed one is forgotten.
    stored, new = book.update([alarm(200, None), alarm(102, None, machine="l2")], 200 * minute)
    assert [a.machine for a in new] == ["l1"]
    assert {k[0] for k in book.known} == {"l1", "l2"}


def test_kpis_wait_for_a_factory_s_first_data_instead_of_a_whole_kpi_interval() -> None:
    """The first pass of ``millwatch up`` can come before any gateway wrote a row."""
    store = AnalyticsStore(
        "http://influx.invalid",
        transport=httpx.MockTransport(lambda _: httpx.Response(200, json={"results": [{}]})),
    )
    service = AnalyticsService(
        AnalyticsSettings(),
        [FactorySite(id="f1", timezone="UTC")],
        store=store,
        clock=lambda: 10**12,
    )
    service.run_pass()
    assert service.metrics.snapshot()["errors_total"] == 0
    assert service.jobs[0].kpi_due_ms == 0  # still due: the next pass with data computes
