"""API benchmark: machine status, KPI and telemetry requests under concurrent clients.

A real InfluxDB in a temporary directory is filled with three simulated knitting mills
(``tests/integration/apirig.py``: 2 h of history each, one analytics pass) and the API runs
as its own process (uvicorn, one worker) over a SQLite file copy of the rig's registry.
``--clients`` clients in one asyncio loop (a minimal keep-alive HTTP/1.1 client, so the
load generator takes little of the cores it shares with what it measures) then send, for
``--seconds`` each after ``--warmup``:

* ``GET /v1/machines?limit=100``: live status of a factory's 25 machines;
* ``GET /v1/kpis?level=factory``: the factory's shift KPIs of the last 24 h;
* ``GET /v1/machines/k0002/telemetry?field=speed_rpm&interval_s=60``: the data's last hour;

rotating the three factories' engineer keys. Each runs closed-loop (each client sends its
next request when the previous one answered: req/s is the capacity) and then paced at
``--rate`` requests/s (latency from the scheduled send time). Beside each run, in the same
run and with the same clients, the very InfluxQL that endpoint sends (recorded from the
API's own query functions) goes straight to InfluxDB's ``/query``, so the ratio is what the
API adds. The CPU each process used is printed too (100 % = one core). Everything listens
on 127.0.0.1. The history ends when the fill starts and the API calls a machine offline
5 min after its last sample, so the status runs go first, while every machine is online
(with the default ``--seconds``). Usage::

    .venv/bin/python bench/api.py [--seconds 20] [--clients 50] [--rate 200] [--warmup 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the rig lives in tests/, which is not an installed package

import argparse  # noqa: E402
import asyncio  # noqa: E402
import itertools  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlencode, urlsplit  # noqa: E402

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import orjson  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from api.kpis import read_shift_rows  # noqa: E402
from api.models import Machine  # noqa: E402
from api.params import DEFAULT_SPAN  # noqa: E402
from api.status import live_status  # noqa: E402
from api.telemetry import telemetry_query  # noqa: E402
from millwatch.contract import MACHINE_TYPES, factory_database, now_ms  # noqa: E402
from millwatch.servers import InfluxDB, free_port  # noqa: E402
from tests.integration.apirig import FACTORIES, ApiRig, build_rig  # noqa: E402

TARGET_P99_MS = 100.0
TARGET_RPS = 200.0
MACHINE = "k0002"
OFFLINE_AFTER_MS = 300_000  # ApiSettings.offline_after_s
HOUR_MS = 3_600_000
REQUEST_TIMEOUT_S = 30.0
LAUNCHER = """
import sys, uvicorn
from api.app import create_app
from api.settings import ApiSettings
uvicorn.run(create_app(ApiSettings()), host="127.0.0.1", port=int(sys.argv[1]),
            log_level="warning")
"""
CLK_TCK = os.sysconf("SC_CLK_TCK")

Query = tuple[str, str, dict[str, Any]]  # database, InfluxQL, bind parameters


@dataclass
class Result:
    """Latencies (s) of the answered requests of one scenario, errors and the wall time."""

    name: str
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors.total()

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed_s if self.elapsed_s else 0.0

    def ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


class Recorder:
    """Stands in for ``InfluxQL``: keeps the queries the API's functions would send."""

    def __init__(self) -> None:
        self.queries: list[Query] = []

    def query(self, db: str, q: str, params: dict[str, Any] | None = None) -> list[Any]:
        self.queries.append((db, q, dict(params or {})))
        return []

    def query_many(
        self, db: str, statements: list[str], params: dict[str, Any] | None = None
    ) -> list[list[Any]]:
        self.queries.append((db, ";\n".join(statements), dict(params or {})))
        return [[] for _ in statements]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _machine_types(rig: ApiRig, factory: str) -> dict[str, str]:
    with rig.database.session() as session:
        rows = session.execute(sa.select(Machine).where(Machine.factory_id == factory))
        return {m.id: m.machine_type for m in rows.scalars()}


def status_queries(rig: ApiRig, factory: str) -> list[Query]:
    """What ``GET /v1/machines`` sends for ``factory`` now (api.status.live_status)."""
    recorder = Recorder()
    live_status(
        recorder,  # type: ignore[arg-type]
        factory_database(factory),
        _machine_types(rig, factory),
        now_ms(),
        OFFLINE_AFTER_MS,
    )
    return recorder.queries


def kpi_queries(_rig: ApiRig, factory: str) -> list[Query]:
    """What ``GET /v1/kpis?level=factory`` (last 24 h) sends (api.kpis.read_shift_rows)."""
    recorder = Recorder()
    end = now_ms()
    start = end - int(DEFAULT_SPAN.total_seconds() * 1000)
    filters = {"hall": None, "type": None, "machine": None}
    read_shift_rows(recorder, factory_database(factory), start, end, filters)  # type: ignore[arg-type]
    return recorder.queries


def telemetry_queries(rig: ApiRig, factory: str) -> list[Query]:
    """What the telemetry request sends (api.telemetry.telemetry_query, raw table)."""
    measurement = MACHINE_TYPES[_machine_types(rig, factory)[MACHINE]].measurement
    q = telemetry_query(measurement, ["speed_rpm"], "mean", rig.end_ms - HOUR_MS, rig.end_ms, 60)
    return [(factory_database(factory), q, {"machine": MACHINE})]


@dataclass
class Scenario:
    """One API request and the InfluxQL it sends for each factory."""

    name: str
    path: str
    params: dict[str, Any]
    queries: Callable[[ApiRig, str], list[Query]]


def scenarios(rig: ApiRig) -> list[Scenario]:
    last_hour = {"start": _iso(rig.end_ms - HOUR_MS), "end": _iso(rig.end_ms)}
    return [
        Scenario("machine status", "/v1/machines", {"limit": 100}, status_queries),
        Scenario("kpis factory 24h", "/v1/kpis", {"level": "factory"}, kpi_queries),
        Scenario(
            "telemetry 1h/60s",
            f"/v1/machines/{MACHINE}/telemetry",
            {"field": "speed_rpm", "interval_s": 60, **last_hour},
            telemetry_queries,
        ),
    ]


def _proc_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` (all threads) from /proc."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _machine_busy_s() -> float:
    """CPU seconds every core of the machine spent busy since boot (not idle or iowait)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK


def _cpu_snapshot(pids: dict[str, int | None]) -> dict[str, float]:
    snapshot = {name: _proc_cpu_s(pid) for name, pid in pids.items()}
    times = os.times()
    snapshot["client"] = times.user + times.system
    snapshot["machine"] = _machine_busy_s()
    return snapshot


class Connection:
    """One keep-alive HTTP/1.1 connection that sends GETs and reads whole answers.

    Tens of microseconds of CPU per request, where httpx's async pool spends milliseconds
    with 50 connections open: the load generator shares the two cores with what it measures.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._host_header = f"Host: {parts.netloc}\r\n".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, target: bytes, headers: bytes = b"") -> tuple[int, bytes]:
        """Status and body of ``GET target``; reconnects after an error or a close."""
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._reader, self._writer
        try:
            writer.write(
                b"GET " + target + b" HTTP/1.1\r\n" + self._host_header + headers + b"\r\n"
            )
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            if b"transfer-encoding: chunked" in head:
                body = await self._chunks(reader)
            else:
                length = re.search(rb"\ncontent-length: *(\d+)", head)
                body = await reader.readexactly(int(length[1])) if length else b""
            if b"\nconnection: close" in head:
                self.close()
            return int(head[9:12]), body
        except BaseException:
            self.close()
            raise

    @staticmethod
    async def _chunks(reader: asyncio.StreamReader) -> bytes:
        body = bytearray()
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")  # no trailers
        return bytes(body)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def _target(path: str, params: dict[str, Any]) -> bytes:
    return f"{path}?{urlencode(params, doseq=True)}".encode() if params else path.encode()


Sender = Callable[[Connection, int], Awaitable[str | None]]


def api_sender(scenario: Scenario, tokens: list[str]) -> Sender:
    """The scenario's request with the ``n``-th key (round robin); an error or ``None``."""
    target = _target(scenario.path, scenario.params)
    headers = [f"Authorization: Bearer {t}\r\n".encode() for t in tokens]

    async def send(connection: Connection, n: int) -> str | None:
        status, _ = await connection.get(target, headers[n % len(headers)])
        return None if status == 200 else f"HTTP {status}"

    return send


def direct_sender(per_factory: list[list[Query]]) -> Sender:
    """One request is every query the endpoint sends, one after the other as it does."""
    targets = [
        [
            _target("/query", {"db": db, "q": q, "epoch": "ms"} | _bound(params))
            for db, q, params in queries
        ]
        for queries in per_factory
    ]

    async def send(connection: Connection, n: int) -> str | None:
        for target in targets[n % len(targets)]:
            status, body = await connection.get(target)
            if status != 200 or b'"error"' in body:
                return f"HTTP {status}" if status != 200 else "InfluxQL error"
        return None

    return send


def _bound(params: dict[str, Any]) -> dict[str, str]:
    return {"params": orjson.dumps(params).decode()} if params else {}


async def run_load(
    name: str,
    url: str,
    send: Sender,
    args: argparse.Namespace,
    pids: dict[str, int | None],
    rate: float | None = None,
) -> Result:
    """``args.clients`` clients sending ``send``; record the requests of the measured window.

    Without ``rate`` each client sends its next request when the previous one answered
    (closed loop: the server is never idle, req/s is its capacity and latency = clients /
    req/s). With ``rate`` the clients together send ``rate`` requests/s on a fixed schedule
    and latency counts from the scheduled time, so a server that falls behind is charged
    for the wait (no coordinated omission).
    """
    result = Result(name)
    counter = itertools.count()
    loop = asyncio.get_running_loop()
    origin = loop.time()
    measure_from = origin + args.warmup
    stop_at = measure_from + args.seconds
    before: dict[str, float] = {}

    async def client(index: int) -> None:
        connection = Connection(url)
        try:
            for k in itertools.count():
                begin = loop.time()
                if rate:
                    scheduled = origin + (k * args.clients + index) / rate
                    if scheduled > begin:
                        await asyncio.sleep(scheduled - begin)
                    begin = scheduled
                if begin >= stop_at:
                    break
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_S):
                        error = await send(connection, next(counter))
                except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
                    error = type(exc).__name__
                if begin < measure_from:
                    continue
                if error is None:
                    result.latencies.append(loop.time() - begin)
                else:
                    result.errors[error] += 1
        finally:
            connection.close()

    async def snapshot() -> None:
        await asyncio.sleep(max(measure_from - loop.time(), 0))
        before.update(_cpu_snapshot(pids), t=loop.time())

    await asyncio.gather(snapshot(), *(client(i) for i in range(args.clients)))
    result.elapsed_s = loop.time() - before["t"]
    after = _cpu_snapshot(pids)
    result.cpu = {k: (v - before[k]) / result.elapsed_s for k, v in after.items()}
    return result


def check_answers(api_url: str, rig: ApiRig, plans: list[Scenario]) -> None:
    """One request per scenario before the load: say what the API answers."""
    headers = rig.headers(FACTORIES[0])
    with httpx.Client(base_url=api_url, timeout=30) as client:
        for scenario in plans:
            response = client.get(scenario.path, params=scenario.params, headers=headers)
            response.raise_for_status()
            body = response.json()
            if "items" in body and scenario.path == "/v1/machines":
                online = sum(1 for m in body["items"] if m["status"]["online"])
                what = f"{len(body['items'])} machines, {online} online"
            elif "items" in body:
                what = f"{len(body['items'])} KPI rows"
            else:
                what = f"{len(body['time'])} buckets"
            queries = scenario.queries(rig, FACTORIES[0])
            print(
                f"  check {scenario.name:<18} {len(response.content):>7,} bytes, {what}; "
                f"{len(queries)} InfluxQL quer{'y' if len(queries) == 1 else 'ies'}",
                flush=True,
            )


def copy_registry(rig: ApiRig, path: Path) -> None:
    """Write the rig's in-memory SQLite registry to a file the API process can open."""
    raw = rig.database.engine.raw_connection()
    try:
        target = sqlite3.connect(path)
        raw.driver_connection.backup(target)  # type: ignore[union-attr]
        target.close()
    finally:
        raw.close()


def start_api(influx_url: str, registry: Path, folder: Path) -> tuple[subprocess.Popen, str]:
    """Run the API in its own process (uvicorn, one worker); wait until /health answers."""
    port = free_port()
    env = {
        **os.environ,
        "MILLWATCH_API_INFLUX_URL": influx_url,
        "MILLWATCH_API_REGISTRY_URL": f"sqlite:///{registry}",
        "PYTHONPATH": str(ROOT),
    }
    log_path = folder / "api.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only this script, which stops it
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_process(process)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"the API did not answer /health at {url}:\n{tail}")


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Pair:
    """The API's and InfluxDB's figures for one scenario and load mode."""

    scenario: str
    mode: str
    api: Result
    direct: Result


async def run_all(
    args: argparse.Namespace, rig: ApiRig, api_url: str, influx_url: str, pids: dict
) -> list[Pair]:
    """Each scenario closed-loop, then paced at ``args.rate``: the API, then InfluxDB alone."""
    tokens = [rig.tokens[f] for f in FACTORIES]
    modes: list[tuple[str, float | None]] = [("closed", None)]
    if args.rate:
        modes.append((f"@{args.rate:g}/s", args.rate))
    pairs = []
    for scenario in scenarios(rig):
        for mode, rate in modes:
            runs = []
            for who, url, send in (
                ("API", api_url, api_sender(scenario, tokens)),
                (
                    "direct",
                    influx_url,
                    direct_sender([scenario.queries(rig, f) for f in FACTORIES]),
                ),
            ):
                name = f"{who:<6} {scenario.name} {mode}"
                print(f"  running {name} ...", flush=True)
                runs.append(await run_load(name, url, send, args, pids, rate))
            pairs.append(Pair(scenario.name, mode, *runs))
    return pairs


def report(pairs: list[Pair], args: argparse.Namespace) -> bool:
    """Print the table, CPU shares, ratios and the verdict; whether every target was met."""
    results = [r for p in pairs for r in (p.api, p.direct)]
    width = max(len(r.name) for r in results)
    print()
    print(
        f"{'scenario':<{width}} {'requests':>9} {'errors':>7} {'req/s':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8}"
    )
    for result in results:
        errors = result.errors.total()
        print(
            f"{result.name:<{width}} {result.requests:>9,} {errors:>7} {result.rps:>8.1f} "
            f"{result.ms(50):>8.1f} {result.ms(99):>8.1f}"
            + (f"  {dict(result.errors)}" if errors else "")
        )
    print()
    cores = os.cpu_count() or 1
    print(f"CPU during each run, % of one core (machine: {cores} cores = {cores * 100} %)")
    print(
        f"{'scenario':<{width}} {'api':>6} {'influxd':>8} {'client':>7} {'others':>7} "
        f"{'machine':>8} {'api ms/req':>11}"
    )
    for result in results:
        cpu = {k: v * 100 for k, v in result.cpu.items()}
        others = cpu["machine"] - cpu["api"] - cpu["influxd"] - cpu["client"]
        per_request = result.cpu["api"] / result.rps * 1000 if result.rps else float("nan")
        print(
            f"{result.name:<{width}} {cpu['api']:>6.0f} {cpu['influxd']:>8.0f} "
            f"{cpu['client']:>7.0f} {others:>7.0f} {cpu['machine']:>8.0f} {per_request:>11.1f}"
        )
    print()
    print("API / direct InfluxDB")
    for pair in pairs:
        p99_ratio = pair.api.ms(99) / pair.direct.ms(99)
        rps_ratio = pair.api.rps / pair.direct.rps
        print(
            f"  {pair.scenario:<18} {pair.mode:<9} p99 {p99_ratio:>6.1f}x   "
            f"req/s {rps_ratio:>5.2f}x"
        )
    print()
    print(
        f"target: p99 < {TARGET_P99_MS:.0f} ms at >= {TARGET_RPS:.0f} req/s, {args.clients} "
        f"clients, API and InfluxDB on this machine (capacity = closed-loop req/s; "
        f"p99 from the {'paced' if args.rate else 'closed-loop'} run)"
    )
    verdict = True
    for scenario in dict.fromkeys(p.scenario for p in pairs):
        closed = next(p.api for p in pairs if p.scenario == scenario and p.mode == "closed")
        timed = [p.api for p in pairs if p.scenario == scenario][-1]
        passed = closed.rps >= TARGET_RPS and timed.ms(99) < TARGET_P99_MS
        passed = passed and not closed.errors and not timed.errors
        verdict = verdict and passed
        print(
            f"  {scenario:<18} capacity {closed.rps:>6.1f} req/s, p99 {timed.ms(99):>7.1f} ms"
            f"   {'PASS' if passed else 'FAIL'}"
        )
    return verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument(
        "--rate",
        type=float,
        default=TARGET_RPS,
        help="requests/s of the paced runs (0: closed loop only)",
    )
    args = parser.parse_args()
    print(f"load before: {Path('/proc/loadavg').read_text().strip()} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="millwatch-bench-api-") as tmp:
        folder = Path(tmp)
        with InfluxDB(folder / "influxdb") as influx:
            print(f"filling InfluxDB {influx.url}: 3 knitting mills x 2 h, analytics once ...")
            started = time.perf_counter()
            rig = build_rig(influx.url)
            print(f"  filled in {time.perf_counter() - started:.1f} s")
            registry = folder / "registry.db"
            copy_registry(rig, registry)
            process, api_url = start_api(influx.url, registry, folder)
            try:
                print(f"API {api_url} (pid {process.pid}, uvicorn, 1 worker)")
                plans = scenarios(rig)
                check_answers(api_url, rig, plans)
                print(
                    f"load: {args.clients} clients, {args.warmup:g} s warm-up + "
                    f"{args.seconds:g} s per run",
                    flush=True,
                )
                pids = {"api": process.pid, "influxd": influx.pid}
                pairs = asyncio.run(run_all(args, rig, api_url, influx.url, pids))
            finally:
                stop_process(process)
                rig.store.close()
                rig.database.dispose()
    print(f"load after: {Path('/proc/loadavg').read_text().strip()}")
    passed = report(pairs, args)
    errors = sum((r.errors for p in pairs for r in (p.api, p.direct)), Counter())
    print(f"verdict: {'PASS' if passed else 'FAIL'}; errors: {dict(errors) or 0}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("bench/api.py: interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
