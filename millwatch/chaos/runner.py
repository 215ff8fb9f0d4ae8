"""Run rows against one InfluxDB and format the report table.

>>> from millwatch.chaos.rows import Result
>>> print(table([Result("broker_down", 120, 120, 0, 0, 1.25)]))
| fault       | produced | landed | lost | duplicates | recovery s | status |
|-------------|----------|--------|------|------------|------------|--------|
| broker_down |      120 |    120 |    0 |          0 |        1.2 | pass   |
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterable
from pathlib import Path

from millwatch.chaos.rows import Context, Durations, Result, Row
from millwatch.servers import InfluxDB

log = logging.getLogger(__name__)


def run_row(row: Row, ctx: Context) -> Result:
    """Run one row; an exception becomes a failed result carrying the error."""
    start = time.monotonic()
    try:
        result = row.run(ctx)
    except Exception as exc:  # a broken row must not stop the matrix
        log.error("row %s raised\n%s", row.name, traceback.format_exc())
        result = Result(row.name, failures=[f"raised {type(exc).__name__}: {exc}"])
    result.notes.append(f"row took {time.monotonic() - start:.0f} s")
    return result


def run_rows(rows: Iterable[Row], work: Path, durations: Durations) -> list[Result]:
    """Start one InfluxDB under ``work`` and run ``rows`` in order."""
    results = []
    with InfluxDB(work / "influxdb") as influx:
        for row in rows:
            results.append(run_row(row, Context(influx, work / "rows", durations)))
            log.info("row %s done: %s", row.name, results[-1])
    return results


def table(results: Iterable[Result]) -> str:
    """A Markdown table: fault, produced, landed, lost, duplicates, recovery s, status."""
    head = ("fault", "produced", "landed", "lost", "duplicates", "recovery s", "status")
    lines = []
    for r in results:
        recovery = "-" if r.recovery_s is None else f"{r.recovery_s:.1f}"
        status = "pass" if r.passed else "FAIL"
        lines.append((r.fault, r.produced, r.landed, r.lost, r.duplicates, recovery, status))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=True)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        cells = [
            str(c).ljust(w) if i in (0, 6) else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)
