"""``python -m millwatch.chaos [--full] [--rows a,b]``: run the fault matrix, print the table.

Needs root (network namespaces, tmpfs) and the Debian packages mosquitto, influxdb,
iproute2, nftables and faketime. Exit code 1 when a row fails.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from millwatch.chaos.rows import FULL, ROWS, SHORT
from millwatch.chaos.runner import run_rows, table


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the chosen rows, print the table and each row's notes."""
    names = [row.name for row in ROWS]
    parser = argparse.ArgumentParser(prog="millwatch chaos", description=__doc__)
    parser.add_argument("--full", action="store_true", help="faults last minutes, not seconds")
    parser.add_argument("--rows", help=f"comma-separated subset of: {','.join(names)}")
    parser.add_argument("--fault-s", type=float, help="override the fault duration")
    parser.add_argument("--work", type=Path, help="keep logs and data here (default: temp)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    chosen = ROWS
    if args.rows:
        wanted = args.rows.split(",")
        unknown = set(wanted) - set(names)
        if unknown:
            parser.error(f"unknown rows: {sorted(unknown)}")
        chosen = tuple(row for row in ROWS if row.name in wanted)
    durations = FULL if args.full else SHORT
    if args.fault_s is not None:
        durations = durations.__class__(
            durations.stream_s, args.fault_s, durations.after_s, durations.drain_timeout_s
        )
    with tempfile.TemporaryDirectory(prefix="millwatch-chaos-") as tmp:
        results = run_rows(chosen, args.work or Path(tmp), durations)
    print(table(results))
    for r in results:
        for line in [*r.failures, *r.notes]:
            print(f"{r.fault}: {line}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
