"""A full outbox disk: flushes wait in memory, in order, and nothing reuses a seq.

SQLite's own "database or disk is full" (SQLITE_FULL) is produced with
``PRAGMA max_page_count``: the same error path a full filesystem takes, without a
mount. The fault matrix (``millwatch chaos``, row ``disk_full``) fills a real tmpfs.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway import outbox as outbox_module
from gateway.agent import Agent
from gateway.errors import OutboxStorageError
from gateway.holding import HeldFlush, HoldQueue
from gateway.metrics import GatewayMetrics
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from gateway.settings import GatewaySettings
from tests.unit.gateway.conftest import machine_seq

T0 = 1_767_168_000_000


def fill_disk(box: Outbox, full: bool) -> None:
    """Let the database take no new page (free pages filled first), or undo that.

    A flush then fails once it needs a new page: the tests use flushes of many
    machines, bigger than a page. Uses the outbox's own connection (the page limit is
    per connection) under its lock.
    """
    with box._lock:
        conn = box._conn
        if not full:
            conn.execute("PRAGMA max_page_count=1073741823")
            conn.execute("DROP TABLE IF EXISTS ballast")
            return
        conn.execute("CREATE TABLE ballast (b BLOB)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={pages}")
        with contextlib.suppress(sqlite3.OperationalError):
            while True:  # until "database or disk is full"
                conn.execute("INSERT INTO ballast VALUES (zeroblob(64))")


def outbox_seqs(box: Outbox, channels: tuple[str, ...] = ("telemetry",)) -> dict[str, list[int]]:
    """Seqs per machine of the rows on ``channels``, in outbox (id) order."""
    seqs: dict[str, list[int]] = {}
    for row in box.read(0, 100_000):
        machine, channel, seq = machine_seq(row.topic, row.payload)
        if channel in channels:
            seqs.setdefault(machine, []).append(seq)
    return seqs


def snapshot(agent: Agent) -> dict[str, float]:
    return agent.metrics.snapshot()


@pytest.fixture
def make_agent(make_settings: Callable[..., GatewaySettings]) -> Iterator[Callable[..., Agent]]:
    boxes: list[Outbox] = []

    def make(inputs: list[Any], **settings: Any) -> Agent:
        s = make_settings(**settings)
        # No free-space reserve: these tests fill the database, not the filesystem.
        boxes.append(Outbox(s.outbox_path, s.outbox_max_messages, s.outbox_full_policy, 0))
        agent = Agent(s, inputs, boxes[-1], GatewayMetrics())
        agent.writer.retry_s = 0.0  # retry on every flush: the tests step time themselves
        return agent

    yield make
    for box in boxes:
        box.close()


def test_a_failed_append_stores_nothing_and_the_same_call_succeeds_later(
    make_settings: Callable[..., GatewaySettings],
) -> None:
    with Outbox(make_settings().outbox_path, min_free_bytes=0) as box:
        box.append([("t/a", b"x" * 3000)], {"m": 1})
        fill_disk(box, True)
        rows = [("t/a", b"y" * 3000) for _ in range(4)]
        with pytest.raises(OutboxStorageError, match="disk is full"):
            box.append(rows, {"m": 5})
        assert (box.depth(), box.next_seqs()) == (1, {"m": 1})
        fill_disk(box, False)
        box.append(rows, {"m": 5})
        assert (box.depth(), box.next_seqs()) == (5, {"m": 5})


def test_appends_stop_at_the_reserve_while_deletes_go_on(
    make_settings: Callable[..., GatewaySettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The filesystem (a stand-in reporting 1 MiB free) stays full all along."""
    disk = shutil.disk_usage(".")._replace(free=1 << 20)
    monkeypatch.setattr(outbox_module.shutil, "disk_usage", lambda path: disk)
    with Outbox(make_settings().outbox_path, min_free_bytes=0) as box:
        box.append([("t/a", bytes(3000)) for _ in range(8)], {"m": 8})
        box.min_free_bytes = 1 << 20
        with pytest.raises(OutboxStorageError, match="disk nearly full"):
            box.append([("t/a", b"y")], {"m": 9})
        assert box.delete(r.id for r in box.read(0, 8)) == 8  # deletes run in the reserve
        box.append([("t/a", bytes(3000))], {"m": 9})  # fits in the pages they freed
        assert (box.depth(), box.next_seqs()) == (1, {"m": 9})
        with pytest.raises(OutboxStorageError, match="disk nearly full"):
            box.append([("t/a", bytes(100_000))], {"m": 10})  # more than the free pages


def test_flushes_wait_in_memory_and_are_stored_in_order_when_the_disk_frees(
    make_agent: Callable[..., Agent], make_input: Any
) -> None:
    agent = make_agent([make_input(n=40)], samples_per_message=1)
    agent.tick(T0)
    fill_disk(agent.outbox, True)
    for k in range(1, 40):
        agent.tick(T0 + 1000 * k)
    held = snapshot(agent)
    assert held["outbox_storage_failing"] == 1
    assert held["outbox_held"] > 0 and held["outbox_storage_errors_total"] > 0
    stored_while_full = agent.outbox.depth()
    fill_disk(agent.outbox, False)
    agent.tick(T0 + 40_000)
    after = snapshot(agent)
    assert (after["outbox_storage_failing"], after["outbox_held"]) == (0, 0)
    assert after["outbox_dropped_total"] == 0
    assert agent.outbox.depth() > stored_while_full
    assert agent.outbox.depth() == after["messages_produced_total"]
    # Every seq of every machine once, in order: nothing lost, nothing reused.
    stored = outbox_seqs(agent.outbox, ("telemetry", "event"))
    assert stored == {m: list(range(len(seqs))) for m, seqs in stored.items()}
    for produced in agent.produced().values():
        assert produced.samples == 41 and produced.rejected == 0
        assert produced.messages == produced.last_seq - produced.first_seq + 1


def test_past_the_memory_bound_the_oldest_held_flushes_become_seq_gaps(
    make_agent: Callable[..., Agent], make_input: Any
) -> None:
    agent = make_agent([make_input(n=40)], samples_per_message=1, outbox_hold_max_bytes=1)
    agent.tick(T0)
    fill_disk(agent.outbox, True)
    for k in range(1, 6):  # the bound holds one flush: each new one pushes out the last
        agent.tick(T0 + 1000 * k)
    fill_disk(agent.outbox, False)
    agent.tick(T0 + 6000)
    given_up = snapshot(agent)["outbox_dropped_storage_total"]
    books = agent.produced()
    assert given_up > 0 and sum(p.rejected for p in books.values()) == given_up
    produced = next(p for a, p in books.items() if a.machine == "l0000")
    assert produced.messages + produced.rejected == produced.last_seq + 1
    seqs = outbox_seqs(agent.outbox)["l0000"]
    assert seqs[0] == 0 and seqs[-1] == produced.last_seq  # a gap between, no reuse
    assert len(seqs) < seqs[-1] + 1
    assert agent.outbox.next_seqs()["c1/f01/weave1/l0000"] == produced.last_seq + 1


def test_given_up_seqs_are_persisted_even_for_a_machine_in_no_later_flush(
    make_agent: Callable[..., Agent], make_input: Any
) -> None:
    silent_after_two = make_input(n=2, hall="spin1", fail_on=tuple(range(2, 100)))
    agent = make_agent(
        [make_input(n=40), silent_after_two], samples_per_message=1, outbox_hold_max_bytes=1
    )
    agent.tick(T0)
    fill_disk(agent.outbox, True)
    for k in range(1, 6):  # spin1's one flush in here is given up for memory
        agent.tick(T0 + 1000 * k)
    fill_disk(agent.outbox, False)
    agent.tick(T0 + 6000)
    spin = next(p for a, p in agent.produced().items() if a.hall == "spin1")
    assert spin.rejected > 0  # the flush of tick 1 was given up
    assert agent.outbox.next_seqs()["c1/f01/spin1/l0000"] == spin.last_seq + 1


def test_flushes_still_held_at_stop_are_lost_as_a_seq_gap(
    make_agent: Callable[..., Agent], make_input: Any
) -> None:
    agent = make_agent([make_input(n=40)], samples_per_message=1)
    agent.tick(T0)
    fill_disk(agent.outbox, True)
    for k in range(1, 4):
        agent.tick(T0 + 1000 * k)
    held = snapshot(agent)["outbox_held"]
    assert held > 0
    agent.close()
    books = {a.machine: p for a, p in agent.produced().items()}
    assert snapshot(agent)["outbox_dropped_storage_total"] == held
    assert sum(p.rejected for p in books.values()) == held
    # The next process continues after the lost seqs instead of handing them out again.
    assert agent.outbox.next_seqs()["c1/f01/weave1/l0000"] == books["l0000"].last_seq + 1


def test_fast_forward_waits_for_the_disk_instead_of_holding(
    make_agent: Callable[..., Agent], make_input: Any
) -> None:
    agent = make_agent([make_input(n=40)], max_ticks=30, samples_per_message=5)
    fill_disk(agent.outbox, True)
    thread = threading.Thread(target=agent.run, args=(threading.Event(),))
    thread.start()
    deadline = time.monotonic() + 10
    while not snapshot(agent)["outbox_storage_failing"] and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    ticks_while_full = agent.ticks
    fill_disk(agent.outbox, False)
    thread.join(10)
    assert ticks_while_full < 30  # it stopped ticking while the disk refused
    assert agent.ticks == 30
    assert snapshot(agent)["outbox_dropped_total"] == 0
    assert {len(s) for s in outbox_seqs(agent.outbox).values()} == {6}


def test_hold_queue_keeps_order_and_never_gives_up_the_newest_flush() -> None:
    queue = HoldQueue(max_bytes=400)  # two of these flushes (191 bytes each)
    flushes = [HeldFlush([("t", bytes(40))], {"m": i}) for i in range(4)]
    given_up = [f for flush in flushes for f in queue.push(flush)]
    assert [f.seqs["m"] for f in given_up] == [0, 1]
    assert [f.seqs["m"] for f in queue] == [2, 3]
    assert queue.push(HeldFlush([("t", bytes(500))], {"m": 9})) == [flushes[2], flushes[3]]
    assert (len(queue), queue.bytes) == (1, 651)


def test_a_refused_delete_is_retried_and_the_rows_are_not_sent_twice(
    make_settings: Callable[..., GatewaySettings],
    client_factory: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box = Outbox(make_settings().outbox_path)
    box.append([("mw/v1/c1/f01/weave1/l0000/telemetry", b"%d" % i) for i in range(4)], {})
    pub = Publisher(make_settings(), box, GatewayMetrics(), client_factory)
    pub.client.connect()
    pub.pump_once()
    for message in pub.client.data():
        pub.client.ack(message.mid)
    real_delete = box.delete

    def refuse(ids: Any) -> int:
        raise OutboxStorageError("disk full")

    monkeypatch.setattr(box, "delete", refuse)
    pub.pump_once()
    assert box.depth() == 4  # nothing deleted, and nothing re-sent meanwhile
    assert len(pub.client.data()) == 4
    monkeypatch.setattr(box, "delete", real_delete)
    pub.pump_once()
    assert box.depth() == 0
    assert pub.metrics.snapshot()["publish_errors_outbox_delete_failed_total"] == 1
    box.close()
