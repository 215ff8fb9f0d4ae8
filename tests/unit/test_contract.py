import numpy as np
import orjson
import pytest

from millwatch import contract as c

NOW = 1_767_168_000_000
ADDR = c.MachineAddress("c1", "f03", "weave1", "l0117")


def telemetry(**overrides):
    doc = {
        "v": 1,
        "seq": 5,
        "type": "loom_airjet",
        "ts": [NOW - 1000, NOW],
        "m": {"speed_rpm": [812.0, None], "picks_total": [10, 20]},
    }
    doc.update(overrides)
    return orjson.dumps(doc)


def test_topics_round_trip_for_machines_and_gateways():
    for channel in c.MACHINE_CHANNELS:
        parsed = c.parse_topic(c.machine_topic(ADDR, channel))
        assert (parsed.address, parsed.channel, parsed.gateway) == (ADDR, channel, None)
    gw = c.GatewayAddress("c1", "f03", "gw1")
    parsed = c.parse_topic(c.gateway_topic(gw, "status"))
    assert (parsed.gateway, parsed.channel, parsed.address) == (gw, "status", None)


@pytest.mark.parametrize(
    "topic",
    [
        "mw/v1/c1/f03/weave1/l0117",  # too short
        "mw/v2/c1/f03/weave1/l0117/telemetry",  # other version
        "mw/v1/c1/F03/weave1/l0117/telemetry",  # upper case id
        "mw/v1/c1/f03/weave 1/l0117/telemetry",
        "mw/v1/c1/f03/weave1/l0117/bogus",
        "mw/v1/c1/f03/_gateway/gw1/telemetry",  # machine channel under the gateway segment
    ],
)
def test_bad_topics_are_rejected(topic):
    with pytest.raises(c.ContractError) as err:
        c.parse_topic(topic)
    assert err.value.reason == "bad_topic"


def test_ids_are_validated_when_building_addresses():
    with pytest.raises(c.ContractError):
        c.MachineAddress("c1", "f/03", "weave1", "l1")
    with pytest.raises(c.ContractError):
        c.MachineAddress("c1", "f03", "weave1", "x" * 33)


def test_telemetry_round_trip_keeps_values_gaps_and_kinds():
    batch = c.TelemetryBatch(
        "dye_jet",
        9,
        np.array([NOW, NOW + 1000]),
        {
            "liquor_temp_c": np.array([104.3, np.nan]),
            "step_no": np.array([6.0, 7.0]),
            "batch_id": np.array(["b1", None], dtype=object),
        },
        historical=True,
    )
    decoded = c.decode_telemetry(c.encode_telemetry(batch), now=NOW)
    assert decoded.seq == 9 and decoded.machine_type == "dye_jet" and decoded.historical
    assert decoded.ts_ms.tolist() == [NOW, NOW + 1000]
    np.testing.assert_array_equal(decoded.fields["liquor_temp_c"], [104.3, np.nan])
    assert decoded.fields["step_no"].tolist() == [6.0, 7.0]
    assert decoded.fields["batch_id"].tolist() == ["b1", None]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed_json"),
        (b'{"v":1,"seq":1,"type":"loom_airjet","ts":[1],"m":{"speed_rpm":[NaN]}}', "non_finite"),
        (telemetry(m={"speed_rpm": [123.0, 1.0]}).replace(b"123.0", b"1e400"), "non_finite"),
        (telemetry(v=2), "unsupported_version"),
        (telemetry(seq=-1), "schema"),
        (telemetry(seq="5"), "schema"),
        (telemetry(type="loom_steam"), "unknown_machine_type"),
        (telemetry(m={"speed_rpm": [1.0, 2.0], "colour": [1, 2]}), "unknown_field"),
        (telemetry(m={"speed_rpm": ["fast", 2.0]}), "wrong_type"),
        (telemetry(m={"speed_rpm": [True, 2.0]}), "wrong_type"),
        (telemetry(m={"picks_total": [1.5, 2]}), "wrong_type"),
        (telemetry(m={"speed_rpm": [1.0]}), "length_mismatch"),
        (telemetry(ts=[NOW, NOW]), "schema"),
        (telemetry(ts=[NOW, NOW + 3_600_000]), "timestamp_out_of_range"),
        (telemetry(ts=[86_400_000, 86_401_000]), "timestamp_out_of_range"),
        (telemetry(ts=["2026-01-01", NOW]), "schema"),
        (telemetry(m={}), "schema"),
        (b"[1,2,3]", "schema"),
        (b" " * (c.MAX_PAYLOAD_BYTES + 1), "oversize"),
    ],
)
def test_bad_telemetry_is_rejected_with_its_reason(payload, reason):
    with pytest.raises(c.ContractError) as err:
        c.decode_telemetry(payload, now=NOW)
    assert err.value.reason == reason


def test_events_and_fault_labels_decode_and_validate():
    events = c.RecordBatch(
        "loom_airjet",
        3,
        [{"ts": NOW, "kind": "stop", "code": "STOP_PROCESS", "reason": "WARP", "feeder": 2}],
    )
    assert c.decode_records(c.encode_records(events), "event", now=NOW).records == events.records
    bad_kind = c.RecordBatch("loom_airjet", 3, [{"ts": NOW, "kind": "party"}])
    with pytest.raises(c.ContractError, match="schema"):
        c.decode_records(c.encode_records(bad_kind), "event", now=NOW)
    bad_field = c.RecordBatch("loom_airjet", 3, [{"ts": NOW, "kind": "stop", "colour": "red"}])
    with pytest.raises(c.ContractError, match="unknown_field"):
        c.decode_records(c.encode_records(bad_field), "event", now=NOW)
    label = {
        "ts": NOW,
        "fault_id": "F-1",
        "fault_type": "bearing_wear",
        "phase": "onset",
        "severity": 0.2,
    }
    ok = c.RecordBatch("loom_airjet", 4, [label])
    assert c.decode_records(c.encode_records(ok), "fault_label", now=NOW).seq == 4
    injected = c.RecordBatch("loom_airjet", 4, [{**label, "fault_type": "x y,z=1"}])
    with pytest.raises(c.ContractError, match="schema"):
        c.decode_records(c.encode_records(injected), "fault_label", now=NOW)


def test_factory_database_and_shared_subscription():
    assert c.factory_database("f03") == "f_f03"
    assert c.subscription("event", "g") == "$share/g/mw/v1/+/+/+/+/event"
    assert c.subscription("metrics") == "mw/v1/+/+/+/+/metrics"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (telemetry(seq=2**63), "schema"),
        (telemetry(m={"picks_total": [10, 2**60]}), "wrong_type"),
        (telemetry(m={"picks_total": [10, 1e19]}), "wrong_type"),
        (telemetry(ts=[NOW - 2000, "1767167999000", NOW]), "schema"),
        (telemetry(ts=[NOW - 2000, 1767167999000.5, NOW]), "schema"),
        (telemetry(ts=[NOW - 1000, 2**63]), "timestamp_out_of_range"),
    ],
)
def test_numbers_beyond_exact_float64_or_int64_are_rejected(payload, reason):
    with pytest.raises(c.ContractError) as err:
        c.decode_telemetry(payload, now=NOW)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"ts": 2**63, "kind": "stop"}, "timestamp_out_of_range"),
        ({"ts": NOW, "kind": "stop", "feeder": 2**63}, "wrong_type"),
        ({"ts": NOW, "kind": "stop", "reason": "line\nbreak"}, "wrong_type"),
    ],
)
def test_bad_record_values_are_rejected(record, reason):
    payload = orjson.dumps({"v": 1, "seq": 1, "type": "loom_airjet", "records": [record]})
    with pytest.raises(c.ContractError) as err:
        c.decode_records(payload, "event", now=NOW)
    assert err.value.reason == reason
