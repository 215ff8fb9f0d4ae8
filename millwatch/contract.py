"""The millwatch data contract, version 1: MQTT topics, payloads and the InfluxDB schema.

This is the only module that formats or parses topic strings and payloads. Gateways
encode with it, ingest decodes with it; docs/CONTRACT.md describes the same rules for
integrators. Everything a decoder rejects raises :class:`ContractError` carrying a
short machine-readable ``reason`` that ingest counts and dead-letters.

Topics (``{cluster}/{factory}/{hall}/{machine}`` follow the asset hierarchy)::

    mw/v1/{cluster}/{factory}/{hall}/{machine}/telemetry   columnar batch of samples
    mw/v1/{cluster}/{factory}/{hall}/{machine}/event       state changes, stops, alarms, steps
    mw/v1/{cluster}/{factory}/{hall}/{machine}/fault_label simulator ground truth
    mw/v1/{cluster}/{factory}/{hall}/{machine}/birth       retained machine metadata
    mw/v1/{cluster}/{factory}/_gateway/{gateway}/status    retained online flag, last will
    mw/v1/{cluster}/{factory}/_gateway/{gateway}/metrics   gateway self-metrics
    mw/v1/_deadletter/{reason}                              rejected input, written by ingest

Example
-------
>>> addr = MachineAddress("c1", "f03", "weave1", "l0117")
>>> machine_topic(addr, "telemetry")
'mw/v1/c1/f03/weave1/l0117/telemetry'
>>> parse_topic("mw/v1/c1/f03/weave1/l0117/telemetry").address == addr
True
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final, Literal

import numpy as np
import orjson

VERSION: Final = 1
TOPIC_ROOT: Final = f"mw/v{VERSION}"
GATEWAY_SEGMENT: Final = "_gateway"
DEADLETTER_ROOT: Final = f"{TOPIC_ROOT}/_deadletter"
ID_PATTERN: Final = re.compile(r"[a-z0-9-]{1,32}")
FAULT_TYPE_PATTERN: Final = re.compile(r"[a-z0-9_]{1,64}")
#: Gateway counter names become InfluxDB field keys, so they need a safe alphabet.
COUNTER_NAME_PATTERN: Final = re.compile(r"[a-z0-9_]{1,64}")
#: Line protocol of InfluxDB 2.x/3.x allows no control characters in string values.
CONTROL_CHARS: Final = re.compile(r"[\x00-\x1f\x7f]")

MachineChannel = Literal["telemetry", "event", "fault_label", "birth"]
GatewayChannel = Literal["status", "metrics"]
MACHINE_CHANNELS: Final[tuple[str, ...]] = ("telemetry", "event", "fault_label", "birth")
GATEWAY_CHANNELS: Final[tuple[str, ...]] = ("status", "metrics")

MAX_PAYLOAD_BYTES: Final = 2 * 1024 * 1024
MAX_SAMPLES: Final = 20_000
MAX_RECORDS: Final = 5_000
MAX_FUTURE_MS: Final = 10 * 60 * 1000
MAX_PAST_MS: Final = 400 * 24 * 3600 * 1000
MAX_STRING: Final = 256
MAX_COUNTERS: Final = 256
#: Integers travel as float64 columns; beyond 2**53 they are no longer exact.
MAX_INT: Final = 2**53
#: Every ``ContractError.reason`` the decoders raise (docs/CONTRACT.md explains each).
REJECT_REASONS: Final[tuple[str, ...]] = (
    "bad_topic",
    "oversize",
    "malformed_json",
    "non_finite",
    "unsupported_version",
    "schema",
    "unknown_machine_type",
    "unknown_field",
    "wrong_type",
    "length_mismatch",
    "timestamp_out_of_range",
)
#: Internal self-metrics (gateway and ingest counters) live apart from every factory.
INTERNAL_DATABASE: Final = "millwatch_internal"


class ContractError(ValueError):
    """Input that breaks the contract; ``reason`` is a short label for counters."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class FieldKind(Enum):
    """How a field is typed on the wire and in InfluxDB."""

    FLOAT = "float"
    INT = "int"
    STR = "str"


F, INT, S = FieldKind.FLOAT, FieldKind.INT, FieldKind.STR


@dataclass(frozen=True)
class MachineType:
    """A machine class: its InfluxDB measurement and the fields it may report."""

    name: str
    measurement: str
    fields: dict[str, FieldKind]


_LOOM_FIELDS: Final = {
    "speed_rpm": F,
    "picks_total": INT,
    "warp_stops_total": INT,
    "weft_stops_total": INT,
    "other_stops_total": INT,
    "warp_tension_kn": F,
    "beam_diameter_mm": F,
    "cloth_roll_m": F,
    "air_supply_bar": F,
    "air_flow_nm3h": F,
    "weft_arrival_deg": F,
    "motor_power_kw": F,
    "motor_current_a": F,
    "vib_rms_mm_s": F,
    "vib_peak_mm_s": F,
    "bearing_temp_c": F,
    "motor_temp_c": F,
    "energy_kwh_total": F,
    "state_code": INT,
}
_KNIT_FIELDS: Final = {
    "speed_rpm": F,
    "revs_total": INT,
    "fabric_kg_total": F,
    "yarn_feed_m_min": F,
    "yarn_tension_cn": F,
    "drive_power_kw": F,
    "cam_temp_c": F,
    "vib_rms_mm_s": F,
    "oil_pulses_total": INT,
    "energy_kwh_total": F,
    "state_code": INT,
}
_DYE_FIELDS: Final = {
    "liquor_temp_c": F,
    "temp_sp_c": F,
    "pressure_bar": F,
    "ph": F,
    "conductivity_ms_cm": F,
    "pump_speed_pct": F,
    "flow_m3h": F,
    "nozzle_bar": F,
    "pump_current_a": F,
    "reel_speed_m_min": F,
    "cycle_time_s": F,
    "level_l": F,
    "water_l_total": F,
    "steam_kg_total": F,
    "energy_kwh_total": F,
    "step_no": INT,
    "step_type": S,
    "recipe_id": S,
    "batch_id": S,
    "batch_kg": F,
    "state_code": INT,
}
_STENTER_FIELDS: Final = {
    **{f"zone{n}_temp_c": F for n in range(1, 13)},
    "speed_m_min": F,
    "width_set_cm": F,
    "width_act_cm": F,
    "overfeed_pct": F,
    "padder_bar": F,
    "moisture_in_pct": F,
    "residual_moisture_pct": F,
    "exhaust_humidity_kg_kg": F,
    "exhaust_fan_pct": F,
    "circ_fan_pct": F,
    "burner_pct": F,
    "gas_nm3h": F,
    "thermal_oil_c": F,
    "gsm_act": F,
    "energy_kwh_total": F,
    "batch_id": S,
    "state_code": INT,
}

#: One climate sensor per hall (domain spec §1.1: hall temperature and humidity).
_HALL_ENV_FIELDS: Final = {"temp_c": F, "rh_pct": F}

MACHINE_TYPES: Final[dict[str, MachineType]] = {
    t.name: t
    for t in (
        MachineType("loom_airjet", "loom", _LOOM_FIELDS),
        MachineType("loom_rapier", "loom", _LOOM_FIELDS),
        MachineType("knit_circular", "knit", _KNIT_FIELDS),
        MachineType("dye_jet", "dye", _DYE_FIELDS),
        MachineType("stenter", "stenter", _STENTER_FIELDS),
        MachineType("hall_env", "hall_env", _HALL_ENV_FIELDS),
    )
}

#: Canonical ``state_code`` values (domain spec section 2).
STATES: Final[dict[str, int]] = {
    "OFF_NOPLAN": 0,
    "RUN": 1,
    "STOP_PROCESS": 2,
    "BREAKDOWN": 3,
    "SETUP": 4,
    "WAIT": 5,
    "PLANNED_MAINT": 6,
    "IDLE_READY": 7,
}

EVENT_MEASUREMENT: Final = "machine_event"
EVENT_KINDS: Final = frozenset({"state", "stop", "alarm", "step", "counter_reset"})
#: Event record keys besides ``ts`` and ``kind`` (the kind becomes a tag).
EVENT_FIELDS: Final[dict[str, FieldKind]] = {
    "code": S,
    "reason": S,
    "feeder": INT,
    "duration_s": F,
    "batch_id": S,
    "step_no": INT,
}
FAULT_MEASUREMENT: Final = "fault_label"
FAULT_PHASES: Final = frozenset({"onset", "detectable", "failure", "repaired"})
FAULT_FIELDS: Final[dict[str, FieldKind]] = {
    "fault_id": S,
    "fault_type": S,
    "phase": S,
    "severity": F,
}


def factory_database(factory: str) -> str:
    """Name of the InfluxDB database that holds one factory's raw data.

    >>> factory_database("f03")
    'f_f03'
    """
    return f"f_{check_id(factory, 'factory')}"


def check_id(value: str, what: str) -> str:
    """Return ``value`` if it is a valid hierarchy id, else raise ``ContractError``."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise ContractError("bad_id", f"{what} id {value!r} must match [a-z0-9-]{{1,32}}")
    return value


@dataclass(frozen=True)
class MachineAddress:
    """Where a machine sits: cluster, factory, hall, machine (ids ``[a-z0-9-]{1,32}``)."""

    cluster: str
    factory: str
    hall: str
    machine: str

    def __post_init__(self) -> None:
        for name in ("cluster", "factory", "hall", "machine"):
            check_id(getattr(self, name), name)


@dataclass(frozen=True)
class GatewayAddress:
    """A gateway, which serves one factory."""

    cluster: str
    factory: str
    gateway: str

    def __post_init__(self) -> None:
        for name in ("cluster", "factory", "gateway"):
            check_id(getattr(self, name), name)


@dataclass(frozen=True)
class Topic:
    """A parsed topic: exactly one of ``address`` and ``gateway`` is set."""

    channel: str
    address: MachineAddress | None = None
    gateway: GatewayAddress | None = None


def machine_topic(address: MachineAddress, channel: MachineChannel) -> str:
    """Topic a machine's messages of one channel are published on."""
    if channel not in MACHINE_CHANNELS:
        raise ValueError(f"unknown machine channel {channel!r}")
    a = address
    return f"{TOPIC_ROOT}/{a.cluster}/{a.factory}/{a.hall}/{a.machine}/{channel}"


def gateway_topic(gateway: GatewayAddress, channel: GatewayChannel) -> str:
    """Topic of a gateway's own status or metrics."""
    if channel not in GATEWAY_CHANNELS:
        raise ValueError(f"unknown gateway channel {channel!r}")
    g = gateway
    return f"{TOPIC_ROOT}/{g.cluster}/{g.factory}/{GATEWAY_SEGMENT}/{g.gateway}/{channel}"


def deadletter_topic(reason: str) -> str:
    """Topic ingest republishes a rejected message on, one per rejection reason."""
    return f"{DEADLETTER_ROOT}/{reason}"


def subscription(channel: str, share_group: str | None = None) -> str:
    """Subscription filter for one channel of every factory, optionally shared (MQTT v5).

    >>> subscription("telemetry", "ingest")
    '$share/ingest/mw/v1/+/+/+/+/telemetry'
    """
    if channel not in MACHINE_CHANNELS + GATEWAY_CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    filt = f"{TOPIC_ROOT}/+/+/+/+/{channel}"
    return f"$share/{share_group}/{filt}" if share_group else filt


def parse_topic(topic: str) -> Topic:
    """Parse a machine or gateway topic; raise ``ContractError('bad_topic')`` otherwise."""
    parts = topic.split("/")
    if len(parts) != 7 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        raise ContractError("bad_topic", f"{topic!r} is not {TOPIC_ROOT}/c/f/hall/machine/channel")
    _, _, cluster, factory, hall, name, channel = parts
    try:
        if hall == GATEWAY_SEGMENT and channel in GATEWAY_CHANNELS:
            return Topic(channel, gateway=GatewayAddress(cluster, factory, name))
        if channel in MACHINE_CHANNELS:
            return Topic(channel, address=MachineAddress(cluster, factory, hall, name))
    except ContractError as exc:
        raise ContractError("bad_topic", f"{topic!r}: {exc.detail}") from exc
    raise ContractError("bad_topic", f"{topic!r}: unknown channel {channel!r}")


@dataclass
class TelemetryBatch:
    """One machine's samples, columnar: ``ts_ms`` shape (n,), each field shape (n,).

    Numeric fields are float64 with NaN where a sample lacks the value (JSON
    ``null``); ``FieldKind.INT`` fields hold integral values. String fields are
    object arrays with ``None`` for missing values.
    """

    machine_type: str
    seq: int
    ts_ms: np.ndarray
    fields: dict[str, np.ndarray]
    historical: bool = False

    def __len__(self) -> int:
        return int(self.ts_ms.shape[0])


@dataclass
class RecordBatch:
    """A list of records (events or fault labels), each with ``ts`` in epoch ms."""

    machine_type: str
    seq: int
    records: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)


def now_ms() -> int:
    """Current UTC time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def encode_telemetry(batch: TelemetryBatch) -> bytes:
    """Serialise a telemetry batch (NaN and ``None`` become JSON ``null``).

    >>> b = TelemetryBatch("knit_circular", 7, np.array([1000, 2000]),
    ...                    {"speed_rpm": np.array([30.5, np.nan])})
    >>> encode_telemetry(b)
    b'{"v":1,"seq":7,"type":"knit_circular","ts":[1000,2000],"m":{"speed_rpm":[30.5,null]}}'
    """
    columns: dict[str, Any] = {}
    kinds = MACHINE_TYPES[batch.machine_type].fields
    for name, values in batch.fields.items():
        if kinds[name] is not FieldKind.INT:
            columns[name] = np.ascontiguousarray(values) if values.dtype != object else list(values)
        elif np.isnan(values).any():
            columns[name] = [None if np.isnan(v) else int(v) for v in values.tolist()]
        else:
            columns[name] = values.astype(np.int64)
    doc: dict[str, Any] = {
        "v": VERSION,
        "seq": batch.seq,
        "type": batch.machine_type,
        "ts": batch.ts_ms.astype(np.int64),
        "m": columns,
    }
    if batch.historical:
        doc["hist"] = True
    # orjson writes numpy arrays natively, NaN as null.
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def encode_records(batch: RecordBatch) -> bytes:
    """Serialise an event or fault-label batch."""
    doc = {"v": VERSION, "seq": batch.seq, "type": batch.machine_type, "records": batch.records}
    return orjson.dumps(doc)


def encode_status(online: bool, ts_ms: int | None = None) -> bytes:
    """Serialise a gateway's retained online/offline status."""
    return orjson.dumps({"v": VERSION, "online": online, "ts": ts_ms or now_ms()})


def encode_metrics(counters: dict[str, float], ts_ms: int | None = None) -> bytes:
    """Serialise a gateway's self-metrics snapshot."""
    return orjson.dumps({"v": VERSION, "ts": ts_ms or now_ms(), "counters": counters})


def decode_document(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """Parse a payload's JSON envelope and check size, object shape and version."""
    if len(payload) > max_bytes:
        raise ContractError("oversize", f"{len(payload)} bytes > {max_bytes}")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        # Python's json module writes NaN/Infinity literals; RFC 8259 JSON has neither.
        non_finite = any(word in payload for word in (b"NaN", b"Infinity")) or "infinity" in str(
            exc
        )
        reason = "non_finite" if non_finite else "malformed_json"
        raise ContractError(reason, str(exc)[:120]) from exc
    if not isinstance(doc, dict):
        raise ContractError("schema", "payload must be a JSON object")
    if doc.get("v") != VERSION:
        raise ContractError("unsupported_version", f"v={doc.get('v')!r}, expected {VERSION}")
    return doc


def _seq_and_type(doc: dict[str, Any]) -> tuple[int, str]:
    seq, machine_type = doc.get("seq"), doc.get("type")
    if type(seq) is not int or not 0 <= seq <= MAX_INT:
        raise ContractError("schema", "seq must be an integer in [0, 2**53]")
    if machine_type not in MACHINE_TYPES:
        raise ContractError("unknown_machine_type", f"type {machine_type!r}")
    return seq, machine_type


def _timestamps(raw: Any, now: int, limit: int) -> np.ndarray:
    if not isinstance(raw, list) or not raw:
        raise ContractError("schema", "ts must be a non-empty array of epoch milliseconds")
    if len(raw) > limit:
        raise ContractError("oversize", f"{len(raw)} samples > {limit}")
    if set(map(type, raw)) != {int}:
        raise ContractError("schema", "ts must hold integers (epoch ms)")
    ts = _int64_times(raw)
    check_time_range(ts, now)
    return ts


def _int64_times(raw: list[int]) -> np.ndarray:
    try:
        return np.array(raw, dtype=np.int64)
    except OverflowError as exc:
        raise ContractError("timestamp_out_of_range", "ts beyond int64") from exc


def check_time_range(ts_ms: np.ndarray, now: int) -> None:
    """Reject timestamps too far in the future (clock skew) or the past."""
    if ts_ms.size and (ts_ms.max() > now + MAX_FUTURE_MS or ts_ms.min() < now - MAX_PAST_MS):
        raise ContractError("timestamp_out_of_range", "ts outside [now-400d, now+10min]")


_NUMBER_TYPES: Final = frozenset({int, float, type(None)})


def _numeric_column(name: str, raw: list[Any], kind: FieldKind) -> np.ndarray:
    # set(map(type, ...)) runs in C; bool and str are not in the allowed set.
    if not set(map(type, raw)) <= _NUMBER_TYPES:
        raise ContractError("wrong_type", f"field {name!r} must be numeric")
    try:
        values = np.array(raw, dtype=np.float64)  # None becomes NaN
    except OverflowError as exc:  # an integer beyond float64
        raise ContractError("wrong_type", f"field {name!r} is out of range") from exc
    return check_numeric(name, values, kind)


def check_numeric(name: str, values: np.ndarray, kind: FieldKind) -> np.ndarray:
    """Return a float64 column after rejecting inf and, for int fields, bad integers."""
    if np.isinf(values).any():
        raise ContractError("non_finite", f"field {name!r} holds inf")
    if kind is FieldKind.INT:
        check_integral(name, values)
    return values


def check_integral(name: str, values: np.ndarray) -> None:
    """Reject an int column that is fractional or beyond ±2**53 (NaN = missing is fine)."""
    present = values[~np.isnan(values)]
    if not np.array_equal(present, np.round(present)) or np.abs(present).max(initial=0) > MAX_INT:
        raise ContractError("wrong_type", f"field {name!r} must be integral within ±2**53")


def _is_clean_string(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_STRING and not CONTROL_CHARS.search(value)


def _string_column(name: str, raw: list[Any]) -> np.ndarray:
    if not all(v is None or _is_clean_string(v) for v in raw):
        raise ContractError(
            "wrong_type", f"field {name!r} must hold strings <= {MAX_STRING} without controls"
        )
    return np.array(raw, dtype=object)


def decode_telemetry(payload: bytes, now: int | None = None) -> TelemetryBatch:
    """Validate and decode a telemetry payload into columns.

    Raises ``ContractError`` with reason ``oversize``, ``malformed_json``, ``schema``,
    ``unsupported_version``, ``unknown_machine_type``, ``unknown_field``,
    ``wrong_type``, ``non_finite``, ``length_mismatch`` or ``timestamp_out_of_range``.

    >>> b = decode_telemetry(b'{"v":1,"seq":3,"type":"loom_airjet","ts":[1767168000000],'
    ...                      b'"m":{"speed_rpm":[812.0]}}', now=1767168000000)
    >>> b.seq, len(b), float(b.fields["speed_rpm"][0])
    (3, 1, 812.0)
    """
    doc = decode_document(payload)
    seq, machine_type = _seq_and_type(doc)
    ts = _timestamps(doc.get("ts"), now_ms() if now is None else now, MAX_SAMPLES)
    if np.any(np.diff(ts) <= 0):
        raise ContractError("schema", "ts must be strictly increasing within a batch")
    metrics = doc.get("m")
    if not isinstance(metrics, dict) or not metrics:
        raise ContractError("schema", "m must be a non-empty object of field arrays")
    kinds = MACHINE_TYPES[machine_type].fields
    columns: dict[str, np.ndarray] = {}
    for name, raw in metrics.items():
        kind = kinds.get(name)
        if kind is None:
            raise ContractError("unknown_field", f"{name!r} is not a {machine_type} field")
        if not isinstance(raw, list) or len(raw) != len(ts):
            raise ContractError("length_mismatch", f"field {name!r} needs {len(ts)} values")
        column = _string_column if kind is FieldKind.STR else None
        columns[name] = column(name, raw) if column else _numeric_column(name, raw, kind)
    return TelemetryBatch(machine_type, seq, ts, columns, historical=doc.get("hist") is True)


def decode_records(payload: bytes, channel: str, now: int | None = None) -> RecordBatch:
    """Validate and decode an ``event`` or ``fault_label`` payload."""
    doc = decode_document(payload)
    seq, machine_type = _seq_and_type(doc)
    records = doc.get("records")
    if not isinstance(records, list) or not records:
        raise ContractError("schema", "records must be a non-empty array")
    if len(records) > MAX_RECORDS:
        raise ContractError("oversize", f"{len(records)} records > {MAX_RECORDS}")
    for record in records:
        check_record(record, channel)
    ts = _int64_times([r["ts"] for r in records])
    check_time_range(ts, now_ms() if now is None else now)
    return RecordBatch(machine_type, seq, records)


def check_record(record: Any, channel: str) -> None:
    """Raise ``ContractError`` unless ``record`` is a valid ``event``/``fault_label`` record."""
    allowed = EVENT_FIELDS if channel == "event" else FAULT_FIELDS
    if not isinstance(record, dict) or type(record.get("ts")) is not int:
        raise ContractError("schema", "each record needs an integer ts (epoch ms)")
    if channel == "event" and record.get("kind") not in EVENT_KINDS:
        raise ContractError("schema", f"event kind must be one of {sorted(EVENT_KINDS)}")
    if channel == "fault_label" and record.get("phase") not in FAULT_PHASES:
        raise ContractError("schema", f"fault phase must be one of {sorted(FAULT_PHASES)}")
    if channel == "fault_label" and not FAULT_TYPE_PATTERN.fullmatch(str(record.get("fault_type"))):
        raise ContractError("schema", "fault_type must match [a-z0-9_]{1,64}")
    for key, value in record.items():
        if key in ("ts", "kind") or value is None:
            continue
        kind = allowed.get(key)
        if kind is None:
            raise ContractError("unknown_field", f"{key!r} is not a {channel} field")
        _check_scalar(key, value, kind)


def _check_scalar(key: str, value: Any, kind: FieldKind) -> None:
    if kind is FieldKind.STR:
        ok = _is_clean_string(value)
    elif isinstance(value, bool):
        ok = False
    elif kind is FieldKind.INT:
        ok = isinstance(value, int) and abs(value) <= MAX_INT
    else:
        ok = isinstance(value, int | float)
        if ok and not np.isfinite(value):
            raise ContractError("non_finite", f"{key!r} is not finite")
    if not ok:
        raise ContractError("wrong_type", f"{key!r} must be {kind.value}")


def decode_metrics(payload: bytes, now: int | None = None) -> tuple[int, dict[str, float]]:
    """Validate a gateway ``metrics`` payload; return ``(ts_ms, counters)``."""
    doc = decode_document(payload)
    ts, counters = doc.get("ts"), doc.get("counters")
    if type(ts) is not int:
        raise ContractError("schema", "ts must be an integer (epoch ms)")
    check_time_range(np.array([ts]), now_ms() if now is None else now)
    if not isinstance(counters, dict) or not counters:
        raise ContractError("schema", "counters must be a non-empty object")
    if len(counters) > MAX_COUNTERS:
        raise ContractError("oversize", f"{len(counters)} counters > {MAX_COUNTERS}")
    for name, value in counters.items():
        if not COUNTER_NAME_PATTERN.fullmatch(name):
            raise ContractError(
                "schema", f"counter name {name[:80]!r} must match [a-z0-9_]{{1,64}}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ContractError("wrong_type", f"counter {name!r} must be a number")
        if not np.isfinite(value):
            raise ContractError("non_finite", f"counter {name!r} is not finite")
    return ts, counters
