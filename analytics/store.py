"""What the analytics service reads from and writes to InfluxDB (v1 ``/query``, ``/write``).

Analytics never scan raw samples twice. Each span of raw rows is aggregated once by
InfluxDB (one ``GROUP BY time(60s)`` query per machine type) and written back as a 60-s
measurement beside the raw one (``loom`` -> ``loom_1m``). That is a plain query and a
write, not ``SELECT ... INTO``, so InfluxDB 2.x/3.x serve it through their v1 API too.
The buckets follow the panel convention of :mod:`analytics.frame` (mean and sd of
analog fields, first/max/last of counters, the mode of ``state_code``) plus ``rows``, the
raw rows behind each bucket. Comparing hourly raw counts with the summed ``rows`` tells
which hours late data reached, without any state in the service. KPIs, detectors and
dashboards then read the small 60-s tables. Writes are line protocol with fixed
timestamps and tags per result, so recomputing a shift or a score overwrites the
previous point instead of adding a second one.

Example
-------
>>> print(downsample_query("hall_env", 0, 120_000))  # doctest: +NORMALIZE_WHITESPACE
SELECT count("seq") AS "rows", mean("temp_c") AS "temp_c", stddev("temp_c") AS "temp_c:sd",
mean("rh_pct") AS "rh_pct", stddev("rh_pct") AS "rh_pct:sd" FROM "hall_env"
WHERE "type" = 'hall_env' AND time >= 0ms AND time < 120000ms
GROUP BY time(60000ms), "cluster", "factory", "hall", "machine", "type" fill(none)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import httpx
import numpy as np

from analytics.events import EventTable
from analytics.frame import Panel
from ingest.lineproto import NS_PER_MS, point_line
from ingest.outputs.influxdb_v1 import InfluxDBv1Output
from millwatch.contract import EVENT_MEASUREMENT, MACHINE_TYPES, FieldKind
from millwatch.influxql import InfluxQL, QueryError, Series

__all__ = [
    "BUCKET_MS",
    "AnalyticsStore",
    "QueryError",
    "downsample_query",
    "panel_columns",
    "rollup_measurement",
]

#: Width of the buckets analytics read (the panel convention).
BUCKET_MS: Final = 60_000
_EVENT_KEYS: Final = ("code", "reason", "duration_s", "batch_id", "step_no", "feeder")


def panel_columns(machine_type: str) -> list[tuple[str, str]]:
    """``(InfluxQL expression, column name)`` pairs of one machine type's panel.

    >>> panel_columns("hall_env")[:2]
    [('mean("temp_c")', 'temp_c'), ('stddev("temp_c")', 'temp_c:sd')]
    """
    columns: list[tuple[str, str]] = []
    for name, kind in MACHINE_TYPES[machine_type].fields.items():
        quoted = f'"{name}"'
        if kind is FieldKind.STR:
            continue
        if name == "state_code":
            columns.append((f"mode({quoted})", name))
        elif name.endswith("_total"):
            columns += [(f"last({quoted})", name), (f"first({quoted})", f"{name}:first")]
            columns.append((f"max({quoted})", f"{name}:max"))
        elif name != "step_no":
            columns += [(f"mean({quoted})", name), (f"stddev({quoted})", f"{name}:sd")]
    return columns


def rollup_measurement(machine_type: str) -> str:
    """The 60-s measurement beside a machine type's raw one.

    >>> rollup_measurement("loom_rapier")
    'loom_1m'
    """
    return f"{MACHINE_TYPES[machine_type].measurement}_1m"


def downsample_query(machine_type: str, start_ms: int, end_ms: int) -> str:
    """InfluxQL that aggregates ``[start_ms, end_ms)`` of raw rows into 60-s buckets."""
    columns = [('count("seq")', "rows"), *panel_columns(machine_type)]
    select = ", ".join(f'{expr} AS "{name}"' for expr, name in columns)
    return (
        f'SELECT {select} FROM "{MACHINE_TYPES[machine_type].measurement}" '
        f"WHERE {_type_and_span(machine_type, start_ms, end_ms)} "
        f'GROUP BY time({BUCKET_MS}ms), "cluster", "factory", "hall", "machine", "type" '
        "fill(none)"
    )


def _type_and_span(machine_type: str, start_ms: int, end_ms: int) -> str:
    return f"\"type\" = '{machine_type}' AND time >= {start_ms}ms AND time < {end_ms}ms"


@dataclass
class AnalyticsStore:
    """Queries and writes of the analytics service against one InfluxDB.

    Parameters
    ----------
    url, token, timeout
        As for ingest's v1 output; 2.x/3.x serve the same v1 API.
    transport
        Injected httpx transport for unit tests.
    """

    url: str
    token: str | None = None
    timeout: float = 60.0
    transport: httpx.BaseTransport | None = None
    #: Hall of each machine seen by :meth:`read_panel`, per database (machine ids repeat
    #: across factories).
    halls: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._influxql = InfluxQL(self.url, self.token, self.timeout, self.transport)
        self._output = InfluxDBv1Output(self.url, self.token, self.timeout, self.transport)

    def close(self) -> None:
        """Release both connection pools."""
        self._influxql.close()
        self._output.close()

    def query(self, db: str, q: str) -> list[Series]:
        """Run InfluxQL in ``db``; times in epoch ms. Raises :class:`QueryError`."""
        return self._influxql.query(db, q)

    def machine_types(self, db: str) -> list[str]:
        """Machine types with data in ``db`` (from the ``type`` tag of every measurement)."""
        found = self.query(db, 'SHOW TAG VALUES WITH KEY = "type"')
        present = {row[1] for s in found for row in s.values}
        return [t for t in MACHINE_TYPES if t in present]

    def downsample(self, db: str, machine_type: str, start_ms: int, end_ms: int) -> int:
        """Aggregate raw rows of ``[start_ms, end_ms)`` into the 60-s table; return buckets.

        Buckets already there are overwritten (same series and time), so a span that
        late data reached is simply downsampled again.
        """
        series = self.query(db, downsample_query(machine_type, start_ms, end_ms))
        measurement = rollup_measurement(machine_type)
        lines = []
        for s in series:
            tags = {k: v for k, v in s.tags.items() if v}
            names = s.columns[1:]
            for row in s.values:
                fields = {n: v for n, v in zip(names, row[1:], strict=True) if v is not None}
                lines.append(point_line(measurement, tags, fields, int(row[0]) * NS_PER_MS))
        return self.write(db, lines)

    def read_panel(self, db: str, machine_type: str, start_ms: int, end_ms: int) -> Panel:
        """One machine type's 60-s panel over ``[start_ms, end_ms)`` (grid from start)."""
        start = start_ms - start_ms % BUCKET_MS
        names = ["rows", *(name for _, name in panel_columns(machine_type))]
        select = ", ".join(f'"{name}"' for name in names)
        series = self.query(
            db,
            f'SELECT {select} FROM "{rollup_measurement(machine_type)}" '
            f'WHERE {_type_and_span(machine_type, start, end_ms)} GROUP BY "hall", "machine"',
        )
        machines, times, columns = _long_rows(series, names)
        known = self.halls.setdefault(db, {})
        for s in series:
            known[s.tags.get("machine", "")] = s.tags.get("hall", "")
        return Panel.from_rows(machines, times, columns, BUCKET_MS, start_ms=start, end_ms=end_ms)

    def read_events(self, db: str, machine_type: str, start_ms: int, end_ms: int) -> EventTable:
        """Events of one machine type in ``[start_ms, end_ms)``.

        Each machine's state at ``start_ms`` comes first: its last state event before
        the span (looked up 14 days back), restamped to ``start_ms``.
        """
        where = f"\"type\" = '{machine_type}' AND time < {end_ms}ms"
        keys = ", ".join(f'"{k}"' for k in _EVENT_KEYS)
        recent = self.query(
            db,
            f'SELECT {keys} FROM "{EVENT_MEASUREMENT}" WHERE {where} '
            f'AND time >= {start_ms}ms GROUP BY "machine", "kind"',
        )
        before = self.query(
            db,
            f'SELECT last("code") AS "code" FROM "{EVENT_MEASUREMENT}" WHERE "kind" = \'state\' '
            f"AND \"type\" = '{machine_type}' AND time < {start_ms}ms "
            f'AND time >= {start_ms - 14 * 86_400_000}ms GROUP BY "machine"',
        )
        records = [r for s in recent for r in _records(s)]
        for s in before:
            for r in _records(s):
                records.append({**r, "ts": start_ms, "kind": "state", "duration_s": None})
        return EventTable.from_records(records)

    def hourly_rows(
        self,
        db: str,
        machine_type: str,
        start_ms: int,
        end_ms: int,
        source: Literal["raw", "rolled_up", "events"],
    ) -> np.ndarray:
        """Rows per hour of ``[start_ms, end_ms)`` (hours counted from ``start_ms``).

        ``raw`` counts raw telemetry rows, ``rolled_up`` sums the 60-s table's ``rows``
        (where the two differ, that hour has rows not yet downsampled), ``events`` counts
        the type's ``machine_event`` rows (events travel apart from telemetry and can be
        late on their own).
        """
        n_hours = -(-(end_ms - start_ms) // 3_600_000)
        source_and_expr = {
            "raw": (MACHINE_TYPES[machine_type].measurement, 'count("seq")'),
            "rolled_up": (rollup_measurement(machine_type), 'sum("rows")'),
            "events": (EVENT_MEASUREMENT, 'count("seq")'),
        }
        measurement, expr = source_and_expr[source]
        series = self.query(
            db,
            f'SELECT {expr} FROM "{measurement}" '
            f"WHERE {_type_and_span(machine_type, start_ms, end_ms)} "
            f"GROUP BY time(1h, {start_ms % 3_600_000}ms) fill(0)",
        )
        counts = np.zeros(n_hours, dtype=np.int64)
        for s in series:
            for row in s.values:
                hour = (int(row[0]) - start_ms) // 3_600_000
                if 0 <= hour < n_hours:
                    counts[hour] += int(row[1] or 0)
        return counts

    def write(self, db: str, lines: Iterable[str]) -> int:
        """Write line-protocol ``lines`` to ``db`` (created when missing); return how many."""
        body = "\n".join(lines)
        if not body:
            return 0
        self._output.ensure_database(db)
        self._output.write(db, body.encode())
        return body.count("\n") + 1


def _records(series: Series) -> Iterable[dict[str, Any]]:
    index = {name: i for i, name in enumerate(series.columns)}
    for row in series.values:
        record = {key: row[index[key]] for key in _EVENT_KEYS if key in index}
        yield {"ts": row[0], **series.tags, **record}


def _long_rows(
    series: Sequence[Series], names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Stack every series' rows into long columns (machine, time, one array per name)."""
    machines: list[np.ndarray] = []
    times: list[np.ndarray] = []
    blocks: list[np.ndarray] = []
    for s in series:
        if not s.values:
            continue
        table = np.array(s.values, dtype=object)
        order = [s.columns.index(name) for name in names]
        blocks.append(np.where(table[:, order] == None, np.nan, table[:, order]).astype(float))  # noqa: E711
        times.append(table[:, 0].astype(np.int64))
        machines.append(np.full(len(table), s.tags.get("machine", "")))
    if not blocks:
        empty = np.zeros(0)
        return np.zeros(0, dtype=str), empty.astype(np.int64), {n: empty for n in names}
    values = np.concatenate(blocks)
    columns = {name: values[:, i] for i, name in enumerate(names)}
    return np.concatenate(machines), np.concatenate(times), columns
