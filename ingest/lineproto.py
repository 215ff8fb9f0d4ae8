r"""Build InfluxDB line protocol from decoded contract messages.

Telemetry is formatted column by column: orjson writes a whole numpy column as
text (shortest round-trip floats, NaN as ``null``), one ``str.replace`` and one
``str.split`` turn that text into ``,field=value`` pieces, and
``"\n".join(map("".join, zip(*columns)))`` interleaves the columns into lines. Every
step runs in C over whole columns: no Python bytecode runs per sample or per value.
(It is 5x faster than numpy's ``StringDType`` conversions; see bench/lineproto.py.)

Idempotency is the point of the layout: a point's series (measurement + tags)
and timestamp come only from the message itself (topic, type, sample ts, record
index), so when MQTT redelivers a message (delivery is at-least-once) the same
points are written again and overwrite themselves; InfluxDB never holds a
duplicate row.

Escaping: tag values are ids the contract has validated (``[a-z0-9-]``, machine
type names, event kinds, ``[a-z0-9_]`` fault types) and field keys come from its
field tables, so neither is escaped here. String field values are; see
:func:`escape_string`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import orjson

from millwatch.contract import (
    CONTROL_CHARS,
    EVENT_FIELDS,
    EVENT_MEASUREMENT,
    FAULT_FIELDS,
    FAULT_MEASUREMENT,
    MACHINE_TYPES,
    FieldKind,
    GatewayAddress,
    MachineAddress,
    RecordBatch,
    TelemetryBatch,
)

__all__ = [
    "DEAD_LETTER_MEASUREMENT",
    "GATEWAY_MEASUREMENT",
    "INGEST_MEASUREMENT",
    "dead_letter_line",
    "escape_string",
    "gateway_metrics_lines",
    "point_line",
    "readable_text",
    "record_lines",
    "telemetry_lines",
]

#: Gateway self-metrics, in ``contract.INTERNAL_DATABASE``.
GATEWAY_MEASUREMENT: Final = "internal_gateway"
#: Ingest self-metrics, in ``contract.INTERNAL_DATABASE``.
INGEST_MEASUREMENT: Final = "internal_ingest"
#: Messages ingest rejected, in ``contract.INTERNAL_DATABASE``.
DEAD_LETTER_MEASUREMENT: Final = "dead_letter"

NS_PER_MS: Final = 1_000_000
_SD: Final = np.dtypes.StringDType()
_SEP: Final = "\x00"  # never in number text; splits a column's text into pieces
_KEY_SPECIALS: Final = re.compile(r"([,= ])")


def escape_string(value: str) -> str:
    r"""Escape a string field value (without the surrounding quotes).

    ``\`` and ``"`` are backslash-escaped as line protocol requires. Newlines and
    carriage returns become the two-character text ``\n`` / ``\r``: InfluxDB 1.x
    accepts raw newlines inside quotes but 2.x/3.x do not, so this lossy form is
    the one that works everywhere.

    >>> print(escape_string('a "b" \\ c'))
    a \"b\" \\ c
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return escaped.replace("\n", "\\n").replace("\r", "\\r")


def _escape_column(text: np.ndarray) -> np.ndarray:
    for old, new in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r")):
        text = np.strings.replace(text, old, new)
    return text


def _number_pieces(values: np.ndarray, prefix: str, suffix: str) -> list[str]:
    """``prefix + value + suffix`` for each element of a numeric column, in C string ops."""
    contiguous = np.ascontiguousarray(values)  # orjson reads the buffer directly
    body = orjson.dumps(contiguous, option=orjson.OPT_SERIALIZE_NUMPY).decode()[1:-1]
    return (prefix + body.replace(",", suffix + _SEP + prefix) + suffix).split(_SEP)


def _field_pieces(name: str, column: np.ndarray, kind: FieldKind) -> list[str]:
    """Return ``,name=value`` per sample, or ``""`` where the sample lacks a value."""
    if kind is FieldKind.STR:
        objects = np.asarray(column, dtype=object)
        missing = np.equal(objects, None)
        text = _escape_column(np.where(missing, "", objects).astype(_SD))
        pieces = np.strings.add(np.strings.add(f',{name}="', text), '"').tolist()
    else:
        values = np.asarray(column, dtype=np.float64)
        missing = np.isnan(values)
        if kind is FieldKind.INT:
            ints = np.where(missing, 0.0, values).astype(np.int64)
            pieces = _number_pieces(ints, f",{name}=", "i")
        else:
            pieces = _number_pieces(values, f",{name}=", "")
    for index in np.flatnonzero(missing).tolist():  # dropouts only: usually none
        pieces[index] = ""
    return pieces


def _machine_tags(address: MachineAddress, machine_type: str) -> str:
    a = address
    return (
        f"cluster={a.cluster},factory={a.factory},hall={a.hall},machine={a.machine},"
        f"type={machine_type}"
    )


def telemetry_lines(address: MachineAddress, batch: TelemetryBatch) -> str:
    r"""Format a telemetry batch as one line per sample, joined by ``\n``.

    Line: ``{measurement},cluster=..,factory=..,hall=..,machine=..,type=..[,hist=1]
    seq={seq}i,{field}={value}... {ts_ns}``. Floats use the shortest repr that
    round-trips, ``FieldKind.INT`` fields end in ``i``, strings are quoted and
    escaped; a NaN/``None`` drops that field from that line only. ``seq`` is
    always present, so no line is ever empty.

    Fields follow the order of the machine type's field table, so the output
    does not depend on the key order of the payload.

    >>> b = TelemetryBatch("loom_airjet", 7, np.array([1000, 2000]),
    ...                    {"speed_rpm": np.array([812.0, np.nan])})
    >>> print(telemetry_lines(MachineAddress("c1", "f03", "weave1", "l1"), b))
    loom,cluster=c1,factory=f03,hall=weave1,machine=l1,type=loom_airjet seq=7i,speed_rpm=812.0 1000000000
    loom,cluster=c1,factory=f03,hall=weave1,machine=l1,type=loom_airjet seq=7i 2000000000
    """  # noqa: E501
    machine_type = MACHINE_TYPES[batch.machine_type]
    hist = ",hist=1" if batch.historical else ""
    head = f"{machine_type.measurement},{_machine_tags(address, batch.machine_type)}{hist} "
    columns = [[f"{head}seq={batch.seq}i"] * len(batch)]
    for name, kind in machine_type.fields.items():
        column = batch.fields.get(name)
        if column is not None:
            columns.append(_field_pieces(name, column, kind))
    ts_ns = np.asarray(batch.ts_ms, dtype=np.int64) * NS_PER_MS
    columns.append(_number_pieces(ts_ns, " ", ""))
    return "\n".join(map("".join, zip(*columns, strict=True)))


def _scalar(value: Any, kind: FieldKind) -> str:
    if kind is FieldKind.STR:
        return f'"{escape_string(value)}"'
    if kind is FieldKind.INT:
        return f"{int(value)}i"
    return repr(float(value))


def record_lines(address: MachineAddress, batch: RecordBatch, channel: str) -> str:
    """Format an ``event`` or ``fault_label`` batch, one line per record.

    Events go to ``machine_event`` tagged with ``kind``; fault labels go to
    ``fault_label`` tagged with ``fault_type``. A record's timestamp is its
    ``ts`` in ns plus its index in the message, so two records of one message in
    the same millisecond stay two points, and a redelivered message rewrites
    exactly the same points.

    >>> b = RecordBatch("loom_airjet", 4, [{"ts": 5, "kind": "stop", "code": "X"},
    ...                                    {"ts": 5, "kind": "state", "code": "RUN"}])
    >>> print(record_lines(MachineAddress("c1", "f03", "weave1", "l1"), b, "event"))
    machine_event,cluster=c1,factory=f03,hall=weave1,machine=l1,type=loom_airjet,kind=stop seq=4i,code="X" 5000000
    machine_event,cluster=c1,factory=f03,hall=weave1,machine=l1,type=loom_airjet,kind=state seq=4i,code="RUN" 5000001
    """  # noqa: E501
    if channel == "event":
        measurement, tag_key, kinds = EVENT_MEASUREMENT, "kind", EVENT_FIELDS
    elif channel == "fault_label":
        measurement, tag_key, kinds = FAULT_MEASUREMENT, "fault_type", FAULT_FIELDS
    else:
        raise ValueError(f"no record measurement for channel {channel!r}")
    head = f"{measurement},{_machine_tags(address, batch.machine_type)},{tag_key}="
    lines = []
    for index, record in enumerate(batch.records):
        fields = "".join(
            f",{name}={_scalar(record[name], kind)}"
            for name, kind in kinds.items()
            if name != tag_key and record.get(name) is not None
        )
        ts_ns = record["ts"] * NS_PER_MS + index
        lines.append(f"{head}{record[tag_key]} seq={batch.seq}i{fields} {ts_ns}")
    return "\n".join(lines)


def gateway_metrics_lines(
    gateway: GatewayAddress, ts_ms: int, counters: Mapping[str, float]
) -> str:
    """Format a gateway's self-metrics as one ``internal_gateway`` line.

    Every counter is written as a float, so a gateway that sends ``3`` once and
    ``3.5`` later never causes a field type conflict. Counter names must already
    be valid field keys (ingest's decoder checks them).

    >>> print(gateway_metrics_lines(GatewayAddress("c1", "f03", "gw1"), 7, {"sent": 3}))
    internal_gateway,cluster=c1,factory=f03,gateway=gw1 sent=3.0 7000000
    """
    g = gateway
    fields = ",".join(f"{name}={float(counters[name])!r}" for name in sorted(counters))
    tags = f"cluster={g.cluster},factory={g.factory},gateway={g.gateway}"
    return f"{GATEWAY_MEASUREMENT},{tags} {fields} {ts_ms * NS_PER_MS}"


def _escape_key(text: str) -> str:
    return _KEY_SPECIALS.sub(r"\\\1", text)


def point_line(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, float | str], ts_ns: int
) -> str:
    r"""Format one line of derived data (self-metrics, KPIs, anomalies); keys are escaped.

    Numbers are written as floats, so a value that is ``3`` once and ``3.5`` later never
    causes a field type conflict; strings are quoted. Non-finite numbers are skipped
    because line protocol has no NaN.

    >>> print(point_line("internal_ingest", {"worker": "w 1"}, {"acked_total": 2}, 9))
    internal_ingest,worker=w\ 1 acked_total=2.0 9
    >>> print(point_line("anomaly", {"machine": "l1"}, {"signal": 'vib "x"', "z": 4.5}, 9))
    anomaly,machine=l1 signal="vib \"x\"",z=4.5 9
    """
    tag_text = "".join(f",{_escape_key(k)}={_escape_key(v)}" for k, v in sorted(tags.items()))
    field_text = ",".join(
        f'{_escape_key(k)}="{escape_string(v)}"'
        if isinstance(v, str)
        else f"{_escape_key(k)}={float(v)!r}"
        for k, v in fields.items()
        if isinstance(v, str) or math.isfinite(v)
    )
    if not field_text:
        raise ValueError("a line needs at least one string or finite field")
    return f"{_escape_key(measurement)}{tag_text} {field_text} {ts_ns}"


def _hex_escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match[0]):02x}"


def readable_text(value: str | bytes) -> str:
    r"""Text that any InfluxDB stores as a string field, from which ``value`` can be recovered.

    Backslashes are doubled; control characters, and bytes that are not UTF-8,
    become ``\xNN``. Undo it by reading ``\\`` as ``\`` and ``\xNN`` as byte NN.

    >>> print(readable_text(b'{"a":"b\\c"}\n\xff'))
    {"a":"b\\c"}\x0a\xff
    """
    if isinstance(value, bytes):
        text = value.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")
    else:
        text = value.replace("\\", "\\\\").encode("utf-8", "backslashreplace").decode()
    return CONTROL_CHARS.sub(_hex_escape, text)


def dead_letter_line(
    reason: str, factory: str, topic: str, detail: str, payload: bytes, ts_ns: int
) -> str:
    r"""Format one ``dead_letter`` row: a rejected message kept where an operator can query it.

    Tags ``factory`` and ``reason``; string fields ``topic``, ``detail`` and
    ``payload``, each passed through :func:`readable_text` (the caller cuts them
    to size).

    >>> print(dead_letter_line("schema", "f03", "mw/v1/x", 'no "ts"', b"{}", 5))
    dead_letter,factory=f03,reason=schema topic="mw/v1/x",detail="no \"ts\"",payload="{}" 5
    """
    tags = f"factory={_escape_key(factory)},reason={_escape_key(reason)}"
    fields = ",".join(
        f'{key}="{escape_string(readable_text(value))}"'
        for key, value in (("topic", topic), ("detail", detail), ("payload", payload))
    )
    return f"{DEAD_LETTER_MEASUREMENT},{tags} {fields} {ts_ns}"
