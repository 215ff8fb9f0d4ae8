"""Downsampled telemetry of one machine, built only from the data contract's names.

Field names are checked against the machine type's fields before a query is formed,
and the machine id travels as a bind parameter, so no request text ever becomes
InfluxQL. Long ranges read the 60-s tables the analytics service keeps (a day of a
signal is 1,440 rows there instead of 86,400), short ones the raw samples. The 60-s
tables trail the raw data by a few minutes (hours right after a backfill), so a long
range reads them up to their newest bucket and the raw samples after it.

Example
-------
>>> pick_interval_s(86_400, max_points=1_000)
120
>>> print(telemetry_query("loom", ["speed_rpm"], "mean", 0, 3_600_000, 60))
... # doctest: +NORMALIZE_WHITESPACE
SELECT mean("speed_rpm") AS "speed_rpm" FROM "loom" WHERE "machine" = $machine
AND time >= 0ms AND time < 3600000ms GROUP BY time(60s, 0ms) fill(none)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

from millwatch.contract import MACHINE_TYPES, FieldKind
from millwatch.influxql import InfluxQL

__all__ = [
    "Aggregate",
    "numeric_fields",
    "pick_interval_s",
    "read_buckets",
    "telemetry_query",
    "uses_rollup",
]

Aggregate = Literal["mean", "min", "max", "last"]
#: Bucket widths an automatic interval rounds up to (seconds).
NICE_INTERVALS_S: Final = (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
#: Ranges longer than this read the 60-s tables when the interval allows.
ROLLUP_AFTER_S: Final = 6 * 3600


def numeric_fields(machine_type: str) -> list[str]:
    """Fields of ``machine_type`` that have numbers (strings such as batch ids excluded)."""
    return [n for n, k in MACHINE_TYPES[machine_type].fields.items() if k is not FieldKind.STR]


def pick_interval_s(span_s: float, max_points: int) -> int:
    """The smallest nice bucket width that keeps ``span_s`` within ``max_points`` buckets."""
    for interval in NICE_INTERVALS_S:
        if span_s / interval <= max_points:
            return interval
    return NICE_INTERVALS_S[-1]


def uses_rollup(span_s: float, interval_s: int, aggregate: Aggregate) -> bool:
    """Whether the 60-s table answers exactly: it keeps means and counters' last values."""
    return span_s > ROLLUP_AFTER_S and interval_s % 60 == 0 and aggregate in ("mean", "last")


def telemetry_query(
    measurement: str,
    fields: Sequence[str],
    aggregate: Aggregate,
    start_ms: int,
    end_ms: int,
    interval_s: int,
) -> str:
    """InfluxQL for ``fields`` of one machine (bind ``$machine``) in buckets of ``interval_s``.

    Buckets start at ``start_ms`` (not at multiples of the interval since 1970), so a
    range asked for gets whole buckets.

    ``fields`` must already be checked against the contract (:func:`numeric_fields`).
    """
    select = ", ".join(f'{aggregate}("{f}") AS "{f}"' for f in fields)
    return (
        f'SELECT {select} FROM "{measurement}" WHERE "machine" = $machine '
        f"AND time >= {start_ms}ms AND time < {end_ms}ms "
        f"GROUP BY time({interval_s}s, {start_ms % (interval_s * 1000)}ms) fill(none)"
    )


def read_buckets(
    influx: InfluxQL,
    db: str,
    machine: str,
    measurement: str,
    fields: Sequence[str],
    aggregate: Aggregate,
    start_ms: int,
    end_ms: int,
    interval_s: int,
) -> tuple[list[list[Any]], str]:
    """Rows ``[time, *fields]`` of one machine's buckets and where they came from.

    With the 60-s table (:func:`uses_rollup`) the grid starts at a whole minute, the
    table answers up to the last bucket boundary it covers, and raw samples the rest.
    """
    params = {"machine": machine}
    span_s = (end_ms - start_ms) / 1000
    if not uses_rollup(span_s, interval_s, aggregate):
        q = telemetry_query(measurement, fields, aggregate, start_ms, end_ms, interval_s)
        found = influx.query(db, q, params)
        return (found[0].values if found else []), "raw"
    start_ms -= start_ms % 60_000
    newest = influx.query(
        db,
        f'SELECT last("rows") FROM "{measurement}_1m" WHERE "machine" = $machine '
        f"AND time >= {start_ms}ms AND time < {end_ms}ms",
        params,
    )
    step = interval_s * 1000
    covered = int(newest[0].values[0][0]) + 60_000 - start_ms if newest else 0
    boundary = min(start_ms + covered // step * step, end_ms)
    rows: list[list[Any]] = []
    parts = []
    for table, lo, hi in (
        (f"{measurement}_1m", start_ms, boundary),
        (measurement, boundary, end_ms),
    ):
        if lo < hi:
            found = influx.query(
                db, telemetry_query(table, fields, aggregate, lo, hi, interval_s), params
            )
            rows += found[0].values if found else []
            parts.append("1m" if table.endswith("_1m") else "raw")
    return rows, "+".join(parts)
