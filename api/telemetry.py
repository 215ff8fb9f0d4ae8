"""Downsampled telemetry of one machine, built only from the data contract's names.

Field names are checked against the machine type's fields before a query is formed,
and the machine id travels as a bind parameter, so no request text ever becomes
InfluxQL. Long ranges read the 60-s tables the analytics service keeps (a day of a
signal is 1,440 rows there instead of 86,400), short ones the raw samples.

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
from typing import Final, Literal

from millwatch.contract import MACHINE_TYPES, FieldKind

__all__ = ["Aggregate", "numeric_fields", "pick_interval_s", "telemetry_query"]

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
