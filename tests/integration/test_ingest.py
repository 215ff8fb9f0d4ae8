"""Ingest against real Mosquitto and InfluxDB: exactly-once rows, dead letters, outages."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import paho.mqtt.client as mqtt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingest import Ingest, IngestSettings, WriteError, run
from ingest.outputs import InfluxDBv1Output
from millwatch import contract
from millwatch.contract import MachineAddress, TelemetryBatch
from millwatch.servers import Mosquitto, free_port

SAMPLES = 5


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


def uid() -> str:
    return uuid.uuid4().hex[:8]


class Client:
    """A plain paho client: publishes at QoS 1, or collects what it subscribed to."""

    def __init__(self, broker: Mosquitto, subscribe: str | None = None) -> None:
        self.received: list[mqtt.MQTTMessage] = []
        self._subscribed = threading.Event()
        self.mqtt = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uid()}")
        self.mqtt.on_message = lambda _c, _u, message: self.received.append(message)
        self.mqtt.on_subscribe = lambda *_: self._subscribed.set()
        if subscribe:
            self.mqtt.on_connect = lambda c, *_: c.subscribe(subscribe, qos=1)
        self.mqtt.connect(broker.host, broker.port)
        self.mqtt.loop_start()
        if subscribe:
            assert self._subscribed.wait(10), "subscription not granted"

    def publish(self, topic: str, payload: bytes) -> None:
        self.mqtt.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


@pytest.fixture
def clients(mosquitto: Mosquitto) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(subscribe: str | None = None) -> Client:
        made.append(Client(mosquitto, subscribe))
        return made[-1]

    yield make
    for client in made:
        client.close()


def settings_for(mosquitto: Mosquitto, influx_url: str, **overrides: Any) -> IngestSettings:
    base: dict[str, Any] = {
        "mqtt_host": mosquitto.host,
        "mqtt_port": mosquitto.port,
        "influx_url": influx_url,
        "client_id": f"ingest-test-{uid()}",
        "flush_interval_s": 0.05,
        "retry_max_s": 0.5,
    }
    return IngestSettings(**(base | overrides))


def telemetry(machine_type: str, seq: int, t0: int) -> bytes:
    kinds = contract.MACHINE_TYPES[machine_type].fields
    fields: dict[str, np.ndarray] = {}
    chosen = list(kinds)[:5] + [k for k, kind in kinds.items() if kind is contract.FieldKind.STR]
    for n, (name, kind) in enumerate((k, kinds[k]) for k in chosen):
        if kind is contract.FieldKind.STR:
            fields[name] = np.array([f'B-"{seq}"\\{i}' for i in range(SAMPLES)], dtype=object)
        else:
            fields[name] = np.arange(SAMPLES, dtype=np.float64) + seq * 10 + n + 0.25
    fields[next(iter(fields))][1] = np.nan  # a gap: that field is left out of one line
    ts = t0 + seq * 10_000 + np.arange(SAMPLES) * 1000
    return contract.encode_telemetry(TelemetryBatch(machine_type, seq, ts, fields))


def bad_payloads(now: int) -> list[tuple[str, bytes, str]]:
    """(channel or full topic, payload, expected reason) for each kind of bad input."""
    ok = {"v": 1, "seq": 1, "type": "loom_airjet", "ts": [now], "m": {"speed_rpm": [800.0]}}
    return [
        ("telemetry", b'{"v":1,"seq":1,', "malformed_json"),
        ("telemetry", orjson.dumps(ok | {"m": {"speed_rpm": ["fast"]}}), "wrong_type"),
        ("telemetry", orjson.dumps(ok).replace(b"800.0", b"NaN"), "non_finite"),
        ("telemetry", orjson.dumps(ok).replace(b"800.0", b"1e400"), "non_finite"),
        ("telemetry", orjson.dumps(ok | {"m": {"warp_drive": [1.0]}}), "unknown_field"),
        ("telemetry", orjson.dumps(ok | {"type": "loom_jacquard_9000"}), "unknown_machine_type"),
        ("telemetry", orjson.dumps(ok | {"ts": [now + 86_400_000]}), "timestamp_out_of_range"),
        ("telemetry", b" " * (contract.MAX_PAYLOAD_BYTES + 1) + orjson.dumps(ok), "oversize"),
        ("event", orjson.dumps({"v": 1, "seq": 1, "type": "loom_airjet"}), "schema"),
        ("mw/v1/c1/BAD/weave1/l1/telemetry", orjson.dumps(ok), "bad_topic"),
        ("event", BINARY_PAYLOAD, "malformed_json"),
    ]


#: Quotes, a backslash, controls and invalid UTF-8: the dead_letter row must keep them.
BINARY_PAYLOAD = b'{"v":1,"id":"a\\"b",\x00\n\t\xff\xfe'
#: How its ``payload`` field reads in InfluxDB: backslashes doubled, the rest as ``\xNN``.
BINARY_PAYLOAD_TEXT = r'{"v":1,"id":"a\\"b",\x00\x0a\x09\xff\xfe'


def rows_by_machine_and_seq(query: Callable[..., list[dict[str, Any]]], db: str) -> Counter:
    """Rows per (machine, seq); empty while the database does not exist yet."""
    rows: Counter = Counter()
    for measurement in ("loom", "knit", "dye"):
        try:
            found = query(db, f'SELECT "seq" FROM "{measurement}" GROUP BY "machine"')
        except AssertionError as exc:
            if "database not found" in str(exc):
                return Counter()
            raise
        for row in found:
            rows[(row["machine"], row["seq"])] += 1
    return rows


def test_valid_rows_land_exactly_once_and_bad_ones_are_dead_lettered(
    mosquitto: Mosquitto, influxdb: Any, influx_query: Any, clients: Callable[..., Client]
) -> None:
    factories = [f"t{uid()}", f"t{uid()}"]
    machines = [("weave1", "l1", "loom_airjet"), ("knit1", "k1", "knit_circular")]
    machines.append(("wet1", "d1", "dye_jet"))
    dead = clients(f"{contract.DEADLETTER_ROOT}/#")
    publisher = clients()
    started_ns = time.time_ns()
    with Ingest(settings_for(mosquitto, influxdb.url)) as ingest:
        assert ingest.wait_ready(10)
        now = contract.now_ms()
        t0 = now - 3_600_000
        bad = iter(bad_payloads(now))
        published, expected = 0, Counter()
        for seq in range(4):
            for factory in factories:
                for hall, machine, machine_type in machines:
                    address = MachineAddress("c1", factory, hall, machine)
                    topic = contract.machine_topic(address, "telemetry")
                    publisher.publish(topic, telemetry(machine_type, seq, t0))
                    expected[(factory, machine, seq)] = SAMPLES
                    published += 1
                    channel, payload, _ = next(bad, ("", b"", ""))
                    if channel:
                        bad_topic = (
                            channel if "/" in channel else topic.replace("telemetry", channel)
                        )
                        publisher.publish(bad_topic, payload)
                        published += 1
        event = {"v": 1, "seq": 9, "type": "loom_airjet"}
        event["records"] = [{"ts": now, "kind": "stop", "code": "X"}] * 2
        loom_a = MachineAddress("c1", factories[0], "weave1", "l1")
        publisher.publish(contract.machine_topic(loom_a, "event"), orjson.dumps(event))
        gateway = contract.GatewayAddress("c1", factories[0], "gw1")
        publisher.publish(
            contract.gateway_topic(gateway, "metrics"), contract.encode_metrics({"sent": 3}, now)
        )
        published += 2

        snap = ingest.metrics.snapshot
        wait_for(lambda: snap()["acked_total"] >= published, what="every message acked")
        assert snap()["unacked"] == 0
        assert snap()["acked_total"] == published

    reasons = Counter(reason for _, _, reason in bad_payloads(now))
    for reason, count in reasons.items():
        assert snap()[f"messages_rejected_{reason}_total"] == count, reason
    assert snap()["messages_rejected_total"] == sum(reasons.values())

    wait_for(lambda: len(dead.received) >= sum(reasons.values()), 10, "dead letters")
    time.sleep(0.2)  # no extra ones trickle in
    letters = Counter(message.topic for message in dead.received)
    assert letters == Counter({contract.deadletter_topic(r): n for r, n in reasons.items()})
    oversize = next(m for m in dead.received if m.topic.endswith("/oversize"))
    assert len(orjson.loads(oversize.payload)["payload"]) == 4096

    # Nobody need listen on the dead-letter topics: every reject is also a row in InfluxDB.
    rows = [
        row
        for row in influx_query(
            contract.INTERNAL_DATABASE, f"SELECT * FROM dead_letter WHERE time >= {started_ns}"
        )
        if row["factory"] in factories or "/BAD/" in row["topic"]
    ]
    assert Counter(row["reason"] for row in rows) == reasons
    assert all(started_ns <= row["time"] <= time.time_ns() for row in rows)
    bad_topic = next(row for row in rows if row["reason"] == "bad_topic")
    assert bad_topic["factory"] == "unknown"
    oversize_row = next(row for row in rows if row["reason"] == "oversize")
    assert oversize_row["payload"] == " " * 1024
    assert oversize_row["factory"] == factories[0]
    binary = next(row for row in rows if row["payload"].startswith('{"v":1,"id"'))
    assert binary["payload"] == BINARY_PAYLOAD_TEXT
    assert binary["topic"].endswith("/event")

    landed: Counter = Counter()
    for factory in factories:
        db = contract.factory_database(factory)
        landed.update(
            {(factory, m, s): n for (m, s), n in rows_by_machine_and_seq(influx_query, db).items()}
        )
    assert landed == expected

    db_a = contract.factory_database(factories[0])
    events = influx_query(db_a, 'SELECT "code", "seq" FROM "machine_event" GROUP BY "kind"')
    assert [(e["kind"], e["code"]) for e in events] == [("stop", "X"), ("stop", "X")]
    assert events[1]["time"] - events[0]["time"] == 1
    strings = influx_query(db_a, 'SELECT "batch_id" FROM "dye" WHERE "seq" = 0 LIMIT 1')
    assert strings[0]["batch_id"] == 'B-"0"\\0'
    gw = influx_query(
        contract.INTERNAL_DATABASE,
        f'SELECT "sent" FROM "internal_gateway" WHERE "factory" = \'{factories[0]}\'',
    )
    assert [row["sent"] for row in gw] == [3]


def test_outage_keeps_messages_unacked_until_a_restarted_ingest_writes_them(
    mosquitto: Mosquitto, influxdb: Any, influx_query: Any, clients: Callable[..., Client]
) -> None:
    factory = f"t{uid()}"
    db = contract.factory_database(factory)
    client_id = f"ingest-outage-{uid()}"
    publisher = clients()
    t0 = contract.now_ms() - 3_600_000
    topic = contract.machine_topic(MachineAddress("c1", factory, "weave1", "l1"), "telemetry")
    payloads = [telemetry("loom_airjet", seq, t0) for seq in range(12)]

    closed_port = f"http://127.0.0.1:{free_port()}"
    down = Ingest(settings_for(mosquitto, closed_port, client_id=client_id, retry_max_s=0.2))
    with down:
        assert down.wait_ready(10)
        for payload in payloads[:8]:
            publisher.publish(topic, payload)
        snap = down.metrics.snapshot
        wait_for(lambda: snap()["messages_received_total"] >= 8, what="deliveries")
        wait_for(lambda: snap()["write_retries_total"] >= 3, what="retries")
        assert snap()["acked_total"] == 0
        assert snap()["unacked"] >= 1
        assert snap()["ack_lag_seconds"] > 0
    assert down.metrics.snapshot()["acked_total"] == 0

    for payload in payloads[8:]:  # while no ingest runs: queued in the persistent session
        publisher.publish(topic, payload)

    with Ingest(settings_for(mosquitto, influxdb.url, client_id=client_id)) as up:
        expected = Counter({("l1", seq): SAMPLES for seq in range(12)})
        wait_for(lambda: rows_by_machine_and_seq(influx_query, db) == expected, what="rows")
        wait_for(lambda: up.metrics.snapshot()["unacked"] == 0, what="acks")
        assert up.metrics.snapshot()["acked_total"] >= 12


def test_broker_restart_loses_nothing_and_duplicates_nothing(
    mosquitto: Mosquitto, influxdb: Any, influx_query: Any, clients: Callable[..., Client]
) -> None:
    factory = f"t{uid()}"
    db = contract.factory_database(factory)
    t0 = contract.now_ms() - 3_600_000
    topic = contract.machine_topic(MachineAddress("c1", factory, "knit1", "k1"), "telemetry")
    with Ingest(settings_for(mosquitto, influxdb.url)) as ingest:
        assert ingest.wait_ready(10)
        publisher = clients()
        for seq in range(5):
            publisher.publish(topic, telemetry("knit_circular", seq, t0))
        mosquitto.restart()
        assert ingest.wait_ready(30)
        publisher = clients()
        for seq in range(5, 10):
            publisher.publish(topic, telemetry("knit_circular", seq, t0))
        expected = Counter({("k1", seq): SAMPLES for seq in range(10)})
        wait_for(lambda: rows_by_machine_and_seq(influx_query, db) == expected, what="rows")
        wait_for(lambda: ingest.metrics.snapshot()["unacked"] == 0, what="acks")


def test_metrics_endpoint_serves_prometheus_text(mosquitto: Mosquitto, influxdb: Any) -> None:
    port = free_port()
    with Ingest(settings_for(mosquitto, influxdb.url, metrics_port=port)) as ingest:
        assert ingest.wait_ready(10)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False).text
    names = {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }
    expected = {"acked_total", "unacked", "ack_lag_seconds", "write_retries_total"}
    assert {f"millwatch_ingest_{name}" for name in expected} <= names


def test_run_serves_until_stopped(
    mosquitto: Mosquitto, influxdb: Any, influx_query: Any, clients: Callable[..., Client]
) -> None:
    factory = f"t{uid()}"
    topic = contract.machine_topic(MachineAddress("c1", factory, "knit1", "k1"), "telemetry")
    stop = threading.Event()
    settings = settings_for(mosquitto, influxdb.url)
    worker = threading.Thread(target=run, args=(settings, stop))
    worker.start()
    try:
        publisher = clients()
        payload = telemetry("knit_circular", 0, contract.now_ms() - 60_000)
        db = contract.factory_database(factory)
        expected = Counter({("k1", 0): SAMPLES})
        # Until ingest has subscribed, a message may find no subscriber: resend (idempotent).
        deadline = time.monotonic() + 30
        while rows_by_machine_and_seq(influx_query, db) != expected:
            assert time.monotonic() < deadline, "row never landed"
            publisher.publish(topic, payload)
            time.sleep(0.3)
    finally:
        stop.set()
        worker.join(30)
    assert not worker.is_alive()


class SwitchableOutput:
    """The real InfluxDB output, plus a switch that makes every call fail as in an outage."""

    def __init__(self, url: str) -> None:
        self.inner = InfluxDBv1Output(url)
        self.down = threading.Event()

    def ensure_database(self, db: str) -> None:
        self._check(db)
        self.inner.ensure_database(db)

    def write(self, db: str, body: bytes) -> None:
        self._check(db)
        self.inner.write(db, body)

    def close(self) -> None:
        self.inner.close()

    def _check(self, db: str) -> None:
        if self.down.is_set():
            raise WriteError(f"switched off: {db!r}", True)


def test_a_field_type_conflict_rejects_only_the_conflicting_message(
    mosquitto: Mosquitto, influxdb: Any, influx_query: Any, clients: Callable[..., Client]
) -> None:
    factory = f"t{uid()}"
    db = contract.factory_database(factory)
    t0 = contract.now_ms() - 3_600_000
    # Someone stored liquor_temp_c as a string: InfluxDB refuses floats there (400).
    with httpx.Client(base_url=influxdb.url, timeout=10, trust_env=False) as http:
        http.post("/query", data={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()
        conflict = f'dye,cluster=c1,factory={factory},hall=wet1,machine=x liquor_temp_c="hot"'
        http.post(
            "/write", params={"db": db}, content=f"{conflict} {t0 * 1_000_000}"
        ).raise_for_status()
    knit = contract.machine_topic(MachineAddress("c1", factory, "knit1", "k1"), "telemetry")
    dye = contract.machine_topic(MachineAddress("c1", factory, "wet1", "d1"), "telemetry")
    publisher = clients()
    with Ingest(settings_for(mosquitto, influxdb.url, flush_interval_s=0.5)) as ingest:
        assert ingest.wait_ready(10)
        for seq in range(2):
            publisher.publish(knit, telemetry("knit_circular", seq, t0))
        publisher.publish(dye, telemetry("dye_jet", 0, t0))
        publisher.publish(knit, telemetry("knit_circular", 2, t0))
        snap = ingest.metrics.snapshot
        wait_for(lambda: snap()["acked_total"] >= 4, what="every message acked")

    assert snap()["messages_rejected_influx_rejected_total"] == 1
    assert snap()["lines_written_knit_total"] == 3 * SAMPLES
    # InfluxDB 1.x may have kept the dye lines without the conflicting field (partial write).
    landed = rows_by_machine_and_seq(influx_query, db)
    assert Counter({key: n for key, n in landed.items() if key[0] == "k1"}) == Counter(
        {("k1", seq): SAMPLES for seq in range(3)}
    )
    (row,) = influx_query(
        contract.INTERNAL_DATABASE, f"SELECT * FROM dead_letter WHERE factory = '{factory}'"
    )
    assert (row["reason"], row["topic"]) == ("influx_rejected", dye)
    assert "field type conflict" in row["detail"]
    assert row["payload"] == telemetry("dye_jet", 0, t0)[:1024].decode().replace("\\", "\\\\")


def connections(caplog: pytest.LogCaptureFixture) -> int:
    return caplog.text.count("event=mqtt_connected")


def test_messages_a_killed_broker_forgot_are_still_written(
    tmp_path: Path, influxdb: Any, influx_query: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ingest.consumer")
    factory = f"t{uid()}"
    db = contract.factory_database(factory)
    t0 = contract.now_ms() - 3_600_000
    topic = contract.machine_topic(MachineAddress("c1", factory, "knit1", "k1"), "telemetry")
    # No autosave: the broker's file holds what it had at its last clean stop, no more.
    with Mosquitto(tmp_path / "mosquitto", extra_conf="autosave_interval 3600") as broker:
        output = SwitchableOutput(influxdb.url)
        with Ingest(settings_for(broker, influxdb.url), output=output) as ingest:
            assert ingest.wait_ready(10)
            broker.restart()  # SIGTERM: the session and its subscriptions are saved
            wait_for(lambda: connections(caplog) == 2 and ingest.wait_ready(0), 30, "reconnect")
            output.down.set()
            publisher = Client(broker)
            publisher.publish(topic, telemetry("knit_circular", 0, t0))
            snap = ingest.metrics.snapshot
            wait_for(lambda: snap()["write_retries_total"] >= 1, what="writer stuck on seq 0")
            publisher.publish(topic, telemetry("knit_circular", 1, t0))  # queued behind it
            wait_for(lambda: ingest.consumer.queue.qsize() == 1, what="seq 1 received")
            publisher.close()
            broker.kill()  # a crash: both messages were acked to the publisher, never saved
            broker.start()
            wait_for(lambda: connections(caplog) == 3, 30, "reconnect after the crash")
            assert caplog.text.count("session_present=True") == 2
            output.down.clear()
            expected = Counter({("k1", seq): SAMPLES for seq in range(2)})
            wait_for(lambda: rows_by_machine_and_seq(influx_query, db) == expected, what="rows")
            wait_for(lambda: snap()["unacked"] == 0, what="nothing held")
            assert snap()["acked_total"] == 0  # their mids died with the old connection


def test_broker_restarts_during_an_outage_keep_memory_bounded_and_lose_nothing(
    mosquitto: Mosquitto,
    influxdb: Any,
    influx_query: Any,
    clients: Callable[..., Client],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ingest.consumer")
    window = 10
    factory = f"t{uid()}"
    db = contract.factory_database(factory)
    t0 = contract.now_ms() - 3_600_000
    topic = contract.machine_topic(MachineAddress("c1", factory, "knit1", "k1"), "telemetry")
    output = SwitchableOutput(influxdb.url)
    output.down.set()
    settings = settings_for(
        mosquitto, influxdb.url, receive_maximum=window, retry_max_s=0.2, flush_interval_s=1.0
    )
    with Ingest(settings, output=output) as ingest:
        assert ingest.wait_ready(10)
        publisher = clients()
        for seq in range(2 * window):  # the broker sends one window, holds the rest
            publisher.publish(topic, telemetry("knit_circular", seq, t0))
        snap = ingest.metrics.snapshot
        wait_for(lambda: snap()["messages_received_total"] == window, what="first window")
        wait_for(lambda: snap()["write_retries_total"] >= 1, what="writer stuck on it")
        queue = ingest.consumer.queue
        for restart in range(1, 6):
            mosquitto.restart()  # each time the broker resends the same window
            wait_for(lambda n=restart: connections(caplog) == n + 1, 30, "reconnect")
            if restart <= 2:  # the writer holds the first window; the queue takes two more
                wait_for(lambda n=restart: queue.qsize() == n * window, what="redeliveries")
            else:  # then the oldest copies go, one window per reconnect (it was 50 queued)
                purged = (restart - 2) * window
                wait_for(lambda n=purged: snap()["redeliveries_purged_total"] == n, what="purge")
            assert queue.qsize() <= 2 * window
            assert snap()["unacked"] <= 3 * window  # the queue and the batch being retried
        assert snap()["redeliveries_purged_total"] > 0
        output.down.clear()
        expected = Counter({("k1", seq): SAMPLES for seq in range(2 * window)})
        wait_for(lambda: rows_by_machine_and_seq(influx_query, db) == expected, what="rows")
        wait_for(lambda: snap()["unacked"] == 0, what="every message acked")
