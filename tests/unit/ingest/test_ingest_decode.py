import orjson
import pytest

from ingest.decode import deadletter_payload, decode_message
from millwatch import contract
from millwatch.contract import ContractError, decode_metrics, parse_topic

NOW = 1767168000000
LOOM = "mw/v1/c1/f03/weave1/l0117"


def telemetry(**overrides):
    doc = {"v": 1, "seq": 1, "type": "loom_airjet", "ts": [NOW], "m": {"speed_rpm": [812.0]}}
    return orjson.dumps(doc | overrides)


def test_telemetry_goes_to_the_factory_database():
    lines = decode_message(parse_topic(f"{LOOM}/telemetry"), telemetry(), NOW)
    assert (lines.database, lines.measurement, lines.count) == ("f_f03", "loom", 1)
    assert lines.body.endswith("seq=1i,speed_rpm=812.0 1767168000000000000")


def test_events_and_fault_labels():
    events = orjson.dumps(
        {"v": 1, "seq": 2, "type": "loom_airjet", "records": [{"ts": NOW, "kind": "stop"}] * 2}
    )
    lines = decode_message(parse_topic(f"{LOOM}/event"), events, NOW)
    assert (lines.measurement, lines.count) == (contract.EVENT_MEASUREMENT, 2)
    faults = orjson.dumps(
        {
            "v": 1,
            "seq": 3,
            "type": "loom_airjet",
            "records": [{"ts": NOW, "fault_type": "warp_break", "phase": "onset"}],
        }
    )
    lines = decode_message(parse_topic(f"{LOOM}/fault_label"), faults, NOW)
    assert (lines.database, lines.measurement) == ("f_f03", contract.FAULT_MEASUREMENT)
    assert ',fault_type=warp_break seq=3i,phase="onset" ' in lines.body


def test_gateway_metrics_go_to_the_internal_database():
    topic = parse_topic("mw/v1/c1/f03/_gateway/gw1/metrics")
    payload = contract.encode_metrics({"published_total": 5, "buffer_depth": 0}, NOW)
    lines = decode_message(topic, payload, NOW)
    assert (lines.database, lines.measurement, lines.count) == (
        contract.INTERNAL_DATABASE,
        "internal_gateway",
        1,
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"v":1,"ts":1767168000000}', "schema"),
        (b'{"v":1,"ts":"x","counters":{"a":1}}', "schema"),
        (b'{"v":1,"ts":1767168000000,"counters":{"Bad Name":1}}', "schema"),
        (b'{"v":1,"ts":1767168000000,"counters":{"a":true}}', "wrong_type"),
        (b'{"v":1,"ts":1767168000000,"counters":{"a":"1"}}', "wrong_type"),
        (b'{"v":1,"ts":1767168000000,"counters":{"a":1e400}}', "non_finite"),
        (b'{"v":1,"ts":9767168000000,"counters":{"a":1}}', "timestamp_out_of_range"),
        (b"{nope", "malformed_json"),
    ],
)
def test_bad_gateway_metrics(payload, reason):
    with pytest.raises(ContractError) as info:
        decode_metrics(payload, NOW)
    assert info.value.reason == reason


def test_unconsumed_channels_are_bad_topics():
    with pytest.raises(ContractError) as info:
        decode_message(parse_topic(f"{LOOM}/birth"), telemetry(), NOW)
    assert info.value.reason == "bad_topic"


def test_deadletter_payload_is_bounded_and_readable():
    raw = b"\xff" + b"x" * 10_000
    doc = orjson.loads(deadletter_payload("t/x", ContractError("oversize", "too big"), raw))
    assert doc["topic"] == "t/x"
    assert (doc["reason"], doc["detail"]) == ("oversize", "too big")
    assert doc["payload"].startswith("\ufffdxxx")
    assert len(doc["payload"]) == 4096
