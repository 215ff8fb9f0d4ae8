"""Live status of machines: state, since when, current stop reason, last sample.

One request to InfluxDB answers a whole factory: the newest ``state_code`` per machine
over the last few minutes of raw telemetry (a machine with no sample there is offline),
and the newest ``state`` and ``stop`` events of the last week (the state's start is
"since", the stop's reason explains a stopped machine). Every value in a query is a bind
parameter. :class:`StatusCache` computes a factory's status at most once per second or
two however many clients ask: samples arrive once a second, so nobody sees the difference.

Example
-------
>>> print(STATE_NAMES[3])
BREAKDOWN
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, Field

from api.memo import ttl_memo
from millwatch.contract import EVENT_MEASUREMENT, MACHINE_TYPES, STATES, now_ms
from millwatch.influxql import InfluxQL, Series

__all__ = ["STATE_NAMES", "MachineStatus", "StatusCache", "live_status", "status_queries"]

STATE_NAMES: Final = {code: name for name, code in STATES.items()}
#: States in which a stop reason explains why the machine does not run.
STOPPED: Final = frozenset({"STOP_PROCESS", "BREAKDOWN", "SETUP", "WAIT"})
EVENT_LOOKBACK_MS: Final = 7 * 86_400_000
#: Field whose newest value says a machine reports; the rest report ``state_code``.
_SAMPLE_FIELD: Final = {"hall_env": "temp_c"}


class MachineStatus(BaseModel):
    """What a machine is doing now."""

    online: bool = Field(description="A sample arrived within the offline threshold")
    state: str | None = Field(None, examples=["STOP_PROCESS"], description="Domain state name")
    since: datetime | None = Field(None, description="Start of the current state")
    stop_reason: str | None = Field(None, examples=["WEFT_SHORT"])
    last_seen: datetime | None = Field(None, description="Time of the newest sample")


def _time(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _latest(series: list[Series]) -> dict[str, tuple[int, Any]]:
    """``machine -> (time ms, value)`` of ``last()`` results grouped by machine."""
    return {s.tags.get("machine", ""): (int(s.values[0][0]), s.values[0][1]) for s in series}


def status_queries(measurements: Iterable[str], now_ms: int, offline_after_ms: int) -> list[str]:
    """The statements :func:`live_status` sends in one request (bind ``$state``, ``$stop``).

    >>> len(status_queries(["loom", "hall_env"], 10**12, 300_000))
    4
    """
    since = now_ms - offline_after_ms
    events_since = now_ms - EVENT_LOOKBACK_MS
    events = f'FROM "{EVENT_MEASUREMENT}" WHERE time >= {events_since}ms AND "kind" = '
    return [
        *(
            f'SELECT last("{_SAMPLE_FIELD.get(m, "state_code")}") FROM "{m}" '
            f'WHERE time >= {since}ms GROUP BY "machine"'
            for m in measurements
        ),
        f'SELECT last("code") {events}$state GROUP BY "machine"',
        f'SELECT last("reason") {events}$stop GROUP BY "machine"',
    ]


def live_status(
    influx: InfluxQL,
    db: str,
    machines: dict[str, str],
    now_ms: int,
    offline_after_ms: int,
) -> dict[str, MachineStatus]:
    """Status of ``machines`` (id -> machine type) in factory database ``db``."""
    measurements = sorted({MACHINE_TYPES[t].measurement for t in machines.values()})
    found = influx.query_many(
        db,
        status_queries(measurements, now_ms, offline_after_ms),
        {"state": "state", "stop": "stop"},
    )
    samples: dict[str, tuple[int, Any]] = {}
    for measurement, series in zip(measurements, found, strict=False):
        samples.update(
            {
                m: (ts, v if measurement != "hall_env" else None)
                for m, (ts, v) in _latest(series).items()
            }
        )
    states, stops = _latest(found[-2]), _latest(found[-1])
    out: dict[str, MachineStatus] = {}
    for machine in machines:
        seen_ms, value = samples.get(machine, (None, None))
        code = int(value) if value is not None else None
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


class StatusCache:
    """Live status per factory and machine set, shared for ``ttl_s`` by every request.

    Concurrent requests for the same key wait for the one computation under way
    instead of each querying InfluxDB (no stampede when the entry expires).
    """

    def __init__(self, influx: InfluxQL, ttl_s: float, offline_after_ms: int) -> None:
        self._influx = influx
        self._offline_after_ms = offline_after_ms
        self._lookup = ttl_memo(self._compute, ttl_s)

    def _compute(self, db: str, machines: tuple[tuple[str, str], ...]) -> dict[str, MachineStatus]:
        return live_status(self._influx, db, dict(machines), now_ms(), self._offline_after_ms)

    def get(self, db: str, machines: dict[str, str]) -> dict[str, MachineStatus]:
        """Status of ``machines`` (id -> machine type) in ``db``, at most ``ttl_s`` old."""
        return self._lookup(db, tuple(sorted(machines.items())))
