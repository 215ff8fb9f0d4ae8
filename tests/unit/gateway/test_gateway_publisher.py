from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import orjson
import paho.mqtt.client as mqtt
import pytest

from gateway import publisher as publisher_module
from gateway.metrics import GatewayMetrics
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from gateway.settings import GatewaySettings

STATUS = "mw/v1/c1/f01/_gateway/gw1/status"
QUOTA_EXCEEDED, NO_MATCHING_SUBSCRIBERS, NOT_AUTHORIZED = 0x97, 0x10, 0x87


@pytest.fixture
def outbox(make_settings: Callable[..., GatewaySettings]) -> Iterator[Outbox]:
    box = Outbox(make_settings().outbox_path)
    box.append([("mw/v1/c1/f01/weave1/l0000/telemetry", str(i).encode()) for i in range(10)], {})
    yield box
    box.close()


@pytest.fixture
def pub(
    make_settings: Callable[..., GatewaySettings],
    outbox: Outbox,
    client_factory: Callable[[str], object],
) -> Publisher:
    return Publisher(make_settings(max_unacked=3), outbox, GatewayMetrics(), client_factory)


def payloads(pub: Publisher) -> list[bytes]:
    return [s.payload for s in pub.client.data()]  # type: ignore[attr-defined]


def errors(pub: Publisher, label: str) -> float:
    return pub.metrics.snapshot().get(f"publish_errors_{label.lower()}_total", 0.0)


def test_client_setup_follows_the_contract(pub: Publisher) -> None:
    fake = pub.client
    assert fake.client_id == "gw-c1-f01-gw1"
    topic, payload, qos, retain = fake.will
    assert (topic, qos, retain) == (STATUS, 1, True)
    assert orjson.loads(payload)["online"] is False
    assert fake.reconnect_delay == (0.2, 10)
    assert fake.max_inflight == 0  # no paho limit: the pump bounds what is in flight


def test_nothing_is_handed_before_the_connection(pub: Publisher) -> None:
    pub.pump_once()
    assert pub.client.sent == []
    pub.client.connect()
    first = pub.client.sent[0]
    assert (first.topic, first.qos, first.retain) == (STATUS, 1, True)
    assert orjson.loads(first.payload)["online"] is True
    assert pub.connected
    assert pub.metrics.snapshot()["connected"] == 1


def test_acks_delete_rows_and_in_flight_never_exceeds_max_unacked(pub: Publisher) -> None:
    fake, box = pub.client, pub.outbox
    fake.connect()
    pub.pump_once()
    assert payloads(pub) == [b"0", b"1", b"2"]
    pub.pump_once()  # no ack, no room
    assert len(fake.data()) == 3
    assert pub.in_flight == 3
    for _ in range(5):
        fake.ack(fake.data()[len(fake.data()) - 3].mid)
        assert box.depth() == 10 - (len(fake.data()) - 3)  # deleted only when the pump applies it
        pub.pump_once()
        assert pub.in_flight <= 3
        assert len(fake.unacked) <= 3
    assert payloads(pub) == [str(i).encode() for i in range(8)]
    assert box.depth() == 5
    assert [r.payload for r in box.read(0, 10)] == [b"5", b"6", b"7", b"8", b"9"]
    assert pub.acked_total == 5
    assert pub.metrics.snapshot()["messages_acked_total"] == 5


def test_a_refused_puback_keeps_the_row_and_retries_it(
    pub: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher_module, "RETRY_DELAY_S", 0.0)
    fake, box = pub.client, pub.outbox
    fake.connect()
    pub.pump_once()
    refused = fake.data()[0]
    fake.ack(refused.mid, QUOTA_EXCEEDED)
    fake.ack(fake.data()[1].mid)
    pub.pump_once()
    assert errors(pub, "puback_quota_exceeded") == 1
    assert box.depth() == 9  # only the acked one is gone
    again = fake.data()[3]
    assert again.payload == refused.payload  # re-handed first, before new rows
    assert payloads(pub)[4:] == [b"3"]
    fake.ack(again.mid)
    pub.pump_once()
    assert b"0" not in [r.payload for r in box.read(0, 10)]


def test_no_matching_subscribers_keeps_the_row_until_someone_subscribes(
    pub: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mosquitto 2.0 answers 0x10 and discards the message when no ingest has subscribed."""
    monkeypatch.setattr(publisher_module, "RETRY_DELAY_S", 0.0)
    fake, box = pub.client, pub.outbox
    fake.connect()
    pub.pump_once()
    unheard = fake.data()[0]
    fake.ack(unheard.mid, NO_MATCHING_SUBSCRIBERS)
    pub.pump_once()
    assert errors(pub, "puback_no_matching_subscribers") == 1
    assert unheard.payload in [r.payload for r in box.read(0, 10)]
    again = [m for m in fake.data() if m.payload == unheard.payload][-1]
    assert again.mid != unheard.mid  # handed to the broker again
    fake.ack(again.mid)
    pub.pump_once()
    assert unheard.payload not in [r.payload for r in box.read(0, 10)]


def test_queue_size_is_counted_and_the_same_row_comes_next(pub: Publisher) -> None:
    fake = pub.client
    fake.connect()
    fake.rcs.extend([mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_QUEUE_SIZE])
    pub.pump_once()
    assert payloads(pub) == [b"0"]  # paho stored nothing for the refused one
    assert errors(pub, "MQTT_ERR_QUEUE_SIZE") == 1
    assert pub.in_flight == 1
    pub.pump_once()
    assert payloads(pub) == [b"0", b"1", b"2"]


def test_no_conn_is_counted_but_paho_keeps_the_message(pub: Publisher) -> None:
    fake = pub.client
    fake.connect()
    fake.rcs.append(mqtt.MQTT_ERR_NO_CONN)
    pub.pump_once()
    assert errors(pub, "MQTT_ERR_NO_CONN") == 1
    assert pub.in_flight == 3  # in paho's session, re-sent by paho: not handed again
    fake.ack(fake.data()[0].mid)
    pub.pump_once()
    assert payloads(pub) == [b"0", b"1", b"2", b"3"]


def test_reconnect_leaves_resends_to_paho_and_keeps_order(pub: Publisher) -> None:
    fake, box = pub.client, pub.outbox
    fake.connect()
    pub.pump_once()
    fake.ack(fake.data()[0].mid)
    fake.drop()
    pub.pump_once()
    assert not pub.connected
    fake.connect()
    pub.pump_once()
    # Rows 1 and 2 are still in paho's session; paho re-sends them itself, so the
    # pump hands nothing until they are acked (new rows would overtake them).
    assert payloads(pub) == [b"0", b"1", b"2"]
    fake.ack(fake.data()[1].mid)
    pub.pump_once()
    assert payloads(pub) == [b"0", b"1", b"2"]
    fake.ack(fake.data()[2].mid)
    pub.pump_once()
    assert payloads(pub) == [str(i).encode() for i in range(6)]
    assert box.depth() == 7


def test_a_new_publisher_replays_every_unacked_row_in_order(
    pub: Publisher,
    make_settings: Callable[..., GatewaySettings],
    client_factory: Callable[[str], object],
) -> None:
    pub.client.connect()
    pub.pump_once()
    pub.client.ack(pub.client.data()[1].mid)  # acked out of order
    pub.pump_once()
    # The process dies here; the next one starts from the first row of the outbox.
    second = Publisher(make_settings(max_unacked=20), pub.outbox, GatewayMetrics(), client_factory)
    second.client.connect()
    second.pump_once()
    assert payloads(second) == [b"0", *(str(i).encode() for i in range(2, 10))]


def test_a_message_paho_cannot_send_is_dropped_and_counted(pub: Publisher) -> None:
    pub.client.raise_on = lambda topic: "weave1" in topic
    pub.client.connect()
    for _ in range(4):  # up to max_unacked rows per round
        pub.pump_once()
    assert pub.outbox.depth() == 0
    assert errors(pub, "invalid") == 10
    assert pub.metrics.snapshot()["outbox_dropped_invalid_total"] == 10


def test_metrics_go_out_at_qos0_only_when_connected(pub: Publisher) -> None:
    assert not pub.publish_metrics({"samples_total": 3.0})
    pub.client.connect()
    assert pub.publish_metrics({"samples_total": 3.0})
    sent = pub.client.sent[-1]
    assert (sent.topic, sent.qos) == ("mw/v1/c1/f01/_gateway/gw1/metrics", 0)
    assert orjson.loads(sent.payload)["counters"] == {"samples_total": 3.0}
    assert pub.outbox.depth() == 10  # not outboxed


def test_threads_drain_the_outbox_when_acks_race_publish(pub: Publisher) -> None:
    pub.client.auto_ack = True  # PUBACK arrives before publish() returns the mid
    pub.start()
    pub.client.connect()
    deadline = time.monotonic() + 10
    while pub.outbox.depth() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pub.outbox.depth() == 0
    assert payloads(pub) == [str(i).encode() for i in range(10)]
    pub.stop(timeout=1)
    last = pub.client.sent[-1]
    assert (last.topic, last.retain, orjson.loads(last.payload)["online"]) == (STATUS, True, False)
    assert pub.client.disconnected
    assert not pub.client.loop_running


def test_stop_waits_for_in_flight_acks_within_the_timeout(pub: Publisher) -> None:
    pub.start()
    pub.client.connect()
    deadline = time.monotonic() + 5
    while pub.in_flight < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    pub.stop(timeout=0.3)  # nobody acks
    assert 0.25 <= time.monotonic() - started < 3
    assert pub.outbox.depth() == 10  # kept for the next process


def test_a_permanent_refusal_drops_the_row_instead_of_retrying_forever(pub: Publisher) -> None:
    fake, box = pub.client, pub.outbox
    fake.connect()
    pub.pump_once()
    first = fake.data()[0]
    fake.ack(first.mid, NOT_AUTHORIZED)
    pub.pump_once()
    assert first.payload not in [r.payload for r in box.read(0, 100)]
    assert pub.metrics.snapshot()["outbox_dropped_refused_total"] == 1
    assert pub.metrics.snapshot()["messages_acked_total"] == 0
    assert [m.payload for m in fake.data()].count(first.payload) == 1  # not handed again
