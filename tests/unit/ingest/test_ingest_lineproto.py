import math
import re
import time

import numpy as np
import pytest

from ingest import lineproto
from millwatch.contract import (
    MACHINE_TYPES,
    FieldKind,
    GatewayAddress,
    MachineAddress,
    RecordBatch,
    TelemetryBatch,
    decode_telemetry,
    encode_telemetry,
)

ADDR = MachineAddress("c1", "f03", "weave1", "l0117")
T0 = 1767168000000
LOOM_TAGS = "loom,cluster=c1,factory=f03,hall=weave1,machine=l0117,type=loom_airjet"


def test_loom_batch_golden_ints_floats_nan_gap_and_hist_tag():
    batch = TelemetryBatch(
        "loom_airjet",
        42,
        np.array([T0, T0 + 1000, T0 + 2000]),
        {
            "state_code": np.array([1.0, 1.0, 2.0]),
            "speed_rpm": np.array([812.0, 812.5, np.nan]),
            "picks_total": np.array([9123345.0, 9123350.0, 9123355.0]),
            "warp_tension_kn": np.array([3.1, np.nan, 0.1 + 0.2]),
        },
        historical=True,
    )
    assert lineproto.telemetry_lines(ADDR, batch).split("\n") == [
        f"{LOOM_TAGS},hist=1 seq=42i,speed_rpm=812.0,picks_total=9123345i,warp_tension_kn=3.1,"
        "state_code=1i 1767168000000000000",
        f"{LOOM_TAGS},hist=1 seq=42i,speed_rpm=812.5,picks_total=9123350i,state_code=1i "
        "1767168001000000000",
        f"{LOOM_TAGS},hist=1 seq=42i,picks_total=9123355i,warp_tension_kn=0.30000000000000004,"
        "state_code=2i 1767168002000000000",
    ]


def test_all_values_missing_still_gives_a_line_with_seq():
    batch = TelemetryBatch("loom_airjet", 0, np.array([T0]), {"speed_rpm": np.array([np.nan])})
    assert lineproto.telemetry_lines(ADDR, batch) == f"{LOOM_TAGS} seq=0i 1767168000000000000"


def test_dye_strings_are_quoted_and_escaped():
    dye = MachineAddress("c1", "f03", "wet1", "d0007")
    batch = TelemetryBatch(
        "dye_jet",
        5,
        np.array([T0, T0 + 1]),
        {
            "batch_id": np.array(['B26-"01"', None], dtype=object),
            "step_type": np.array(["HE\\AT", "line\nbreak"], dtype=object),
            "step_no": np.array([6.0, np.nan]),
        },
    )
    assert lineproto.telemetry_lines(dye, batch).split("\n") == [
        "dye,cluster=c1,factory=f03,hall=wet1,machine=d0007,type=dye_jet "
        'seq=5i,step_no=6i,step_type="HE\\\\AT",batch_id="B26-\\"01\\"" 1767168000000000000',
        "dye,cluster=c1,factory=f03,hall=wet1,machine=d0007,type=dye_jet "
        'seq=5i,step_type="line\\nbreak" 1767168000001000000',
    ]


def test_float_formatting_round_trips():
    values = np.array([1e20, 1e-7, -0.0, 123456789.123, 5.0, 2.0**60, 1 / 3])
    batch = TelemetryBatch("loom_airjet", 1, np.arange(T0, T0 + 7), {"speed_rpm": values})
    lines = lineproto.telemetry_lines(ADDR, batch).split("\n")
    parsed = [float(line.split("speed_rpm=")[1].split(" ")[0]) for line in lines]
    assert parsed == values.tolist()
    # orjson's shortest forms (1e+20, 1e-7) are floats to InfluxDB 1.6 (checked on the real
    # server): digits, a point or an exponent, never an int-looking bare word.
    texts = [line.split("speed_rpm=")[1].split(" ")[0] for line in lines]
    assert all(re.fullmatch(r"-?\d+(\.\d+)?(e[+-]?\d+)?", t) for t in texts), texts
    assert all(("." in t or "e" in t) for t in texts), texts


def test_events_in_the_same_ms_get_distinct_timestamps():
    batch = RecordBatch(
        "loom_airjet",
        9,
        [
            {"ts": T0, "kind": "stop", "code": "STOP_PROCESS", "reason": "WEFT_SHORT", "feeder": 2},
            {"ts": T0, "kind": "state", "code": "RUN", "duration_s": 12},
            {"ts": T0 + 5, "kind": "alarm", "reason": 'say "hi"', "feeder": None},
        ],
    )
    head = "machine_event,cluster=c1,factory=f03,hall=weave1,machine=l0117,type=loom_airjet"
    assert lineproto.record_lines(ADDR, batch, "event").split("\n") == [
        f'{head},kind=stop seq=9i,code="STOP_PROCESS",reason="WEFT_SHORT",feeder=2i '
        "1767168000000000000",
        f'{head},kind=state seq=9i,code="RUN",duration_s=12.0 1767168000000000001',
        f'{head},kind=alarm seq=9i,reason="say \\"hi\\"" 1767168000005000002',
    ]


def test_fault_labels_golden():
    batch = RecordBatch(
        "dye_jet",
        3,
        [
            {
                "ts": T0,
                "fault_id": "F-0193",
                "fault_type": "pump_cavitation",
                "phase": "onset",
                "severity": 0.2,
            },
            {"ts": T0 + 60_000, "fault_id": "F-0193", "fault_type": "pump_cavitation",
             "phase": "repaired"},
        ],
    )  # fmt: skip
    dye = MachineAddress("c1", "f03", "wet1", "d0007")
    head = (
        "fault_label,cluster=c1,factory=f03,hall=wet1,machine=d0007,type=dye_jet,"
        "fault_type=pump_cavitation"
    )
    assert lineproto.record_lines(dye, batch, "fault_label").split("\n") == [
        f'{head} seq=3i,fault_id="F-0193",phase="onset",severity=0.2 1767168000000000000',
        f'{head} seq=3i,fault_id="F-0193",phase="repaired" 1767168060000000001',
    ]


def test_record_lines_rejects_other_channels():
    with pytest.raises(ValueError, match="channel"):
        lineproto.record_lines(ADDR, RecordBatch("loom_airjet", 0, []), "telemetry")


def test_gateway_metrics_are_floats_sorted_by_name():
    line = lineproto.gateway_metrics_lines(
        GatewayAddress("c1", "f03", "gw-1"), T0, {"sent": 10, "buffered": 2.5}
    )
    assert line == (
        "internal_gateway,cluster=c1,factory=f03,gateway=gw-1 buffered=2.5,sent=10.0 "
        "1767168000000000000"
    )


def test_point_line_escapes_and_skips_non_finite():
    line = lineproto.point_line(
        "internal_ingest", {"worker": "a,b=c"}, {"x y": 1, "nan": math.nan}, 5
    )
    assert line == "internal_ingest,worker=a\\,b\\=c x\\ y=1.0 5"
    with pytest.raises(ValueError, match="finite"):
        lineproto.point_line("m", {}, {"a": math.inf}, 1)


def _reference_line(batch: TelemetryBatch, i: int) -> str:
    """Slow per-sample formatter, the obvious way, to check the vectorised one."""
    mtype = MACHINE_TYPES[batch.machine_type]
    parts = [f"seq={batch.seq}i"]
    for name, kind in mtype.fields.items():
        if name not in batch.fields:
            continue
        v = batch.fields[name][i]
        if kind is FieldKind.STR:
            if v is not None:
                parts.append(f'{name}="{lineproto.escape_string(v)}"')
        elif not math.isnan(v):
            parts.append(f"{name}={int(v)}i" if kind is FieldKind.INT else f"{name}={float(v)!r}")
    return f"{LOOM_TAGS} {','.join(parts)} {int(batch.ts_ms[i]) * 1_000_000}"


def _random_loom_batch(n: int, seed: int = 7) -> TelemetryBatch:
    rng = np.random.default_rng(seed)
    fields = {}
    for name, kind in MACHINE_TYPES["loom_airjet"].fields.items():
        col = rng.normal(100, 50, n)
        if kind is FieldKind.INT:
            col = np.round(np.abs(col) * 1000)
        col[rng.random(n) < 0.05] = np.nan
        fields[name] = col
    return TelemetryBatch("loom_airjet", 11, T0 + np.arange(n) * 100, fields)


def test_vectorised_output_matches_per_sample_reference_on_10k_samples():
    batch = _random_loom_batch(10_000)
    started = time.perf_counter()
    lines = lineproto.telemetry_lines(ADDR, batch).split("\n")
    elapsed = time.perf_counter() - started
    assert len(lines) == 10_000
    assert lines == [_reference_line(batch, i) for i in range(10_000)]
    assert elapsed < 2.0  # ~0.1 s on the 2-core dev box; a per-sample loop is far slower


def test_round_trip_through_the_contract_codec():
    batch = _random_loom_batch(50)
    decoded = decode_telemetry(encode_telemetry(batch), now=T0)
    assert lineproto.telemetry_lines(ADDR, decoded) == lineproto.telemetry_lines(ADDR, batch)


def test_strided_columns_format_like_contiguous_ones():
    grid = np.arange(12, dtype=np.float64).reshape(4, 3) + 0.5
    strided = TelemetryBatch("loom_airjet", 1, np.arange(T0, T0 + 4), {"speed_rpm": grid[:, 1]})
    packed = TelemetryBatch(
        "loom_airjet", 1, np.arange(T0, T0 + 4), {"speed_rpm": grid[:, 1].copy()}
    )
    assert lineproto.telemetry_lines(ADDR, strided) == lineproto.telemetry_lines(ADDR, packed)
