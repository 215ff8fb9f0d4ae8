from __future__ import annotations

import urllib.request

from gateway.metrics import GatewayMetrics
from millwatch.contract import decode_metrics, encode_metrics

NAMES = {
    "messages_produced_total",
    "messages_published_total",
    "messages_acked_total",
    "publish_errors_total",
    "connect_refused_total",
    "outbox_dropped_total",
    "samples_total",
    "events_total",
    "input_errors_total",
    "outbox_depth",
    "outbox_held",
    "outbox_storage_failing",
    "outbox_storage_errors_total",
    "in_flight",
    "connected",
}


def test_snapshot_has_every_metric_and_flattens_labels() -> None:
    m = GatewayMetrics()
    assert set(m.snapshot()) == NAMES
    m.publish_errors.labels(rc="MQTT_ERR_NO_CONN").inc()
    m.publish_errors.labels(rc="puback_quota_exceeded").inc(2)
    m.outbox_dropped.labels(policy="drop_oldest").inc(5)
    m.samples.inc(7)
    m.connected.set(1)
    snap = m.snapshot()
    assert snap["publish_errors_total"] == 3
    assert snap["publish_errors_mqtt_err_no_conn_total"] == 1
    assert snap["publish_errors_puback_quota_exceeded_total"] == 2
    assert snap["outbox_dropped_drop_oldest_total"] == 5
    assert (snap["samples_total"], snap["connected"]) == (7, 1)


def test_instances_do_not_share_counters() -> None:
    a, b = GatewayMetrics(), GatewayMetrics()
    a.samples.inc(3)
    assert b.snapshot()["samples_total"] == 0


def test_http_endpoint_serves_the_instance_registry() -> None:
    m = GatewayMetrics()
    m.samples.inc(4)
    m.start_http_server(0)
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{m.http_port}/metrics", timeout=5) as r:
            body = r.read().decode()
    finally:
        m.stop_http_server()
    assert "millwatch_gateway_samples_total 4.0" in body
    assert m.http_port is None


def test_snapshot_is_a_valid_contract_metrics_payload() -> None:
    m = GatewayMetrics()
    m.publish_errors.labels(rc="No matching subscribers").inc()
    m.outbox_dropped.labels(policy="drop_oldest").inc()
    payload = encode_metrics(m.snapshot())
    _, counters = decode_metrics(payload)
    assert counters["publish_errors_no_matching_subscribers_total"] == 1
