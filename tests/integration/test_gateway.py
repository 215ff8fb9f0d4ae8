"""The gateway against a real Mosquitto: every (machine, seq) arrives, through a broker
outage and through a SIGKILL of the gateway process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest

from gateway.agent import Produced
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from millwatch.contract import MachineAddress, parse_topic
from millwatch.servers import Mosquitto

ROOT = Path(__file__).resolve().parents[2]
LOOMS = 20


class Collector:
    """A QoS-1 subscriber with a persistent session, so a broker restart loses nothing.

    MQTT 3.1.1 on purpose: Mosquitto 2.0.11 (Debian 12) does not restore an MQTT 5
    session (clean start 0, session expiry 3600 s) after a restart, while a 3.1.1
    ``clean_session=False`` session and its queued messages survive.
    """

    def __init__(self, broker: Mosquitto) -> None:
        self.lock = threading.Lock()
        self.arrivals: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.payloads: dict[tuple[str, int], set[bytes]] = defaultdict(set)
        self.status: list[bool] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id="test-collector",
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "collector did not subscribe"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not flags.session_present:
            client.subscribe("mw/v1/c1/f01/+/+/+", qos=1)

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        topic = parse_topic(msg.topic)
        doc = orjson.loads(msg.payload)
        with self.lock:
            if topic.address is None:
                if topic.channel == "status":
                    self.status.append(doc["online"])
                return
            machine = topic.address.machine
            self.arrivals[(machine, topic.channel)].append(doc["seq"])
            self.payloads[(machine, doc["seq"])].add(msg.payload)

    def count(self) -> int:
        with self.lock:
            return len(self.payloads)

    def seqs(self, machine: str) -> set[int]:
        with self.lock:
            return {seq for (m, seq) in self.payloads if m == machine}

    def wait_for(self, expected: dict[str, int], timeout: float) -> None:
        """Wait until every machine's seqs 0..last have arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(len(self.seqs(m)) >= last + 1 for m, last in expected.items()):
                return
            time.sleep(0.1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def collector(mosquitto: Mosquitto) -> Iterator[Collector]:
    c = Collector(mosquitto)
    yield c
    c.close()


@pytest.fixture
def settings(mosquitto: Mosquitto, tmp_path: Path) -> Callable[..., GatewaySettings]:
    def make(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "cluster": "c1",
            "factory": "f01",
            "gateway_id": "gw1",
            "mqtt_host": mosquitto.host,
            "mqtt_port": mosquitto.port,
            "outbox_path": tmp_path / "outbox.sqlite",
            "fast_forward": True,
            "inputs": {"simulator": {"machines": {"loom_airjet": LOOMS}}},
        }
        return GatewaySettings(**{**values, **overrides})

    return make


def last_seqs(produced: dict[MachineAddress, Produced]) -> dict[str, int]:
    return {a.machine: p.last_seq for a, p in produced.items() if p.last_seq is not None}


def assert_complete(collector: Collector, last: dict[str, int]) -> None:
    """Every seq 0..last of every machine arrived, and no seq carried two payloads."""
    assert len(last) == LOOMS + 1  # and the hall's climate sensor
    for machine, final in last.items():
        missing = set(range(final + 1)) - collector.seqs(machine)
        assert not missing, f"{machine}: {len(missing)} seqs never arrived, e.g. {min(missing)}"
    reused = [key for key, payloads in collector.payloads.items() if len(payloads) > 1]
    assert not reused, f"seqs reused for different data: {reused[:5]}"


def assert_in_order(collector: Collector) -> None:
    """First arrivals per machine and channel come in increasing seq order."""
    for key, seqs in collector.arrivals.items():
        firsts = list(dict.fromkeys(seqs))
        assert firsts == sorted(firsts), f"{key} arrived out of order"


def test_every_seq_arrives_in_fast_forward(
    settings: Callable[..., GatewaySettings], collector: Collector
) -> None:
    with Gateway(settings(max_ticks=300, samples_per_message=2)) as gw:
        assert gw.wait_idle(60), "outbox did not drain"
        produced = gw.produced
    assert all(p.samples == 300 and p.rejected == 0 for p in produced.values())
    collector.wait_for(last_seqs(produced), 30)
    assert_complete(collector, last_seqs(produced))
    assert_in_order(collector)
    assert collector.status[0] is True
    assert collector.status[-1] is False  # clean stop publishes the retained offline status


def test_a_broker_outage_mid_stream_loses_nothing(
    mosquitto: Mosquitto, settings: Callable[..., GatewaySettings], collector: Collector
) -> None:
    with Gateway(settings(max_ticks=3000)) as gw:
        deadline = time.monotonic() + 30
        while collector.count() < 2000 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert collector.count() >= 2000
        mosquitto.stop()
        depth_at_stop = gw.outbox.depth()
        time.sleep(3)
        assert not gw.publisher.connected
        assert gw.outbox.depth() > depth_at_stop or gw.agent.done.is_set()
        mosquitto.start()
        assert gw.wait_idle(120), "outbox did not drain after the broker came back"
        produced = gw.produced
    assert gw.metrics.snapshot()["outbox_dropped_total"] == 0
    collector.wait_for(last_seqs(produced), 60)
    assert_complete(collector, last_seqs(produced))
    assert_in_order(collector)


def _wait_for_rows(outbox: Path, timeout_s: float = 20) -> None:
    """Until the outbox holds at least one row (messages not yet acknowledged)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with sqlite3.connect(outbox) as db:
            if db.execute("SELECT count(*) FROM messages").fetchone()[0] > 0:
                return
        time.sleep(0.05)


def test_a_killed_gateway_replays_unacked_rows_and_never_reuses_seqs(
    mosquitto: Mosquitto,
    settings: Callable[..., GatewaySettings],
    collector: Collector,
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox.sqlite"
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'cluster = "c1"\nfactory = "f01"\ngateway_id = "gw1"\n'
        f'mqtt_host = "{mosquitto.host}"\nmqtt_port = {mosquitto.port}\n'
        f'outbox_path = "{outbox}"\nfast_forward = true\nmax_ticks = 20000\n'
        f"[inputs.simulator]\nmachines = {{ loom_airjet = {LOOMS} }}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLWATCH_")}
    with (tmp_path / "gateway.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "-c", str(config)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while collector.count() < 3000 and time.monotonic() < deadline:
                assert proc.poll() is None, (tmp_path / "gateway.log").read_text()
                time.sleep(0.02)
            assert collector.count() >= 3000
            # Freeze the broker so PUBACKs stop and the outbox surely holds unacked rows when
            # the gateway dies (on a busy machine it could otherwise be drained at that moment).
            os.kill(mosquitto.pid, signal.SIGSTOP)
            _wait_for_rows(outbox)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            os.kill(mosquitto.pid, signal.SIGCONT)
    with sqlite3.connect(outbox) as db:
        unacked = db.execute("SELECT count(*) FROM messages").fetchone()[0]
        persisted = dict(db.execute("SELECT machine, next_seq FROM sequences"))
    assert unacked > 0, "nothing left to replay: the test proves nothing"

    with Gateway(settings(max_ticks=20)) as gw:
        assert gw.wait_idle(120), "the replay did not drain"
        produced = gw.produced
    for address, p in produced.items():
        key = f"c1/f01/{address.hall}/{address.machine}"
        assert p.first_seq == persisted[key], "seqs must continue after the crash"
    collector.wait_for(last_seqs(produced), 60)
    assert_complete(collector, last_seqs(produced))
