"""Throughput benchmark: InfluxDB's own write ceiling, then gateway → Mosquitto → ingest → InfluxDB.

Both run in one process tree on this machine, in the same run, so the ratio between them
is what the pipeline costs. Every machine's rows and sequence numbers are reconciled at
the end (lost, duplicates). Usage::

    .venv/bin/python bench/throughput.py [--factories 2] [--looms 100] [--ticks 1500]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from gateway.inputs.simulator.plugin import adhoc_scenario
from ingest.lineproto import telemetry_lines
from millwatch import contract
from millwatch.servers import InfluxDB, Mosquitto, free_port
from millwatch.stack import ServiceProcess
from simulators.fleet import Fleet

START_MS = contract.now_ms() - 3 * 24 * 3600 * 1000


def _loom_fleet(looms: int, seed: int, factory: str) -> Fleet:
    """The same looms the gateways simulate (``machines`` table, seed = factory index)."""
    scenario = adhoc_scenario({"loom_airjet": looms}, "c1", seed)
    return Fleet(scenario, "adhoc", address_factory=factory)


def _loom_bodies(factories: int, looms: int, ticks: int, lines_per_body: int) -> list[bytes]:
    """Line protocol of the same simulated looms the end-to-end run publishes."""
    bodies, pending = [], []
    for index in range(factories):
        fleet = _loom_fleet(looms, index, f"f{index + 1:02d}")
        readings = [fleet.step(START_MS + k * 1000)[0] for k in range(ticks)]
        ts = np.array([r.ts_ms for r in readings])
        stacked = {
            name: np.stack([r.fields[name] for r in readings]) for name in readings[0].fields
        }
        for j, address in enumerate(readings[0].machines):
            columns = {name: values[:, j] for name, values in stacked.items()}
            batch = contract.TelemetryBatch("loom_airjet", j, ts, columns)
            pending.append(telemetry_lines(address, batch))
            if len(pending) * ticks >= lines_per_body:
                bodies.append("\n".join(pending).encode())
                pending = []
    if pending:
        bodies.append("\n".join(pending).encode())
    return bodies


def measure_ceiling(influx: InfluxDB, bodies: list[bytes], lines: int, workers: int) -> float:
    """Lines/s InfluxDB accepts through batched ``/write`` from ``workers`` threads."""
    with httpx.Client(base_url=influx.url, timeout=60) as client:
        client.post("/query", params={"q": "CREATE DATABASE bench_ceiling"})

        def write(body: bytes) -> None:
            response = client.post("/write", params={"db": "bench_ceiling"}, content=body)
            response.raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(write, bodies))
        return lines / (time.perf_counter() - started)


def _gateway_config(
    folder: Path,
    factory: str,
    index: int,
    args: argparse.Namespace,
    broker: Mosquitto,
    metrics_port: int,
) -> Path:
    path = folder / f"gateway-{factory}.toml"
    path.write_text(
        f'cluster = "c1"\nfactory = "{factory}"\ngateway_id = "gw1"\n'
        f'mqtt_host = "{broker.host}"\nmqtt_port = {broker.port}\n'
        f'outbox_path = "{folder / f"outbox-{factory}.sqlite"}"\n'
        f"metrics_port = {metrics_port}\nfast_forward = true\nstart_ts_ms = {START_MS}\n"
        f"max_ticks = {args.ticks}\nsamples_per_message = {args.samples_per_message}\n"
        f"max_unacked = 2000\n\n"
        f"[inputs.simulator]\nmachines = {{ loom_airjet = {args.looms} }}\nseed = {index}\n"
    )
    return path


def _spawn(
    name: str, argv: list[str], env: dict[str, str], port: int, logs: Path
) -> ServiceProcess:
    log = (logs / f"{name}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, *argv], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )
    return ServiceProcess(name, process, port)


def run_end_to_end(
    args: argparse.Namespace, broker: Mosquitto, influx: InfluxDB, folder: Path
) -> tuple[float, float, dict[str, float]]:
    """Publish every tick of every factory through the pipeline.

    Returns lines/s timed from the gateways' start (their start-up included), lines/s from
    the first line written to the last (steady state), and ingest's counters.
    """
    expected = args.factories * args.looms * args.ticks
    ingest_port = free_port()
    ingest_env = {
        "MILLWATCH_INGEST_MQTT_HOST": broker.host,
        "MILLWATCH_INGEST_MQTT_PORT": str(broker.port),
        "MILLWATCH_INGEST_INFLUX_URL": influx.url,
        "MILLWATCH_INGEST_METRICS_PORT": str(ingest_port),
    }
    services = [_spawn("ingest", ["-m", "ingest"], ingest_env, ingest_port, folder)]
    time.sleep(2)  # let ingest subscribe before data flows
    started = time.perf_counter()
    for index in range(args.factories):
        factory, port = f"f{index + 1:02d}", free_port()
        config = _gateway_config(folder, factory, index, args, broker, port)
        services.append(_spawn(factory, ["-m", "gateway", "-c", str(config)], {}, port, folder))
    written, last_print, deadline = 0.0, 0.0, time.monotonic() + args.timeout
    first_at, first_lines = 0.0, 0.0
    try:
        while written < expected and time.monotonic() < deadline:
            time.sleep(0.2)
            written = _telemetry_lines(services[0])
            if not first_at and written:
                first_at, first_lines = time.perf_counter(), written
            if time.monotonic() - last_print > 5:
                print(f"  progress: {written:,.0f} / {expected:,} loom lines written", flush=True)
                last_print = time.monotonic()
        finished = time.perf_counter()
        totals = {s.name: s.counters() for s in services}
    finally:
        for service in services:
            service.process.terminate()
            service.process.wait(timeout=30)
    steady = (written - first_lines) / max(finished - first_at, 1e-9)
    return written / (finished - started), steady, totals.get("ingest", {})


def _telemetry_lines(ingest: ServiceProcess) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{ingest.metrics_port}/metrics", timeout=1).text
    except httpx.HTTPError:
        return 0.0
    for line in text.splitlines():
        if line.startswith('millwatch_ingest_lines_written_total{measurement="loom"}'):
            return float(line.split()[-1])
    return 0.0


def reconcile(influx: InfluxDB, args: argparse.Namespace) -> tuple[int, int, int, int]:
    """Return landed rows, lost rows, duplicate rows and missing seqs over every machine."""
    landed = lost = duplicates = missing_seqs = 0
    messages_per_machine = -(-args.ticks // args.samples_per_message)
    with httpx.Client(base_url=influx.url, timeout=60) as client:
        for index in range(args.factories):
            db = contract.factory_database(f"f{index + 1:02d}")
            q = "SELECT count(seq), count(distinct(seq)) FROM loom GROUP BY machine"
            series = client.get("/query", params={"db": db, "q": q}).json()["results"][0]
            rows = {s["tags"]["machine"]: s["values"][0][1:] for s in series.get("series", [])}
            for j in range(1, args.looms + 1):
                count, distinct = rows.get(f"l{j:04d}", (0, 0))
                landed += count
                lost += max(args.ticks - count, 0)
                duplicates += max(count - args.ticks, 0)
                missing_seqs += max(messages_per_machine - distinct, 0)
    return landed, lost, duplicates, missing_seqs


def main() -> None:
    """Run both measurements and print the figures and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--factories", type=int, default=2)
    parser.add_argument("--looms", type=int, default=100, help="looms per factory")
    parser.add_argument("--ticks", type=int, default=1500, help="seconds of data per loom")
    parser.add_argument("--samples-per-message", type=int, default=100)
    parser.add_argument("--ceiling-workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    lines = args.factories * args.looms * args.ticks
    width = len(_loom_fleet(1, 0, "f01").step(START_MS)[0].fields) + 1  # the signals and seq
    print(
        f"bench: {args.factories} factories x {args.looms} looms x {args.ticks} s = "
        f"{lines:,} loom lines of {width} fields, {args.samples_per_message} samples per message"
    )
    with tempfile.TemporaryDirectory(prefix="millwatch-bench-") as tmp:
        folder = Path(tmp)
        with Mosquitto(folder / "mosquitto") as broker, InfluxDB(folder / "influxdb") as influx:
            bodies = _loom_bodies(args.factories, args.looms, args.ticks, 5000)
            ceiling = measure_ceiling(influx, bodies, lines, args.ceiling_workers)
            print(f"ceiling   direct /write, 5000-line batches: {ceiling:>10,.0f} lines/s")
            rate, steady, counters = run_end_to_end(args, broker, influx, folder)
            print(
                f"pipeline  gateway→mosquitto→ingest→influx: {rate:>10,.0f} lines/s "
                f"({rate * width:,.0f} values/s), from the gateways' start"
            )
            print(
                f"pipeline  steady state, first to last line: {steady:>10,.0f} lines/s "
                f"({steady * width:,.0f} values/s)"
            )
            print(f"ratio     pipeline / ceiling:               {rate / ceiling:>10.2f}")
            landed, lost, duplicates, missing_seqs = reconcile(influx, args)
            print(
                f"reconcile produced={lines:,} landed={landed:,} lost={lost} "
                f"duplicates={duplicates} missing_seqs={missing_seqs}"
            )
            print(
                f"ingest    rejected={counters.get('messages_rejected_total', 0):.0f} "
                f"write_retries={counters.get('write_retries_total', 0):.0f}"
            )
    sys.exit(0 if lost == duplicates == missing_seqs == 0 else 1)


if __name__ == "__main__":
    main()
