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


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_row_loses_and_duplicates_nothing(row: Row, influxdb: InfluxDB, tmp_path: Path) -> None:
    result = run_row(row, Context(influxdb, tmp_path, SHORT))
    details = "; ".join([*result.failures, *result.notes])
    assert result.passed, f"{row.name}: {result} — {details}"
    assert result.produced > 0 and result.landed == result.produced
