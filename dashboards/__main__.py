"""``python -m dashboards`` (``millwatch dashboards``): build the JSON, push it to Grafana.

``build [--out DIR]`` writes the dashboards and provisioning files (default: this
package's directory, i.e. the committed copies). ``push --url URL --token TOKEN``
uploads them to a running Grafana, one folder per factory.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dashboards.build import PACKAGE_DIR, build
from dashboards.provisioning import DEFAULT_DASHBOARDS_PATH, DEFAULT_INFLUX_URL
from dashboards.push import push
from simulators.scenario import load_scenario


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="millwatch dashboards", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="write dashboard JSON and provisioning files")
    b.add_argument("--out", type=Path, default=PACKAGE_DIR, help="output directory")
    b.add_argument("--scenario", default="default", help="whose factories get data sources")
    b.add_argument("--influx-url", default=DEFAULT_INFLUX_URL, help="InfluxDB as Grafana sees it")
    b.add_argument(
        "--dashboards-path",
        default=DEFAULT_DASHBOARDS_PATH,
        help="directory on the Grafana host the provider reads json/ from",
    )
    p = commands.add_parser("push", help="upload to a running Grafana (idempotent)")
    p.add_argument("--url", required=True, help="Grafana base URL, e.g. http://localhost:3000")
    p.add_argument(
        "--token",
        default=os.environ.get("GRAFANA_TOKEN"),
        help="service account token (default: $GRAFANA_TOKEN)",
    )
    p.add_argument("--factories", nargs="+", help="factory ids (default: the scenario's)")
    p.add_argument("--scenario", default="default")
    p.add_argument(
        "--influx-url",
        default=None,
        help="also create/update the data sources, pointing at this InfluxDB URL",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; return the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "build":
        written = build(
            args.out,
            scenario=args.scenario,
            influx_url=args.influx_url,
            dashboards_path=args.dashboards_path,
        )
        for path in written:
            print(path)
        return 0
    if not args.token:
        print("push needs --token or GRAFANA_TOKEN", file=sys.stderr)
        return 2
    factories = args.factories or [f.id for f in load_scenario(args.scenario).factories]
    report = push(args.url, args.token, factories, influx_url=args.influx_url)
    print(
        f"pushed {len(report.dashboards)} dashboards into {len(report.folders)} folders"
        f" ({len(report.datasources)} data sources)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
