import logging

import pytest
from pydantic import ValidationError

from ingest.backoff import Backoff
from ingest.logs import RateLimiter, kv
from ingest.metrics import IngestMetrics
from ingest.settings import IngestSettings


def test_defaults():
    s = IngestSettings()
    assert (s.client_id, s.share_group, s.receive_maximum) == ("millwatch-ingest-0", "ingest", 1000)
    assert (s.batch_max_lines, s.batch_max_messages, s.flush_interval_s) == (20000, 500, 0.1)
    assert (s.metrics_port, s.influx_api) == (0, "v1")


def test_environment_prefix(monkeypatch):
    monkeypatch.setenv("MILLWATCH_INGEST_MQTT_PORT", "2883")
    monkeypatch.setenv("MILLWATCH_INGEST_CLIENT_ID", "ingest-7")
    monkeypatch.setenv("MILLWATCH_INGEST_INFLUX_TOKEN", "secret")
    s = IngestSettings()
    assert (s.mqtt_port, s.client_id) == (2883, "ingest-7")
    assert "secret" not in repr(s)


def test_v2_needs_token_and_org():
    with pytest.raises(ValidationError, match="influx_token and influx_org"):
        IngestSettings(influx_api="v2")


def test_retry_bounds_are_checked():
    with pytest.raises(ValidationError):
        IngestSettings(retry_initial_s=5, retry_max_s=1)


def test_backoff_doubles_caps_and_resets():
    b = Backoff(0.5, 3)
    assert [b.next() for _ in range(4)] == [0.5, 1.0, 2.0, 3]
    assert b.next(retry_after=20) == 20
    assert b.next(retry_after=10_000) == 300
    b.reset()
    assert b.next() == 0.5


def test_rate_limiter_counts_suppressed_lines():
    now = [0.0]
    limiter = RateLimiter(burst=2, period=10, clock=lambda: now[0])
    assert [limiter.allow("schema")[0] for _ in range(4)] == [True, True, False, False]
    assert limiter.allow("other") == (True, 0)
    now[0] = 11
    assert limiter.allow("schema") == (True, 2)


def test_kv_quotes_foreign_text():
    assert kv("x", a=1, b="two words", c="") == 'event=x a=1 b="two words" c=""'


def test_metrics_registries_are_per_instance_and_snapshot_flattens():
    a, b = IngestMetrics(), IngestMetrics()
    a.messages_rejected.labels(reason="schema").inc(2)
    a.messages_rejected.labels(reason="oversize").inc()
    a.batch_write_seconds.observe(0.5)
    a.track_unacked(lambda: 4, lambda: 1.5)
    snap = a.snapshot()
    assert snap["messages_rejected_total"] == 3
    assert snap["messages_rejected_schema_total"] == 2
    assert snap["messages_rejected_oversize_total"] == 1
    assert (snap["batch_write_seconds_count"], snap["batch_write_seconds_sum"]) == (1, 0.5)
    assert (snap["unacked"], snap["ack_lag_seconds"]) == (4, 1.5)
    assert b.snapshot()["acked_total"] == 0
    assert not any(k.endswith(("_created", "_bucket")) for k in snap)


def test_logging_lines_are_key_value(caplog):
    caplog.set_level(logging.INFO)
    logging.getLogger("t").info(kv("ingest_started", worker="w0"))
    assert "event=ingest_started worker=w0" in caplog.text
