"""Turn one MQTT message (topic + payload) into line protocol for one database.

All topic and payload validation is delegated to :mod:`millwatch.contract`;
anything it rejects surfaces as :class:`~millwatch.contract.ContractError`,
which the writer counts, dead-letters and acks. A rejected message is kept twice:
as JSON republished on MQTT (:func:`deadletter_payload`, for live subscribers) and
as a ``dead_letter`` row in InfluxDB (:func:`dead_letter_lines`, the durable copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

from ingest import lineproto
from millwatch import contract
from millwatch.contract import ContractError, Topic

__all__ = ["Lines", "dead_letter_lines", "deadletter_payload", "decode_message"]

DEADLETTER_PAYLOAD_BYTES: Final = 4096
#: How much of a rejected message's payload (bytes), topic and detail (characters)
#: a ``dead_letter`` row keeps.
DEAD_LETTER_ROW_CHARS: Final = 1024
#: ``factory`` tag of a dead letter whose topic names no valid factory.
UNKNOWN_FACTORY: Final = "unknown"


@dataclass(frozen=True)
class Lines:
    """Line protocol made from one message: ``count`` lines for ``database``."""

    database: str
    measurement: str
    body: str
    count: int


def decode_message(parsed: Topic, payload: bytes, now: int | None = None) -> Lines:
    """Decode one message whose topic ``contract.parse_topic`` accepted; format its points.

    Machine channels ``telemetry``, ``event`` and ``fault_label`` go to the
    factory's database; gateway ``metrics`` go to ``contract.INTERNAL_DATABASE``.
    Any other channel raises ``ContractError('bad_topic')``.
    """
    if parsed.address is not None:
        address = parsed.address
        database = contract.factory_database(address.factory)
        if parsed.channel == "telemetry":
            batch = contract.decode_telemetry(payload, now)
            measurement = contract.MACHINE_TYPES[batch.machine_type].measurement
            body = lineproto.telemetry_lines(address, batch)
            return Lines(database, measurement, body, len(batch))
        if parsed.channel in ("event", "fault_label"):
            records = contract.decode_records(payload, parsed.channel, now)
            measurement = (
                contract.EVENT_MEASUREMENT
                if parsed.channel == "event"
                else contract.FAULT_MEASUREMENT
            )
            body = lineproto.record_lines(address, records, parsed.channel)
            return Lines(database, measurement, body, len(records))
    elif parsed.gateway is not None and parsed.channel == "metrics":
        ts_ms, counters = contract.decode_metrics(payload, now)
        body = lineproto.gateway_metrics_lines(parsed.gateway, ts_ms, counters)
        return Lines(contract.INTERNAL_DATABASE, lineproto.GATEWAY_MEASUREMENT, body, 1)
    raise ContractError("bad_topic", f"ingest does not consume channel {parsed.channel!r}")


def deadletter_payload(topic: str, error: ContractError, payload: bytes) -> bytes:
    """JSON republished on ``contract.deadletter_topic(reason)`` for a rejected message.

    The original payload is cut to its first 4 KiB and decoded leniently, so a
    binary or oversize message still yields a readable, bounded dead letter.
    """
    head = payload[:DEADLETTER_PAYLOAD_BYTES].decode("utf-8", errors="replace")
    doc = {"topic": topic, "reason": error.reason, "detail": error.detail, "payload": head}
    return orjson.dumps(doc)


def dead_letter_lines(topic: str, error: ContractError, payload: bytes, received_ns: int) -> Lines:
    """The ``dead_letter`` row that keeps a rejected message in ``contract.INTERNAL_DATABASE``.

    MQTT drops a dead letter nobody subscribes to, so this row is the copy that
    lasts. Its time is ``received_ns`` (when ingest received the message; unique
    per worker), its ``factory`` tag comes from the topic when it parses.

    >>> error = ContractError("schema", "no ts")
    >>> print(dead_letter_lines("mw/v1/c1/f03/weave1/l1/event", error, b"{}", 7).body)
    dead_letter,factory=f03,reason=schema topic="mw/v1/c1/f03/weave1/l1/event",detail="no ts",payload="{}" 7
    """  # noqa: E501
    try:
        parsed = contract.parse_topic(topic)
    except ContractError:
        factory = UNKNOWN_FACTORY
    else:
        where = parsed.address or parsed.gateway
        factory = where.factory if where is not None else UNKNOWN_FACTORY
    n = DEAD_LETTER_ROW_CHARS
    line = lineproto.dead_letter_line(
        error.reason, factory, topic[:n], error.detail[:n], payload[:n], received_ns
    )
    return Lines(contract.INTERNAL_DATABASE, lineproto.DEAD_LETTER_MEASUREMENT, line, 1)
