"""Consumer + writer logic on a fake MQTT client and the memory output."""

import threading
import time

import orjson
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from ingest.errors import WriteError
from millwatch import contract

LOOM = "mw/v1/c1/f03/weave1/l{n:04d}/telemetry"


def telemetry(seq: int, ts: int | None = None, **overrides) -> bytes:
    ts = ts or contract.now_ms()
    doc = {"v": 1, "seq": seq, "type": "loom_airjet", "ts": [ts, ts + 1000], "m": {}}
    doc["m"] = {"speed_rpm": [800.0 + seq, None], "picks_total": [seq, seq + 1]}
    return orjson.dumps(doc | overrides)


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.005)


def test_connect_uses_a_persistent_session_and_shared_qos1_subscriptions(rig):
    kwargs = rig.client.connect_kwargs
    assert kwargs["clean_start"] is False
    assert kwargs["properties"].SessionExpiryInterval == 7 * 24 * 3600
    assert kwargs["properties"].ReceiveMaximum == 1000
    (subscribed,) = rig.client.subscriptions
    assert ("$share/ingest/mw/v1/+/+/+/+/telemetry", 1) in subscribed
    assert ("$share/ingest/mw/v1/+/+/+/+/event", 1) in subscribed
    assert ("$share/ingest/mw/v1/+/+/+/+/fault_label", 1) in subscribed
    assert ("$share/ingest/mw/v1/+/+/+/+/metrics", 1) in subscribed
    assert ("$SYS/broker/publish/messages/dropped", 0) in subscribed
    assert rig.consumer.ready.is_set()
    rig.client.drop()
    assert not rig.consumer.ready.is_set()


def test_acks_follow_a_successful_write_in_order(rig):
    mids = [rig.client.deliver(LOOM.format(n=n), telemetry(n)) for n in range(5)]
    assert rig.value("unacked") == 5
    batch, _ = rig.writer.collect()
    assert [d.mid for d in batch.deliveries] == mids
    assert rig.client.acks == []
    rig.writer.deliver(batch)
    assert rig.client.acks == mids
    assert len(rig.output.lines["f_f03"]) == 10
    assert rig.value("lines_written_total", measurement="loom") == 10
    assert rig.value("acked_total") == 5
    assert rig.value("unacked") == 0


def test_batches_are_cut_at_max_messages(make_rig):
    rig = make_rig(batch_max_messages=3)
    rig.consumer.start()
    rig.client.connect()
    for n in range(7):
        rig.client.deliver(LOOM.format(n=n), telemetry(n))
    sizes = []
    while not rig.consumer.queue.empty():
        batch, _ = rig.writer.collect()
        sizes.append(len(batch.deliveries))
        rig.writer.deliver(batch)
    assert sizes == [3, 3, 1]
    assert rig.client.acks == list(range(1, 8))


def test_batches_are_cut_at_max_lines(make_rig):
    rig = make_rig(batch_max_lines=3)
    rig.consumer.start()
    rig.client.connect()
    for n in range(4):
        rig.client.deliver(LOOM.format(n=n), telemetry(n))  # 2 lines each
    batch, _ = rig.writer.collect()
    assert len(batch.deliveries) == 2


def test_retryable_failures_retry_the_same_batch_then_ack(rig):
    rig.output.fail_next(3)
    mids = [rig.client.deliver(LOOM.format(n=n), telemetry(n)) for n in range(3)]
    rig.flush()
    assert rig.value("write_retries_total") == 3
    assert rig.client.acks == mids
    assert len(rig.output.lines["f_f03"]) == 6


def test_no_ack_while_the_output_is_down(rig):
    rig.output.fail_next(10**9)
    rig.client.deliver(LOOM.format(n=1), telemetry(1))
    rig.writer.start()
    wait_for(lambda: rig.value("write_retries_total") >= 5)
    assert rig.client.acks == []
    assert rig.value("unacked") == 1
    assert rig.value("ack_lag_seconds") > 0
    rig.output.fail_next(0)
    wait_for(lambda: rig.client.acks == [1])
    rig.consumer.stop_accepting()
    rig.writer.stop()
    assert rig.value("unacked") == 0


def test_final_write_errors_are_counted_and_acked(rig):
    rig.output.reject_next(1)
    rig.client.deliver(LOOM.format(n=1), telemetry(1))
    rig.flush()
    assert rig.value("write_errors_total") == 1
    assert rig.value("write_retries_total") == 0
    assert rig.client.acks == [1]


def test_invalid_messages_are_dead_lettered_counted_and_acked_with_valid_ones(rig):
    now = contract.now_ms()
    sent = [
        (LOOM.format(n=1), telemetry(1)),
        (LOOM.format(n=2), b"{not json"),
        (LOOM.format(n=3), telemetry(3, type="loom_warp_drive")),
        ("mw/v1/c1/F03/weave1/l0001/telemetry", telemetry(4)),
        (LOOM.format(n=5), telemetry(5, ts=now + 3_600_000)),
        (LOOM.format(n=6), telemetry(6)),
    ]
    mids = [rig.client.deliver(topic, payload) for topic, payload in sent]
    rig.flush()
    assert rig.client.acks == mids
    assert len(rig.output.lines["f_f03"]) == 4
    assert {line.split("seq=")[1].split("i")[0] for line in rig.output.lines["f_f03"]} == {
        "1",
        "6",
    }
    reasons = ["malformed_json", "unknown_machine_type", "bad_topic", "timestamp_out_of_range"]
    assert [topic for topic, _, _ in rig.client.published] == [
        contract.deadletter_topic(r) for r in reasons
    ]
    assert all(qos == 1 for _, _, qos in rig.client.published)
    for reason in reasons:
        assert rig.value("messages_rejected_total", reason=reason) == 1
    letter = orjson.loads(rig.client.published[0][1])
    assert letter == {
        "topic": LOOM.format(n=2),
        "reason": "malformed_json",
        "detail": letter["detail"],
        "payload": "{not json",
    }
    assert rig.value("messages_received_total", channel="telemetry") == 5
    assert rig.value("messages_received_total", channel="invalid") == 1


def test_a_batch_of_only_invalid_messages_is_acked(rig):
    rig.client.deliver(LOOM.format(n=1), b"[]")
    rig.flush()
    assert rig.client.acks == [1]
    assert rig.output.writes == 1  # its dead-letter row, nothing else
    assert list(rig.output.lines) == [contract.INTERNAL_DATABASE]


def test_acks_of_an_old_connection_are_dropped_and_redeliveries_acked(rig):
    payloads = [telemetry(n) for n in range(2)]
    old = [rig.client.deliver(LOOM.format(n=n), payloads[n]) for n in range(2)]
    batch, _ = rig.writer.collect()
    rig.client.drop()
    rig.client.connect(session_present=True)
    rig.writer.deliver(batch)  # written, but the mids belong to the dead connection
    assert rig.client.acks == []
    again = [rig.client.deliver(LOOM.format(n=n), payloads[n]) for n in range(2)]
    rig.flush()
    assert rig.client.acks == again
    assert set(old).isdisjoint(again)
    # Idempotent: the rewrite produced the very same lines.
    lines = rig.output.lines["f_f03"]
    assert lines[:4] == lines[4:]
    assert rig.value("unacked") == 0


def test_queued_messages_of_an_old_connection_are_written_but_not_acked_when_the_session_survives(
    rig,
):
    # A broker killed before its autosave may not hold them any more: write them anyway.
    rig.client.deliver(LOOM.format(n=1), telemetry(1))
    rig.client.drop()
    rig.client.connect(session_present=True)
    rig.flush()
    assert len(rig.output.lines["f_f03"]) == 2
    assert rig.client.acks == []
    assert rig.value("unacked") == 0


def test_queued_messages_are_written_but_not_acked_when_the_session_was_lost(rig):
    rig.client.deliver(LOOM.format(n=1), telemetry(1))
    rig.client.drop()
    rig.client.connect(session_present=False)
    rig.flush()
    assert len(rig.output.lines["f_f03"]) == 2
    assert rig.client.acks == []


def test_no_acks_while_disconnected(rig):
    rig.client.deliver(LOOM.format(n=1), telemetry(1))
    rig.client.drop()
    rig.flush()
    assert len(rig.output.lines["f_f03"]) == 2
    assert rig.client.acks == []


def test_stop_flushes_and_acks_when_the_output_is_up(rig):
    rig.writer.start()
    mids = [rig.client.deliver(LOOM.format(n=n), telemetry(n)) for n in range(4)]
    rig.consumer.stop_accepting()
    rig.client.deliver(LOOM.format(n=9), telemetry(9))  # after stop: ignored, not acked
    rig.writer.stop()
    assert rig.client.acks == mids
    assert rig.value("unacked") == 0


def test_stop_gives_up_quickly_when_the_output_is_down(make_rig):
    rig = make_rig(retry_initial_s=5, retry_max_s=5)
    rig.consumer.start()
    rig.client.connect()
    rig.output.fail_next(10**9)
    rig.writer.start()
    for n in range(3):
        rig.client.deliver(LOOM.format(n=n), telemetry(n))
    wait_for(lambda: rig.value("write_retries_total") >= 1)
    started = time.monotonic()
    rig.consumer.stop_accepting()
    rig.writer.stop()
    assert time.monotonic() - started < 2
    assert rig.client.acks == []
    assert rig.value("unacked") == 0  # handed back to the broker, not pending here


def test_retry_after_is_honoured(make_rig):
    rig = make_rig()
    rig.consumer.start()
    rig.client.connect()
    calls = []

    def write(db, body):
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise WriteError("busy", True, retry_after=0.2)

    rig.output.write = write
    rig.client.deliver(LOOM.format(n=1), telemetry(1))
    rig.flush()
    assert calls[1] - calls[0] >= 0.19


def test_decoder_crash_is_dead_lettered_not_fatal(rig, monkeypatch):
    def boom(*_args, **_kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr("ingest.writer.decode_message", boom)
    rig.client.deliver(LOOM.format(n=1), telemetry(1))
    rig.flush()
    assert rig.client.acks == [1]
    assert rig.value("messages_rejected_total", reason="ingest_error") == 1


def test_broker_dropped_gauge_from_sys_topic(rig):
    rig.client.deliver("$SYS/broker/publish/messages/dropped", b"17", qos=0)
    assert rig.value("broker_dropped_messages") == 17
    assert rig.consumer.queue.empty()


def test_internal_measurement_is_written(rig):
    rig.client.deliver(LOOM.format(n=1), telemetry(1))
    rig.flush()
    rig.writer.write_internal()
    (line,) = rig.output.lines[contract.INTERNAL_DATABASE]
    assert line.startswith("internal_ingest,worker=millwatch-ingest-0 ")
    assert "acked_total=1.0" in line
    assert "messages_received_telemetry_total=1.0" in line


def test_writer_thread_runs_until_the_end_marker(rig):
    rig.writer.start()
    rig.client.deliver(LOOM.format(n=1), telemetry(1))
    wait_for(lambda: rig.client.acks == [1])
    rig.consumer.stop_accepting()
    rig.writer.stop()
    assert not any(t.name == "ingest-writer" for t in threading.enumerate())


def test_a_crashed_writer_reports_failure(rig, monkeypatch):
    def boom():
        raise RuntimeError("bug in collect")

    monkeypatch.setattr(rig.writer, "collect", boom)
    rig.writer.start()
    wait_for(lambda: rig.writer.failed is not None)
    assert "bug in collect" in str(rig.writer.failed)


def test_unreachable_broker_is_logged_once_per_outage(make_rig, caplog):
    rig = make_rig()
    rig.consumer.start()
    for _ in range(3):
        rig.client.on_connect_fail(rig.client, None)
    rig.client.connect()
    rig.client.on_connect_fail(rig.client, None)
    assert caplog.text.count("event=mqtt_unreachable") == 2


def test_refused_subscription_keeps_ingest_not_ready(rig, caplog):
    rig.client.drop()
    refused = [ReasonCode(PacketTypes.SUBACK, "Not authorized")]
    rig.client.on_subscribe(rig.client, None, 1, refused, None)
    assert not rig.consumer.ready.is_set()
    assert "event=mqtt_subscribe_refused" in caplog.text


# -- InfluxDB refusing part of a batch ----------------------------------------


def refuse_lines(output, marker: str, partial: bool = False) -> list[tuple[str, bytes]]:
    """Make ``output`` refuse (400) any body with a line containing ``marker``.

    ``partial=False`` is InfluxDB 2.x (nothing of the request is stored);
    ``partial=True`` is 1.x (the other lines are stored, then the 400). Returns the
    list of ``(db, body)`` written, refused or not.
    """
    bodies: list[tuple[str, bytes]] = []
    store = output.write

    def write(db, body):
        bodies.append((db, body))
        lines = body.decode().split("\n")
        bad = [line for line in lines if marker in line]
        if not bad:
            store(db, body)
            return
        if partial and len(bad) < len(lines):
            store(db, "\n".join(line for line in lines if marker not in line).encode())
        raise WriteError(f"HTTP 400 for {db!r}: 'partial write: field type conflict'", False)

    output.write = write
    return bodies


def seqs(lines) -> list[int]:
    return sorted(int(line.split("seq=")[1].split("i")[0]) for line in lines)


def test_a_refused_batch_is_written_message_by_message_and_only_the_bad_one_rejected(rig):
    bodies = refuse_lines(rig.output, "machine=l0666")
    sent = [(LOOM.format(n=n), telemetry(n)) for n in (1, 2)]
    sent += [(LOOM.format(n=666), telemetry(3)), (LOOM.format(n=4), telemetry(4))]
    mids = [rig.client.deliver(topic, payload) for topic, payload in sent]
    rig.flush()
    assert rig.client.acks == mids
    assert seqs(rig.output.lines["f_f03"]) == [1, 1, 2, 2, 4, 4]  # each valid line once
    data = [body for db, body in bodies if db == "f_f03"]
    assert len(data) == 1 + 4  # the batch, then one request per message
    assert rig.value("lines_written_total", measurement="loom") == 6
    assert rig.value("messages_rejected_total", reason="influx_rejected") == 1
    assert rig.value("write_errors_total") == 2  # the batch and the bad message
    assert rig.value("unacked") == 0
    ((topic, letter, qos),) = rig.client.published
    assert (topic, qos) == (contract.deadletter_topic("influx_rejected"), 1)
    letter = orjson.loads(letter)
    assert letter["topic"] == LOOM.format(n=666)
    assert "field type conflict" in letter["detail"]
    (row,) = rig.output.lines[contract.INTERNAL_DATABASE]
    assert row.startswith("dead_letter,factory=f03,reason=influx_rejected ")


def test_a_partial_write_counts_each_line_once(rig):
    refuse_lines(rig.output, "machine=l0666", partial=True)  # InfluxDB 1.x
    mids = [rig.client.deliver(LOOM.format(n=n), telemetry(n)) for n in (1, 666, 2)]
    rig.flush()
    assert rig.client.acks == mids
    # 1.x stored the valid lines with the refused request; the rewrite is idempotent there.
    assert seqs(rig.output.lines["f_f03"]) == [1, 1, 1, 1, 2, 2, 2, 2]
    assert rig.value("lines_written_total", measurement="loom") == 4
    assert rig.value("messages_rejected_total", reason="influx_rejected") == 1


def test_a_refused_single_message_is_rejected_without_a_second_request(rig):
    bodies = refuse_lines(rig.output, "machine=l0666")
    rig.client.deliver(LOOM.format(n=666), telemetry(1))
    rig.flush()
    assert [db for db, _ in bodies] == ["f_f03", contract.INTERNAL_DATABASE]
    assert rig.client.acks == [1]
    assert rig.value("messages_rejected_total", reason="influx_rejected") == 1
    assert rig.value("write_errors_total") == 1


def test_retryable_failures_during_the_fallback_are_retried_not_rejected(rig):
    refuse_lines(rig.output, "machine=l0666")
    refusing = rig.output.write
    calls = []

    def write(db, body):
        calls.append(body)
        if len(calls) == 3:  # the second message of the fallback: InfluxDB goes away
            raise WriteError("connection refused", True)
        refusing(db, body)

    rig.output.write = write
    mids = [rig.client.deliver(LOOM.format(n=n), telemetry(n)) for n in (1, 2, 666)]
    rig.flush()
    assert rig.client.acks == mids
    assert seqs(rig.output.lines["f_f03"]) == [1, 1, 2, 2]
    assert rig.value("write_retries_total") == 1
    assert rig.value("messages_rejected_total", reason="influx_rejected") == 1
    assert rig.value("lines_written_total", measurement="loom") == 4


def test_refused_internal_lines_are_rejected_apart_from_the_factory_data(rig):
    refuse_lines(rig.output, "internal_gateway")
    gateway = contract.GatewayAddress("c1", "f03", "gw1")
    metrics_topic = contract.gateway_topic(gateway, "metrics")
    mids = [rig.client.deliver(LOOM.format(n=1), telemetry(1))]
    mids.append(rig.client.deliver(metrics_topic, contract.encode_metrics({"sent": 1})))
    rig.flush()
    assert rig.client.acks == mids
    assert seqs(rig.output.lines["f_f03"]) == [1, 1]
    (row,) = rig.output.lines[contract.INTERNAL_DATABASE]
    assert row.startswith("dead_letter,factory=f03,reason=influx_rejected ")


# -- dead letters stored in InfluxDB ------------------------------------------


def fields_of(row: str) -> dict[str, str]:
    """The string fields of a dead_letter row, unescaped as InfluxDB does."""
    head, rest = row.split(" ", 1)
    body, ts = rest.rsplit(" ", 1)
    out, key, i = {}, "", 0
    while i < len(body):
        eq = body.index("=", i)
        key, i, value = body[i:eq], eq + 2, []
        while body[i] != '"':
            if body[i] == "\\" and body[i + 1] in '"\\':
                i += 1
            value.append(body[i])
            i += 1
        out[key] = "".join(value)
        i += 2  # closing quote and comma
    return out | {"_head": head, "_ts": ts}


def test_rejected_messages_are_stored_as_dead_letter_rows(rig):
    before = time.time_ns()
    rig.client.deliver(LOOM.format(n=2), b"{not json")
    rig.client.deliver("mw/v1/c1/F03/weave1/l0001/telemetry", telemetry(4))
    unknown_type = telemetry(3, type="loom_warp_drive")
    rig.client.deliver(LOOM.format(n=3), unknown_type)
    after = time.time_ns()
    rig.flush()
    rows = [fields_of(row) for row in rig.output.lines[contract.INTERNAL_DATABASE]]
    assert [row["_head"] for row in rows] == [
        "dead_letter,factory=f03,reason=malformed_json",
        "dead_letter,factory=unknown,reason=bad_topic",
        "dead_letter,factory=f03,reason=unknown_machine_type",
    ]
    assert rows[0]["topic"] == LOOM.format(n=2)
    assert rows[0]["payload"] == "{not json"
    assert rows[1]["detail"].startswith("'mw/v1/c1/F03/weave1/l0001/telemetry'")
    assert rows[2]["payload"] == unknown_type.decode()
    stamps = [int(row["_ts"]) for row in rows]
    assert before <= stamps[0] < stamps[1] < stamps[2] <= after + 2
    assert rig.client.acks == [1, 2, 3]
    snap = rig.metrics.snapshot()
    assert snap["messages_rejected_total"] == 3
    assert snap["lines_written_total"] == 0  # dead letters are not data points


def test_a_reject_is_acked_only_after_its_dead_letter_row_is_stored(rig):
    store, attempts = rig.output.write, []

    def write(db, body):
        attempts.append(db)
        if db == contract.INTERNAL_DATABASE and len(attempts) < 4:
            raise WriteError("InfluxDB restarting", True)
        store(db, body)

    rig.output.write = write
    rig.client.deliver(LOOM.format(n=1), telemetry(1))
    rig.client.deliver(LOOM.format(n=2), b"[]")
    batch, _ = rig.writer.collect()
    rig.writer.deliver(batch)
    assert attempts == ["f_f03", *[contract.INTERNAL_DATABASE] * 3]
    assert rig.client.acks == [1, 2]
    assert len(rig.output.lines[contract.INTERNAL_DATABASE]) == 1
    assert rig.value("messages_rejected_total", reason="schema") == 1
    assert len(rig.client.published) == 1


def test_rejects_are_not_counted_or_acked_when_shutdown_gives_up(make_rig):
    rig = make_rig(retry_initial_s=5, retry_max_s=5)
    rig.consumer.start()
    rig.client.connect()
    rig.output.fail_next(10**9)
    rig.writer.start()
    rig.client.deliver(LOOM.format(n=1), b"{not json")
    wait_for(lambda: rig.value("write_retries_total") >= 1)
    rig.consumer.stop_accepting()
    rig.writer.stop()
    assert rig.client.acks == []
    assert rig.client.published == []  # the redelivery will reject it: count it then
    assert rig.metrics.snapshot()["messages_rejected_total"] == 0


def test_a_refused_dead_letter_row_is_logged_and_the_reject_still_acked(rig, caplog):
    refuse_lines(rig.output, "dead_letter")
    rig.client.deliver(LOOM.format(n=1), b"{not json")
    rig.flush()
    assert rig.client.acks == [1]
    assert rig.value("messages_rejected_total", reason="malformed_json") == 1
    assert "event=dead_letter_refused" in caplog.text
