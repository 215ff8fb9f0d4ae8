"""The ``millwatch`` command: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import logging
import os
import runpy
import signal
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from millwatch.servers import Mosquitto, ServerError
from millwatch.stack import ServiceProcess, Stack, StackConfig

#: Subcommands that run a package's own entry point (``python -m <module>``).
MODULES = {name: name for name in ("gateway", "ingest", "analytics", "api", "dashboards")}

STATUS_COLUMNS = (
    ("published", "messages_published_total"),
    ("acked", "messages_acked_total"),
    ("outbox", "outbox_depth"),
    ("received", "messages_received_total"),
    ("lines", "lines_written_total"),
    ("rejected", "messages_rejected_total"),
    ("retries", "write_retries_total"),
    ("unacked", "unacked"),
    ("shift_kpis", "kpi_shifts_computed_total"),
    ("points", "points_written_total"),
    ("alarms", "alarms_raised_total"),
    ("requests", "requests_total"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="millwatch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the local stack with simulated factories")
    up.add_argument("--state-dir", type=Path, default=Path(".millwatch"))
    up.add_argument("--scenario", default="default", help="packaged name or scenario TOML path")
    up.add_argument(
        "--backfill-hours", type=float, default=0.0, help="replay this much history first"
    )
    up.add_argument("--ingest-workers", type=int, default=1)
    up.add_argument("--mqtt-url", default=os.environ.get("MILLWATCH_MQTT_URL"))
    up.add_argument("--influx-url", default=os.environ.get("MILLWATCH_INFLUX_URL"))
    up.add_argument("--mqtt-port", type=int, default=18830, help="port of the broker it starts")
    up.add_argument("--influx-port", type=int, default=18086, help="port of the InfluxDB it starts")
    up.add_argument("--status-every", type=float, default=5.0, help="seconds between status lines")
    up.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    up.add_argument(
        "--analytics-every", type=float, default=60.0, help="seconds between analytics passes"
    )
    up.add_argument(
        "--analytics-min-train-hours",
        type=float,
        default=1.0,
        help="history the anomaly monitor needs before it scores",
    )
    up.add_argument("--api-port", type=int, default=18000, help="port of the cluster API")
    up.add_argument(
        "--no-broker-auth",
        dest="broker_auth",
        action="store_false",
        help="let anyone connect to the broker it starts (default: a login per service)",
    )
    _login_arguments(up)
    sim = commands.add_parser("simulate", help="backfill a scenario's history into a broker")
    sim.add_argument("--scenario", default="default")
    sim.add_argument("--days", type=float, default=7.0)
    sim.add_argument("--backfill", action="store_true", required=True, help="(the only mode)")
    sim.add_argument(
        "--mqtt-url", default=os.environ.get("MILLWATCH_MQTT_URL", "mqtt://127.0.0.1:18830")
    )
    sim.add_argument("--state-dir", type=Path, default=Path(".millwatch"))
    sim.add_argument("--status-every", type=float, default=5.0)
    _login_arguments(sim)
    evaluate = commands.add_parser(
        "eval", help="score anomaly detectors on simulated faults (see --help)", add_help=False
    )
    evaluate.add_argument("args", nargs=argparse.REMAINDER)
    for name in (*MODULES, "chaos"):
        module = MODULES.get(name, f"millwatch.{name}")
        sub = commands.add_parser(
            name, help=f"run {name} (python -m {module}; see its --help)", add_help=False
        )
        sub.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _login_arguments(parser: argparse.ArgumentParser) -> None:
    """Login for a broker given by ``--mqtt-url`` (all services use it)."""
    parser.add_argument(
        "--mqtt-username",
        default=os.environ.get("MILLWATCH_MQTT_USERNAME"),
        help="login at the --mqtt-url broker (env MILLWATCH_MQTT_USERNAME)",
    )
    parser.add_argument(
        "--mqtt-password",
        default=os.environ.get("MILLWATCH_MQTT_PASSWORD"),
        help="its password; prefer env MILLWATCH_MQTT_PASSWORD (a command line is visible)",
    )


def _print_status(stack: Stack) -> None:
    for name, counters in stack.status().items():
        cells = [f"{label}={counters[key]:.0f}" for label, key in STATUS_COLUMNS if key in counters]
        print(f"  {name:<14} {' '.join(cells) or '(no counters yet)'}", flush=True)


def _print_api(stack: Stack) -> None:
    """Where the API listens and the demo credentials it issued."""
    if not stack.wait_for_api():
        print("  api            did not answer /health yet; see api.log", flush=True)
        return
    print(f"  {'api':<14} {stack.api_url}/docs", flush=True)
    if stack.demo_keys_path.exists():
        print(f"  demo keys in {stack.demo_keys_path}:", flush=True)
        for line in stack.demo_keys_path.read_text().splitlines():
            print(f"    {line}", flush=True)
        engineer = tomllib.loads(stack.demo_keys_path.read_text()).get("factory_engineer")
        if engineer:
            print(f"  {'status page':<14} {stack.api_url}/status#key={engineer}", flush=True)


def _supervise(command: str, stack: Stack, body: Callable[[threading.Event], None]) -> int:
    """Run ``body`` until it returns, Ctrl-C or SIGTERM; always stop the stack after."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # A shell that starts us in the background (``cmd &``, CI runners) leaves SIGINT
    # ignored, and Python then never raises KeyboardInterrupt: Ctrl-C or ``kill -INT``
    # must stop the stack cleanly all the same.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        body(stop)
    except KeyboardInterrupt:
        print(f"\nmillwatch {command}: stopping", flush=True)
    except ServerError as exc:
        print(f"millwatch {command}: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stack.stop()
    return 0


def run_up(args: argparse.Namespace) -> int:
    """Start the stack, print live counters until Ctrl-C (or ``--duration``), stop it."""
    config = StackConfig(
        state_dir=args.state_dir.resolve(),
        scenario=args.scenario,
        mqtt_url=args.mqtt_url,
        influx_url=args.influx_url,
        mqtt_port=args.mqtt_port,
        influx_port=args.influx_port,
        ingest_workers=args.ingest_workers,
        analytics_every_s=args.analytics_every,
        analytics_min_train_h=args.analytics_min_train_hours,
        api_port=args.api_port,
        broker_auth=args.broker_auth,
        mqtt_username=args.mqtt_username,
        mqtt_password=args.mqtt_password,
    )
    stack = Stack(config)

    def body(stop: threading.Event) -> None:
        stack.start()
        print(f"millwatch up: state in {config.state_dir}; Ctrl-C stops everything", flush=True)
        for server in stack.servers:
            print(f"  {type(server).__name__.lower():<14} {server.url}", flush=True)
            if isinstance(server, Mosquitto) and server.secured:
                print(f"  {'':<14} logins: {server.password_file}", flush=True)
        _print_api(stack)
        if args.backfill_hours > 0:
            backfill = stack.start_gateways(round(args.backfill_hours * 3600))
            _follow_backfill(stack, backfill, args.status_every, stop)
        stack.start_gateways()
        waited = 0.0
        while not stop.wait(args.status_every):
            stack.check_alive()
            waited += args.status_every
            print(f"-- status after {waited:.0f} s", flush=True)
            _print_status(stack)
            if args.duration is not None and waited >= args.duration:
                break

    return _supervise("up", stack, body)


def _follow_backfill(
    stack: Stack, backfill: list[ServiceProcess], every: float, stop: threading.Event
) -> None:
    """Print progress until every backfill gateway delivered its history and exited."""
    expected = {
        f"backfill-{f.id}": stack.scenario.machine_count(f.id) * stack.backfill_s
        for f in stack.scenario.factories
    }
    started = time.monotonic()
    while not stop.wait(every):
        stack.check_alive()
        exited = {s.name for s in backfill if s.process.poll() == 0}
        done = {
            s.name: expected[s.name] if s.name in exited else s.counters().get("samples_total", 0)
            for s in backfill
        }
        finished = len(exited) == len(backfill)
        share = sum(done.values()) / max(sum(expected.values()), 1)
        rate = sum(done.values()) / (time.monotonic() - started)
        print(f"-- backfill {min(share, 1.0):.0%} ({rate:,.0f} samples/s)", flush=True)
        if finished:
            print("-- backfill delivered; live gateways start", flush=True)
            return


def run_simulate(args: argparse.Namespace) -> int:
    """Backfill ``--days`` of a scenario through its gateways into a running stack's broker."""
    config = StackConfig(
        state_dir=args.state_dir.resolve(),
        scenario=args.scenario,
        mqtt_username=args.mqtt_username,
        mqtt_password=args.mqtt_password,
    )
    stack = Stack(config)

    def body(stop: threading.Event) -> None:
        stack.attach(args.mqtt_url)
        backfill = stack.start_gateways(round(args.days * 86400))
        _follow_backfill(stack, backfill, args.status_every, stop)

    return _supervise("simulate", stack, body)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``millwatch`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per status scrape otherwise
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["eval"]:  # its own parser, --help included
        from analytics.evaluation import main as evaluate  # noqa: PLC0415 - heavy, eval only

        return evaluate(argv[1:])
    if argv[:1] and argv[0] in (*MODULES, "chaos"):  # their own parsers, --help included
        sys.argv = list(argv)
        runpy.run_module(MODULES.get(argv[0], f"millwatch.{argv[0]}"), run_name="__main__")
        return 0
    args = _parser().parse_args(argv)
    if args.command == "up":
        return run_up(args)
    return run_simulate(args)


if __name__ == "__main__":
    sys.exit(main())
