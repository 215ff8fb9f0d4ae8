"""Live status of machines: state, since when, current stop reason, last sample.

Three small InfluxQL queries per factory answer a whole hall: the newest
``state_code`` per machine over the last few minutes of raw telemetry (a machine with
no sample there is offline), and the newest ``state`` and ``stop`` events of the last
week (the state's start is "since", the stop's reason explains a stopped machine).
Every value in a query is a bind parameter.

Example
-------
>>> print(STATE_NAMES[3])
BREAKDOWN
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from pydantic import BaseModel, Field

from millwatch.contract import EVENT_MEASUREMENT, MACHINE_TYPES, STATES
from millwatch.influxql import InfluxQL

__all__ = ["STATE_NAMES", "MachineStatus", "live_status"]

STATE_NAMES: Final = {code: name for name, code in STATES.items()}
#: States in which a stop reason explains why the machine does not run.
STOPPED: Final = frozenset({"STOP_PROCESS", "BREAKDOWN", "SETUP", "WAIT"})
EVENT_LOOKBACK_MS: Final = 7 * 86_400_000


class MachineStatus(BaseModel):
    """What a machine is doing now."""

    online: bool = Field(description="A sample arrived within the offline threshold")
    state: str | None = Field(None, examples=["STOP_PROCESS"], description="Domain state name")
    since: datetime | None = Field(None, description="Start of the current state")
    stop_reason: str | None = Field(None, examples=["WEFT_SHORT"])
    last_seen: datetime | None = Field(None, description="Time of the newest sample")


def _time(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _newest_samples(
    influx: InfluxQL, db: str, machine_types: Iterable[str], since_ms: int
) -> dict[str, tuple[int, int | None]]:
    """``machine -> (time ms, state code or None)`` of the newest raw sample."""
    newest: dict[str, tuple[int, int | None]] = {}
    measurements = {MACHINE_TYPES[t].measurement for t in machine_types}
    for measurement in sorted(measurements):
        field = "state_code" if measurement != "hall_env" else "temp_c"
        for s in influx.query(
            db,
            f'SELECT last("{field}") FROM "{measurement}" WHERE time >= {since_ms}ms '
            'GROUP BY "machine"',
        ):
            ts, value = s.values[0][0], s.values[0][1]
            code = int(value) if field == "state_code" and value is not None else None
            newest[s.tags.get("machine", "")] = (int(ts), code)
    return newest


def _newest_events(influx: InfluxQL, db: str, kind: str, column: str, since_ms: int) -> dict:
    """``machine -> (time ms, value)`` of the newest event of ``kind``."""
    found = influx.query(
        db,
        f'SELECT last("{column}") FROM "{EVENT_MEASUREMENT}" WHERE "kind" = $kind '
        f'AND time >= {since_ms}ms GROUP BY "machine"',
        {"kind": kind},
    )
    return {s.tags.get("machine", ""): (int(s.values[0][0]), s.values[0][1]) for s in found}


def live_status(
    influx: InfluxQL,
    db: str,
    machines: dict[str, str],
    now_ms: int,
    offline_after_ms: int,
) -> dict[str, MachineStatus]:
    """Status of ``machines`` (id -> machine type) in factory database ``db``."""
    samples = _newest_samples(influx, db, set(machines.values()), now_ms - offline_after_ms)
    events_since = now_ms - EVENT_LOOKBACK_MS
    states = _newest_events(influx, db, "state", "code", events_since)
    stops = _newest_events(influx, db, "stop", "reason", events_since)
    out: dict[str, MachineStatus] = {}
    for machine in machines:
        seen_ms, code = samples.get(machine, (None, None))
        state_ms, state_name = states.get(machine, (None, None))
        state = STATE_NAMES.get(code, state_name) if code is not None else state_name
        if seen_ms is None:
            state = None
        stop_ms, reason = stops.get(machine, (None, None))
        current_stop = (
            state in STOPPED
            and stop_ms is not None
            and (state_ms is None or stop_ms >= state_ms - 1000)
        )
        out[machine] = MachineStatus(
            online=seen_ms is not None,
            state=state,
            since=_time(state_ms) if state is not None and state == state_name else None,
            stop_reason=reason if current_stop else None,
            last_seen=_time(seen_ms),
        )
    return out
