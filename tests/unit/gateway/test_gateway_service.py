from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.__main__ import main
from gateway.errors import ConfigError, GatewayError
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from tests.unit.gateway.conftest import machine_seq


def auto_acking(client_factory: Callable[[str], Any]) -> Callable[[str], Any]:
    def factory(client_id: str) -> Any:
        client = client_factory(client_id)
        client.auto_ack = True
        client.loop_start = client.connect  # the "network thread" connects at once
        return client

    return factory


def seqs_by_machine(client: Any) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for sent in client.data():
        machine, _, seq = machine_seq(sent.topic, sent.payload)
        out.setdefault(machine, []).append(seq)
    return out


def test_simulated_factory_end_to_end_through_a_fake_broker(
    make_settings: Callable[..., GatewaySettings],
    client_factory: Callable[[str], Any],
    fake_clients: list[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(
        start_ts_ms=None,
        max_ticks=30,
        samples_per_message=4,
        inputs={"simulator": {"machines": {"loom_airjet": 5}}},
    )
    with (
        caplog.at_level(logging.INFO),
        Gateway(settings, client_factory=auto_acking(client_factory)) as gw,
    ):
        assert gw.wait_idle(timeout=20)
        produced = gw.produced
    client = fake_clients[0]
    assert "event=gateway_started gateway=gw1" in caplog.text
    assert "broker=127.0.0.1:1883" in caplog.text
    assert len(produced) == 5 + 1  # and the hall's climate sensor
    got = seqs_by_machine(client)
    for address, p in produced.items():
        assert got[address.machine] == list(range(p.last_seq + 1))  # no gap, no duplicate
        assert p.samples == 30
        assert p.messages == len(got[address.machine])
    status = [orjson.loads(s.payload)["online"] for s in client.sent if s.topic.endswith("/status")]
    assert status == [True, False]
    assert gw.metrics.snapshot()["messages_acked_total"] == sum(
        p.messages for p in produced.values()
    )

    # The next process continues every machine's sequence.
    with Gateway(
        settings.model_copy(update={"max_ticks": 4}), client_factory=auto_acking(client_factory)
    ) as gw2:
        assert gw2.wait_idle(timeout=20)
        for address, p in gw2.produced.items():
            assert p.first_seq == produced[address].last_seq + 1


def test_unacked_rows_survive_a_stop_and_replay_first(
    make_settings: Callable[..., GatewaySettings],
    client_factory: Callable[[str], Any],
    fake_clients: list[Any],
) -> None:
    settings = make_settings(max_ticks=3, inputs={"simulator": {"machines": {"loom_airjet": 2}}})
    gw = Gateway(settings, client_factory=client_factory)  # never connects, never acks
    gw.start()
    assert gw.agent.done.wait(10)
    gw.stop(timeout=0.1)
    assert fake_clients[0].data() == []
    with Gateway(
        settings.model_copy(update={"max_ticks": 1}), client_factory=auto_acking(client_factory)
    ) as gw2:
        assert gw2.wait_idle(timeout=20)
    replayed = seqs_by_machine(fake_clients[1])
    assert all(seqs[:3] == [0, 1, 2] for seqs in replayed.values())


def test_unknown_plugin_and_no_inputs_are_config_errors(
    make_settings: Callable[..., GatewaySettings],
) -> None:
    with pytest.raises(ConfigError, match="unknown input plugin 'modbus'"):
        Gateway(make_settings(inputs={"modbus": {}})).start()
    with pytest.raises(ConfigError, match="no inputs"):
        Gateway(make_settings()).start()
    with pytest.raises(ConfigError, match=r"inputs\.simulator"):
        Gateway(
            make_settings(inputs={"simulator": {"machines": {"loom_airjet": 1}, "lomos": 2}})
        ).start()


def test_parts_are_unavailable_before_start(make_settings: Callable[..., GatewaySettings]) -> None:
    gw = Gateway(make_settings())
    with pytest.raises(GatewayError, match="not started"):
        _ = gw.outbox
    assert gw.produced == {}
    gw.stop()  # harmless


def test_run_until_returns_when_the_stop_event_is_set(
    make_settings: Callable[..., GatewaySettings], client_factory: Callable[[str], Any]
) -> None:
    settings = make_settings(
        fast_forward=False,
        sample_interval_s=0.05,
        inputs={"simulator": {"machines": {"loom_airjet": 2}}},
    )
    gw = Gateway(settings, client_factory=auto_acking(client_factory))
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    gw.run_until(stop)
    assert gw.agent.ticks >= 3
    assert gw.outbox.depth() == 0


def test_main_exits_2_on_a_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('cluster = "C1"\n')
    assert main(["-c", str(path)]) == 2


def test_self_metrics_are_published_on_the_metrics_topic(
    make_settings: Callable[..., GatewaySettings],
    client_factory: Callable[[str], Any],
    fake_clients: list[Any],
) -> None:
    settings = make_settings(
        max_ticks=300,
        metrics_interval_s=0.001,
        inputs={"simulator": {"machines": {"loom_airjet": 2}}},
    )
    with Gateway(settings, client_factory=auto_acking(client_factory)) as gw:
        assert gw.wait_idle(timeout=20)
    metrics = [s for s in fake_clients[0].sent if s.topic == "mw/v1/c1/f01/_gateway/gw1/metrics"]
    assert metrics, "no metrics message"
    assert {s.qos for s in metrics} == {0}
    last = orjson.loads(metrics[-1].payload)
    assert last["v"] == 1
    assert last["counters"]["samples_total"] > 0
    assert "messages_acked_total" in last["counters"]
    assert gw.outbox.depth() == 0  # metrics never go through the outbox
