"""Gateway → Mosquitto → ingest → InfluxDB end to end, reconciled per machine and seq.

Every test runs real servers (fixtures), real gateways with simulated factories in
fast-forward, and real ingest workers sharing one MQTT v5 shared subscription. Each
machine's produced sequence numbers must land exactly once: its telemetry rows equal the
samples produced, its event rows equal the events produced, and the union of seqs seen in
InfluxDB equals ``first_seq..last_seq`` with no gap.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from gateway import Gateway, GatewaySettings
from ingest import Ingest, IngestSettings
from millwatch import contract
from millwatch.servers import InfluxDB, Mosquitto

Query = Callable[[str, str], list[dict[str, Any]]]
RECORD_MEASUREMENTS = {contract.EVENT_MEASUREMENT: "events", contract.FAULT_MEASUREMENT: "labels"}
MEASUREMENTS = (
    *sorted({t.measurement for t in contract.MACHINE_TYPES.values()}),
    *RECORD_MEASUREMENTS,
)


def wait_for(condition: Callable[[], bool], timeout: float, what: str, fail: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            if fail:
                pytest.fail(f"timed out after {timeout} s waiting for {what}")
            return
        time.sleep(0.2)


class Pipeline:
    """Gateways for ``factories`` simulated factories and ``workers`` ingest workers."""

    def __init__(self, broker: Mosquitto, influx: InfluxDB, tmp: Path, factories: int) -> None:
        self.broker, self.influx, self.tmp = broker, influx, tmp
        self.cluster = f"c{uuid.uuid4().hex[:6]}"  # fresh databases in the shared InfluxDB
        self.factories = [f"f{n:02d}" for n in range(1, factories + 1)]
        self.gateways: list[Gateway] = []
        self.workers: list[Ingest] = []
        self.stack = ExitStack()

    def databases(self) -> list[str]:
        return [contract.factory_database(f"{self.cluster}-{f}") for f in self.factories]

    def start_ingest(self, worker: int) -> Ingest:
        settings = IngestSettings(
            mqtt_host=self.broker.host,
            mqtt_port=self.broker.port,
            influx_url=self.influx.url,
            client_id=f"ingest-{self.cluster}-{worker}",
            share_group=f"ingest-{self.cluster}",
            flush_interval_s=0.05,
            retry_max_s=1.0,
            internal_interval_s=0.5,
        )
        ingest = Ingest(settings)
        ingest.start()
        assert ingest.wait_ready(15), "ingest did not subscribe"
        self.workers.append(ingest)
        return ingest

    def start_gateways(self, ticks: int, samples_per_message: int, **machines: int) -> None:
        """One fast-forward gateway per factory, each simulating exactly ``machines``."""
        for index, factory in enumerate(self.factories):
            settings = GatewaySettings(
                cluster="c1",
                factory=f"{self.cluster}-{factory}",
                gateway_id="gw1",
                mqtt_host=self.broker.host,
                mqtt_port=self.broker.port,
                outbox_path=self.tmp / f"outbox-{factory}.sqlite",
                fast_forward=True,
                max_ticks=ticks,
                samples_per_message=samples_per_message,
                metrics_interval_s=0.5,
                inputs={"simulator": {"machines": machines, "seed": index}},
            )
            gateway = Gateway(settings)
            gateway.start()
            self.gateways.append(gateway)

    def expected(self) -> dict[tuple[str, str], Any]:
        return {
            (contract.factory_database(address.factory), address.machine): produced
            for gateway in self.gateways
            for address, produced in gateway.produced.items()
        }

    def landed(self, query: Query) -> dict[tuple[str, str], dict[str, Any]]:
        """Per (database, machine): telemetry rows, event rows and the seqs seen."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for db in self.databases():
            for measurement in MEASUREMENTS:
                try:
                    rows = query(db, f'SELECT "seq" FROM "{measurement}" GROUP BY "machine"')
                except AssertionError as exc:
                    if "database not found" in str(exc):
                        break
                    raise
                for row in rows:
                    entry = found.setdefault(
                        (db, row["machine"]),
                        {"telemetry": 0, "events": 0, "labels": 0, "seqs": set()},
                    )
                    kind = RECORD_MEASUREMENTS.get(measurement, "telemetry")
                    entry[kind] += 1
                    entry["seqs"].add(row["seq"])
        return found

    def total_rows(self, query: Query) -> int:
        return sum(e["telemetry"] + e["events"] + e["labels"] for e in self.landed(query).values())

    def close(self) -> None:
        for gateway in self.gateways:
            gateway.stop()
        for worker in self.workers:
            worker.stop()


@pytest.fixture
def pipeline(
    mosquitto: Mosquitto, influxdb: InfluxDB, tmp_path: Path
) -> Iterator[Callable[[int], Pipeline]]:
    made: list[Pipeline] = []

    def make(factories: int) -> Pipeline:
        made.append(Pipeline(mosquitto, influxdb, tmp_path, factories))
        return made[-1]

    yield make
    for p in made:
        p.close()


def assert_exactly_once(p: Pipeline, query: Query) -> None:
    for gateway in p.gateways:
        assert gateway.wait_idle(120), "gateway did not finish and drain its outbox"
    expected = p.expected()
    assert expected, "the gateways produced nothing"
    wanted_rows = sum(e.samples + e.events + e.labels for e in expected.values())
    # On a timeout the checks below say which machine and which seqs are missing.
    wait_for(lambda: p.total_rows(query) >= wanted_rows, 60, f"{wanted_rows} rows", fail=False)
    landed = p.landed(query)
    assert set(landed) == set(expected), "machines in InfluxDB differ from machines produced"
    wrong = {}
    for key, produced in expected.items():
        got = landed[key]
        wanted = set(range(produced.first_seq, produced.last_seq + 1))
        counts = (got["telemetry"], got["events"])
        if got["seqs"] != wanted or counts != (produced.samples, produced.events):
            missing = sorted(wanted - got["seqs"])[:10]
            wrong[key] = (
                f"rows {counts} of {(produced.samples, produced.events)}, missing {missing}"
            )
    assert not wrong, f"{len(wrong)} of {len(expected)} machines wrong: {wrong}"


def test_two_factories_land_every_seq_exactly_once_across_two_workers(
    pipeline: Callable[[int], Pipeline], influx_query: Query
) -> None:
    p = pipeline(2)
    workers = [p.start_ingest(0), p.start_ingest(1)]
    p.start_gateways(ticks=300, samples_per_message=10, loom_airjet=16, knit_circular=4, dye_jet=2)
    assert_exactly_once(p, influx_query)
    assert len(p.expected()) == 2 * (22 + 2)  # with the weaving and knitting halls' sensors
    received = [w.metrics.snapshot()["messages_received_total"] for w in workers]
    assert min(received) > 0, f"the shared subscription did not split the load: {received}"
    assert sum(w.metrics.snapshot()["messages_rejected_total"] for w in workers) == 0
    assert_self_metrics_landed(p, influx_query)


def assert_self_metrics_landed(p: Pipeline, query: Query) -> None:
    """Both gateways' and both workers' counters reach ``millwatch_internal``."""
    db = contract.INTERNAL_DATABASE

    def sources() -> tuple[set[str], set[str]]:
        gateways = query(
            db, 'SELECT last("messages_acked_total") FROM internal_gateway GROUP BY "factory"'
        )
        workers = query(
            db, 'SELECT last("lines_written_total") FROM internal_ingest GROUP BY "worker"'
        )
        return {r["factory"] for r in gateways}, {r["worker"] for r in workers}

    wanted = ({f"{p.cluster}-{f}" for f in p.factories}, {w.settings.client_id for w in p.workers})
    wait_for(
        lambda: all(w <= s for w, s in zip(wanted, sources(), strict=True)),
        15,
        "self-metrics in millwatch_internal",
    )


def test_broker_restart_mid_stream_loses_and_duplicates_nothing(
    pipeline: Callable[[int], Pipeline], mosquitto: Mosquitto, influx_query: Query
) -> None:
    p = pipeline(2)
    ingest = p.start_ingest(0)
    p.start_gateways(ticks=400, samples_per_message=1, loom_airjet=20)
    wait_for(lambda: ingest.metrics.snapshot()["lines_written_total"] > 500, 60, "data flowing")
    mosquitto.restart()
    assert_exactly_once(p, influx_query)


def test_ingest_restart_mid_stream_loses_and_duplicates_nothing(
    pipeline: Callable[[int], Pipeline], influx_query: Query
) -> None:
    p = pipeline(2)
    first = p.start_ingest(0)
    p.start_gateways(ticks=400, samples_per_message=1, loom_airjet=20)
    wait_for(lambda: first.metrics.snapshot()["lines_written_total"] > 500, 60, "data flowing")
    first.stop()
    p.workers.remove(first)
    written_by_first = first.metrics.snapshot()["lines_written_total"]
    second = p.start_ingest(0)  # same client id: the broker kept the session
    assert_exactly_once(p, influx_query)
    assert second.metrics.snapshot()["lines_written_total"] > 0
    assert written_by_first < 2 * 20 * 400, "the restart did not happen mid-stream"
