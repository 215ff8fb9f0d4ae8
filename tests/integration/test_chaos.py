"""Issue #7 fault matrix, every row short (seconds): real processes, real faults.

Each row starts its own Mosquitto, an ingest process and gateway processes on the session's
InfluxDB (fresh databases per row), breaks one thing, heals it and reconciles every
machine's seqs end to end (:mod:`millwatch.chaos`). Needs root: network namespaces, nftables
and a tmpfs mount; a row that cannot run here fails and says why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from millwatch.chaos import ROWS, SHORT, Context, Row
from millwatch.chaos.runner import run_row
from millwatch.servers import InfluxDB

#: Rows that fail today because the product lacks a policy (reported to the lead).
KNOWN_FAILING = {"disk_full"}


PASSING = [row for row in ROWS if row.name not in KNOWN_FAILING]


@pytest.mark.parametrize("row", PASSING, ids=[row.name for row in PASSING])
def test_row_loses_and_duplicates_nothing(row: Row, influxdb: InfluxDB, tmp_path: Path) -> None:
    result = run_row(row, Context(influxdb, tmp_path, SHORT))
    details = "; ".join([*result.failures, *result.notes])
    assert result.passed, f"{row.name}: {result} — {details}"
    assert result.produced > 0 and result.landed == result.produced


def test_disk_full_today_loses_flushes_without_a_seq_gap(
    influxdb: InfluxDB, tmp_path: Path
) -> None:
    """NOT a passing row: documents today's data loss on a full outbox disk.

    Each failed flush is logged and counted (``outbox_dropped_total{policy="error"}``)
    but its seqs are handed out again, so no seq gap shows it. Once the gateway has a
    disk-full policy this assertion fails: then move the row to the passing set.
    """
    row = next(r for r in ROWS if r.name == "disk_full")
    result = run_row(row, Context(influxdb, tmp_path, SHORT))
    assert result.produced > 0
    assert result.lost > 0, f"disk_full now loses nothing: move it to the passing rows {result}"
