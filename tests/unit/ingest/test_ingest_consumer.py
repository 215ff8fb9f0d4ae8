"""Consumer bookkeeping: unsettled deliveries, reconnects, the bounded local queue."""

import logging

import orjson

from millwatch import contract

LOOM = "mw/v1/c1/f03/weave1/l{n:04d}/telemetry"


def telemetry(seq: int) -> bytes:
    ts = contract.now_ms()
    doc = {"v": 1, "seq": seq, "type": "loom_airjet", "ts": [ts], "m": {"speed_rpm": [800.0]}}
    return orjson.dumps(doc)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def queued(consumer) -> list:
    items = []
    while not consumer.queue.empty():
        items.append(consumer.queue.get_nowait())
    return items


def test_settling_out_of_order_keeps_ack_lag_and_unacked_exact(make_rig):
    rig = make_rig()
    clock = Clock()
    rig.consumer._clock = clock
    rig.consumer.start()
    rig.client.connect()
    for n in range(3):
        rig.client.deliver(LOOM.format(n=n), telemetry(n))
        clock.now += 10
    first, second, third = queued(rig.consumer)
    rig.consumer.settle([second])  # e.g. the first is still being retried
    assert rig.value("unacked") == 2
    assert rig.value("ack_lag_seconds") == 30  # the first arrived at 100
    rig.consumer.forget([first])
    assert rig.value("ack_lag_seconds") == 10  # the third arrived at 120
    rig.consumer.settle([third])
    assert rig.value("unacked") == 0
    assert rig.value("ack_lag_seconds") == 0
    assert rig.client.acks == [2, 3]


def test_deliveries_carry_a_strictly_increasing_wall_clock_receive_time(rig, monkeypatch):
    monkeypatch.setattr("time.time_ns", lambda: 5)
    for n in range(3):
        rig.client.deliver(LOOM.format(n=n), telemetry(n))
    stamps = [delivery.received_ns for delivery in queued(rig.consumer)]
    assert stamps[1] == stamps[0] + 1 and stamps[2] == stamps[1] + 1


def reconnect_with_redeliveries(rig, rounds: int, window: int, session_present: bool) -> None:
    """A broker restarting ``rounds`` times, resending ``window`` unacked messages each time."""
    for _ in range(rounds):
        rig.client.drop()
        rig.client.connect(session_present=session_present)
        for n in range(window):
            rig.client.deliver(LOOM.format(n=n), telemetry(n))


def test_reconnects_during_an_outage_keep_the_local_queue_bounded(make_rig, caplog):
    caplog.set_level(logging.INFO, logger="ingest.consumer")
    rig = make_rig(receive_maximum=10)
    rig.consumer.start()
    rig.client.connect(session_present=False)
    for n in range(10):
        rig.client.deliver(LOOM.format(n=n), telemetry(n))
    reconnect_with_redeliveries(rig, rounds=4, window=10, session_present=True)
    assert rig.consumer.queue.qsize() == 20  # was 50: five copies of the same window
    assert rig.value("unacked") == 20
    assert rig.value("redeliveries_purged_total") == 30
    assert caplog.text.count("event=redeliveries_purged") == 3
    generations = {delivery.generation for delivery in queued(rig.consumer)}
    assert generations == {4, 5}  # the oldest went first; the live one is never purged


def test_purged_deliveries_come_back_and_are_acked(make_rig):
    rig = make_rig(receive_maximum=10)
    rig.consumer.start()
    rig.client.connect(session_present=False)
    for n in range(10):
        rig.client.deliver(LOOM.format(n=n), telemetry(n))
    reconnect_with_redeliveries(rig, rounds=3, window=10, session_present=True)
    live = list(range(31, 41))  # mids of the last connection's redeliveries
    rig.flush()
    assert rig.client.acks == live
    assert rig.value("unacked") == 0
    assert {line.split(" seq=")[1].split("i")[0] for line in rig.output.lines["f_f03"]} == {
        str(n) for n in range(10)
    }


def test_deliveries_of_a_lost_session_are_never_purged(make_rig):
    # The broker does not hold them any more: the local copy is the only one.
    rig = make_rig(receive_maximum=10)
    rig.consumer.start()
    rig.client.connect(session_present=False)
    for n in range(10):
        rig.client.deliver(LOOM.format(n=n), telemetry(n))
    reconnect_with_redeliveries(rig, rounds=2, window=10, session_present=False)
    assert rig.consumer.queue.qsize() == 30
    assert rig.value("redeliveries_purged_total") == 0


def test_a_purge_spares_deliveries_from_before_a_session_loss(make_rig):
    rig = make_rig(receive_maximum=10)
    rig.consumer.start()
    rig.client.connect(session_present=False)
    for n in range(10):
        rig.client.deliver(LOOM.format(n=n), telemetry(n))
    reconnect_with_redeliveries(rig, rounds=1, window=10, session_present=False)
    reconnect_with_redeliveries(rig, rounds=2, window=10, session_present=True)
    # Generations 2 and 3 went (the broker resends them), generation 1 stays.
    assert rig.value("redeliveries_purged_total") == 20
    assert sorted({d.generation for d in queued(rig.consumer)}) == [1, 4]
