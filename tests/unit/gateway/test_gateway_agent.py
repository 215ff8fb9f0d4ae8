from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from gateway import agent as agent_module
from gateway.agent import Agent
from gateway.inputs.base import Reading
from gateway.metrics import GatewayMetrics
from gateway.outbox import Outbox
from gateway.settings import GatewaySettings
from millwatch.contract import MachineAddress, decode_records, decode_telemetry, parse_topic

T0 = 1_767_168_000_000


def decoded(box: Outbox) -> list[tuple[str, str, Any]]:
    """(machine, channel, batch) of every outbox row, in id order."""
    out = []
    for row in box.read(0, 100_000):
        topic = parse_topic(row.topic)
        assert topic.address is not None
        if topic.channel == "telemetry":
            batch: Any = decode_telemetry(row.payload)
        else:
            batch = decode_records(row.payload, topic.channel)
        out.append((topic.address.machine, topic.channel, batch))
    return out


@pytest.fixture
def make_agent(make_settings: Callable[..., GatewaySettings]) -> Iterator[Callable[..., Agent]]:
    boxes: list[Outbox] = []

    def make(inputs: list[Any], **settings: Any) -> Agent:
        s = make_settings(**settings)
        boxes.append(Outbox(s.outbox_path, s.outbox_max_messages, s.outbox_full_policy))
        return Agent(s, inputs, boxes[-1], GatewayMetrics())

    yield make
    for box in boxes:
        box.close()


def test_ten_ticks_make_one_message_per_machine_with_ten_samples(
    make_agent: Callable[..., Agent], make_input: Any
) -> None:
    agent = make_agent([make_input(n=3)], samples_per_message=10)
    for k in range(9):
        agent.tick(T0 + 1000 * k)
    assert agent.outbox.depth() == 0  # nothing before the 10th tick
    agent.tick(T0 + 9000)
    msgs = decoded(agent.outbox)
    telemetry = [(m, b) for m, c, b in msgs if c == "telemetry"]
    assert [m for m, _ in telemetry] == ["l0000", "l0001", "l0002"]
    for j, (_, batch) in enumerate(telemetry):
        assert batch.seq == 0
        assert batch.ts_ms.tolist() == [T0 + 1000 * k for k in range(10)]
        # Column j of the stacked (ticks, machines) arrays belongs to machine j.
        assert batch.fields["speed_rpm"].tolist() == [100.0 * k + j for k in range(10)]
        assert batch.fields["picks_total"].tolist() == [float(k) for k in range(10)]
    events = [(m, b) for m, c, b in msgs if c == "event"]
    assert [m for m, _ in events] == ["l0001"]
    assert [r["ts"] for r in events[0][1].records] == [T0, T0 + 3000, T0 + 6000, T0 + 9000]
    assert events[0][1].seq == 1  # after its telemetry: one counter per machine
    assert agent.metrics.snapshot()["samples_total"] == 30
    assert agent.metrics.snapshot()["events_total"] == 4
    assert agent.metrics.snapshot()["messages_produced_total"] == 4


def test_seqs_are_per_machine_strictly_increasing_and_shared_by_channels(
    make_agent: Callable[..., Agent], make_input: Any
) -> None:
    agent = make_agent([make_input(n=3)], samples_per_message=1)
    for k in range(7):
        agent.tick(T0 + 1000 * k)
    per_machine: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for machine, channel, batch in decoded(agent.outbox):
        per_machine[machine].append((batch.seq, channel))
    assert [s for s, _ in per_machine["l0000"]] == list(range(7))
    # l0001 has an event on ticks 0, 3, 6: telemetry and event share its counter.
    assert per_machine["l0001"] == [
        (0, "telemetry"), (1, "event"), (2, "telemetry"), (3, "telemetry"), (4, "telemetry"),
        (5, "event"), (6, "telemetry"), (7, "telemetry"), (8, "telemetry"), (9, "event"),
    ]  # fmt: skip
    produced = {a.machine: p for a, p in agent.produced().items()}
    assert (produced["l0001"].first_seq, produced["l0001"].last_seq) == (0, 9)
    assert (produced["l0001"].messages, produced["l0001"].samples) == (10, 7)
    assert produced["l0001"].events == 3


def test_seqs_continue_after_a_restart(make_agent: Callable[..., Agent], make_input: Any) -> None:
    agent = make_agent([make_input(n=2)])
    for k in range(4):
        agent.tick(T0 + 1000 * k)
    agent.outbox.close()
    again = make_agent([make_input(n=2)])
    again.tick(T0 + 10_000)
    produced = {a.machine: p for a, p in again.produced().items()}
    assert produced["l0000"].first_seq == 4
    assert produced["l0001"].first_seq == 6  # 4 telemetry + events on ticks 0 and 3
    last = decoded(again.outbox)[-3:]
    assert [(m, c, b.seq) for m, c, b in last] == [
        ("l0000", "telemetry", 4),
        ("l0001", "telemetry", 6),
        ("l0001", "event", 7),
    ]


def test_a_failing_gather_is_counted_and_the_other_input_goes_on(
    make_agent: Callable[..., Agent], make_input: Any
) -> None:
    broken = make_input(n=1, hall="weave1", fail_on=(1, 2))
    healthy = make_input(n=1, hall="weave2")
    agent = make_agent([broken, healthy], samples_per_message=4)
    for k in range(4):
        agent.tick(T0 + 1000 * k)  # never raises
    rows = agent.outbox.read(0, 100)
    samples = {
        parse_topic(r.topic).address.hall: len(decode_telemetry(r.payload, now=T0))  # type: ignore[union-attr]
        for r in rows
        if r.topic.endswith("/telemetry")
    }
    assert samples == {"weave1": 2, "weave2": 4}
    assert agent.metrics.snapshot()["input_errors_total"] == 2


def test_a_failing_start_is_retried_not_fatal(
    make_agent: Callable[..., Agent],
    make_input: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(agent_module, "START_RETRY_MIN_S", 0.0)
    flaky = make_input(n=1, start_failures=2)
    agent = make_agent([flaky])
    for k in range(4):
        agent.tick(T0 + 1000 * k)
    assert flaky.started == 1
    assert agent.metrics.snapshot()["input_errors_total"] == 2
    assert agent.outbox.depth() == 2  # ticks 2 and 3, once started
    agent.close()
    assert flaky.stopped == 1


def test_reject_newest_counts_and_leaves_seq_gaps(
    make_agent: Callable[..., Agent], make_input: Any
) -> None:
    agent = make_agent(
        [make_input(n=2)],
        outbox_full_policy="reject_newest",
        outbox_max_messages=5,
        max_unacked=5,
    )
    agent.tick(T0)  # 2 telemetry + 1 event
    agent.tick(T0 + 1000)  # 2 more would make 5: fits
    agent.tick(T0 + 2000)  # refused
    assert agent.outbox.depth() == 5
    assert agent.metrics.snapshot()["outbox_dropped_reject_newest_total"] == 2
    agent.outbox.delete(r.id for r in agent.outbox.read(0, 10))
    agent.tick(T0 + 3000)
    by_machine = {a.machine: p for a, p in agent.produced().items()}
    assert by_machine["l0000"].rejected == 1
    assert (by_machine["l0000"].first_seq, by_machine["l0000"].last_seq) == (0, 3)
    seqs = [b.seq for m, _, b in decoded(agent.outbox) if m == "l0000"]
    assert seqs == [3]  # seq 2 was refused: a visible gap, never reused


def test_fast_forward_runs_max_ticks_and_flushes_the_partial_batch(
    make_agent: Callable[..., Agent], make_input: Any
) -> None:
    agent = make_agent([make_input(n=1)], max_ticks=25, samples_per_message=10, start_ts_ms=T0)
    agent.run(threading.Event())
    assert agent.done.is_set()
    assert agent.ticks == 25
    batches = [b for _, c, b in decoded(agent.outbox) if c == "telemetry"]
    assert [len(b) for b in batches] == [10, 10, 5]
    ts = np.concatenate([b.ts_ms for b in batches])
    assert (ts == T0 + 1000 * np.arange(25)).all()
    assert [b.seq for b in batches] == [0, 1, 2]


def test_fast_forward_waits_for_room_instead_of_dropping(
    make_agent: Callable[..., Agent], make_input: Any
) -> None:
    agent = make_agent([make_input(n=2)], max_ticks=50, outbox_max_messages=8, max_unacked=8)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,))
    thread.start()
    seen = 0
    while thread.is_alive() or agent.outbox.depth():
        rows = agent.outbox.read(0, 100)
        seen += agent.outbox.delete(r.id for r in rows)
        assert agent.outbox.depth() <= 8
    thread.join()
    assert agent.metrics.snapshot()["outbox_dropped_total"] == 0
    assert seen == 50 * 2 + 17  # telemetry + events on every third tick


def test_an_oversize_batch_is_split_with_consecutive_seqs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_module, "MAX_PAYLOAD_BYTES", 400)
    ts = T0 + 1000 * np.arange(40)
    payloads = agent_module._telemetry_payloads(
        "loom_airjet", 7, ts, {"speed_rpm": np.linspace(0, 1, 40)}, True
    )
    batches = [decode_telemetry(p, now=T0) for p in payloads]
    assert len(batches) > 1
    assert all(b.historical for b in batches)
    assert all(len(p) <= 400 for p in payloads)
    assert [b.seq for b in batches] == list(range(7, 7 + len(batches)))
    assert np.concatenate([b.ts_ms for b in batches]).tolist() == ts.tolist()


def test_real_time_ticks_sit_on_the_interval_grid(
    make_agent: Callable[..., Agent], make_input: Any
) -> None:
    agent = make_agent([make_input(n=1)], fast_forward=False, sample_interval_s=0.05, max_ticks=4)
    agent.run(threading.Event())
    ts = [b.ts_ms[0] for _, c, b in decoded(agent.outbox) if c == "telemetry"]
    assert len(ts) == 4
    assert all(t % 50 == 0 for t in ts)
    assert all(b > a for a, b in itertools.pairwise(ts))


class LabellingInput:
    """One loom that reports a fault label on every second tick."""

    def __init__(self) -> None:
        self.machines = [MachineAddress("c1", "f01", "weave1", "l0000")]
        self.calls = 0

    def init(self) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...

    def gather(self, ts_ms: int) -> list[Reading]:
        self.calls += 1
        fields = {"speed_rpm": np.array([800.0])}
        labels = []
        if self.calls % 2 == 0:
            record = {"ts": ts_ms, "fault_id": "F-1", "fault_type": "bearing_wear"}
            labels.append((0, {**record, "phase": "onset", "severity": 0.3}))
        return [Reading("loom_airjet", self.machines, ts_ms, fields, [], labels)]


def test_fault_labels_go_on_their_channel_sharing_the_machines_seq(
    make_agent: Callable[..., Agent],
) -> None:
    agent = make_agent([LabellingInput()], samples_per_message=4, historical=True)
    for k in range(4):
        agent.tick(T0 + 1000 * k)
    msgs = decoded(agent.outbox)
    assert [(c, b.seq) for _, c, b in msgs] == [("telemetry", 0), ("fault_label", 1)]
    assert msgs[0][2].historical
    assert [r["ts"] for r in msgs[1][2].records] == [T0 + 1000, T0 + 3000]
    produced = agent.produced()[agent._inputs[0].input.machines[0]]
    assert (produced.labels, produced.last_seq) == (2, 1)


class TwoSourcesInput:
    """Two readings per tick for the same loom (as a PLC plus an energy meter would give),
    and a reading with a bad value on the tick listed in ``bad_on``."""

    def __init__(self, bad_on: int | None = None) -> None:
        self.loom = [MachineAddress("c1", "f01", "weave1", "l0000")]
        self.both = [*self.loom, MachineAddress("c1", "f01", "weave1", "l0001")]
        self.bad_on, self.calls = bad_on, 0

    def init(self) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...

    def gather(self, ts_ms: int) -> list[Reading]:
        self.calls += 1
        speed: Any = np.array([800.0, 790.0])
        if self.calls == self.bad_on:
            speed = np.array(["n/a", 790.0], dtype=object)
        return [
            Reading("loom_airjet", self.both, ts_ms, {"speed_rpm": speed}),
            Reading("loom_airjet", self.loom, ts_ms, {"energy_kwh_total": np.array([5.0])}),
        ]


def test_a_machine_in_two_groups_never_reuses_a_seq(make_agent: Callable[..., Agent]) -> None:
    agent = make_agent([TwoSourcesInput()], samples_per_message=2)
    for k in range(4):
        agent.tick(T0 + 1000 * k)
    seqs = [(m, b.seq) for m, _, b in decoded(agent.outbox)]
    l0 = [seq for machine, seq in seqs if machine == "l0000"]
    assert sorted(l0) == list(range(4)), seqs
    produced = agent.produced()[MachineAddress("c1", "f01", "weave1", "l0000")]
    assert (produced.first_seq, produced.last_seq, produced.messages) == (0, 3, 4)


def test_a_bad_value_drops_only_its_own_reading(make_agent: Callable[..., Agent]) -> None:
    agent = make_agent([TwoSourcesInput(bad_on=2)], samples_per_message=3)
    for k in range(3):
        agent.tick(T0 + 1000 * k)
    batches = [(m, b) for m, c, b in decoded(agent.outbox) if c == "telemetry"]
    speeds = [b for m, b in batches if "speed_rpm" in b.fields and m == "l0001"]
    assert speeds[0].ts_ms.tolist() == [T0, T0 + 2000]  # the bad tick's reading is gone
    energy = [b for m, b in batches if "energy_kwh_total" in b.fields]
    assert energy[0].ts_ms.tolist() == [T0, T0 + 1000, T0 + 2000]  # the other source kept
    assert agent.metrics.snapshot()["input_errors_total"] == 1


class StubPublisher:
    """Only what the agent reads of the publisher: the broker's stored-message count."""

    def __init__(self, backlog: int | None) -> None:
        self.broker_backlog = backlog

    def wake(self) -> None: ...


@pytest.mark.parametrize(
    ("limit", "backlog", "paused"),
    [(None, 10_000, False), (500, None, False), (500, 400, False), (500, 800, True)],
)
def test_a_backfill_pauses_while_the_broker_stores_too_much(
    make_settings: Callable[..., GatewaySettings],
    limit: int | None,
    backlog: int | None,
    paused: bool,
) -> None:
    s = make_settings(broker_backlog_limit=limit)
    box = Outbox(s.outbox_path, s.outbox_max_messages, s.outbox_full_policy)
    agent = Agent(s, [], box, GatewayMetrics(), StubPublisher(backlog))  # type: ignore[arg-type]
    assert agent._broker_backlogged() is paused
    box.close()
