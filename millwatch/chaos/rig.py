"""Real processes for one fault row: broker, ingest and gateways, reconciled per seq.

Gateways and the ingest worker run as their own processes (``python -m gateway``,
``python -m ingest``), so a fault can SIGKILL them by pid. What a gateway produced is
read from its outbox's sequence counters (``next_seq`` per machine: seqs ``0..next-1``
were handed out); what landed is every ``seq`` InfluxDB holds for the machine in its
telemetry, event and fault-label measurements.

>>> Landed(seqs={0, 1, 2}, rows=7, keys=6).duplicates
1
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from millwatch import contract
from millwatch.servers import InfluxDB, Mosquitto, free_port

ROOT = Path(__file__).resolve().parents[2]
MEASUREMENTS = (
    *sorted({t.measurement for t in contract.MACHINE_TYPES.values()}),
    contract.EVENT_MEASUREMENT,
    contract.FAULT_MEASUREMENT,
)
_TELEMETRY = frozenset(t.measurement for t in contract.MACHINE_TYPES.values())
#: The normal load of one gateway: machines, a sample every 0.1 s, 5 samples a message.
NORMAL_MACHINES = {"loom_airjet": 6, "knit_circular": 2}
NORMAL_INTERVAL_S = 0.1
SAMPLES_PER_MESSAGE = 5


@dataclass
class Landed:
    """What InfluxDB holds for one machine: seqs, rows, and distinct (time, seq) keys."""

    seqs: set[int] = field(default_factory=set)
    rows: int = 0
    keys: int = 0
    reused: int = 0  # seqs found both as telemetry and as records: a seq handed out twice

    @property
    def duplicates(self) -> int:
        """Rows beyond the first for the same (measurement, time, seq), plus reused seqs."""
        return self.rows - self.keys + self.reused


@dataclass
class GatewayProc:
    """One gateway process and the files it uses."""

    factory: str
    config: Path
    outbox: Path
    log: Path
    prefix: list[str]
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn ``python -m gateway -c <config>`` (inside a namespace if ``prefix``)."""
        cmd = [*self.prefix, sys.executable, "-m", "gateway", "-c", str(self.config)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env={**_clean_env(), **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL by pid, as a crash or a power cut of the process would."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: the gateway flushes, waits up to 10 s for acks and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def produced(self) -> dict[str, int]:
        """``next_seq`` per machine from the outbox (seqs 0..next-1 were handed out)."""
        if not self.outbox.exists():
            return {}
        with sqlite3.connect(f"file:{self.outbox}?mode=ro", uri=True, timeout=10) as db:
            rows = db.execute("SELECT machine, next_seq FROM sequences").fetchall()
        return {key.rsplit("/", 1)[-1]: int(n) for key, n in rows}

    def depth(self) -> int:
        """Messages in the outbox not yet acknowledged by the broker."""
        if not self.outbox.exists():
            return 0
        with sqlite3.connect(f"file:{self.outbox}?mode=ro", uri=True, timeout=10) as db:
            return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])

    def tail(self, lines: int = 15) -> str:
        """The last lines of the gateway's log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Rig:
    """Broker, one ingest worker and gateways for one row; ``close`` stops them all.

    Parameters
    ----------
    influx
        A running InfluxDB (shared by rows: each row writes to fresh databases).
    work
        Folder for this row's broker data, configs, outboxes and logs.
    broker_host
        Where the broker listens: a namespace's host address for network rows.
    """

    def __init__(self, influx: InfluxDB, work: Path, broker_host: str = "127.0.0.1") -> None:
        self.influx, self.work = influx, work
        work.mkdir(parents=True, exist_ok=True)
        self.run_id = uuid.uuid4().hex[:6]
        self.cluster = "chaos"
        extra = ""
        if broker_host != "127.0.0.1":  # ingest stays on loopback, gateways use the link
            self.link_port = free_port(broker_host)
            extra = f"listener {self.link_port} {broker_host}"
        self.broker = Mosquitto(work / "mosquitto", extra_conf=extra)
        self.broker_host = broker_host
        self.gateways: list[GatewayProc] = []
        self.extra_factories: list[str] = []  # factories a fake gateway publishes for
        self.ingest: subprocess.Popen[bytes] | None = None
        self.ingest_starts = 0
        self.others: list[subprocess.Popen[bytes]] = []
        self.ingest_metrics_port = free_port()

    # --- processes ------------------------------------------------------------------

    def start(self) -> None:
        """Start the broker and the ingest worker."""
        self.broker.start()
        self.start_ingest()

    def start_ingest(self) -> None:
        """Spawn ``python -m ingest`` with a fixed client id (the broker keeps its session)."""
        env = {
            **_clean_env(),
            "MILLWATCH_INGEST_MQTT_HOST": self.broker.host,
            "MILLWATCH_INGEST_MQTT_PORT": str(self.broker.port),
            "MILLWATCH_INGEST_INFLUX_URL": self.influx.url,
            "MILLWATCH_INGEST_CLIENT_ID": f"chaos-ingest-{self.run_id}",
            "MILLWATCH_INGEST_SHARE_GROUP": f"chaos{self.run_id}",
            "MILLWATCH_INGEST_FLUSH_INTERVAL_S": "0.05",
            "MILLWATCH_INGEST_RETRY_MAX_S": "1.0",
            "MILLWATCH_INGEST_INTERNAL_INTERVAL_S": "1.0",
            "MILLWATCH_INGEST_METRICS_PORT": str(self.ingest_metrics_port),
        }
        self.ingest_starts += 1
        with (self.work / "ingest.log").open("ab") as log:
            self.ingest = subprocess.Popen(
                [sys.executable, "-m", "ingest"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``python <args>`` with ``env`` added, logging to ``<name>.log``."""
        with (self.work / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, *args],
                cwd=ROOT,
                env={**_clean_env(), **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.others.append(proc)
        return proc

    def ingest_unacked(self) -> float | None:
        """The worker's ``unacked`` gauge (messages received, not yet settled), if it answers."""
        url = f"http://127.0.0.1:{self.ingest_metrics_port}/metrics"
        try:
            text = httpx.get(url, timeout=1, trust_env=False).text
        except httpx.HTTPError:
            return None
        found = re.search(r"^millwatch_ingest_unacked (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else None

    def kill_ingest(self) -> None:
        """SIGKILL the ingest worker by pid."""
        if self.ingest is not None and self.ingest.poll() is None:
            os.kill(self.ingest.pid, signal.SIGKILL)
            self.ingest.wait(30)

    def add_gateway(
        self,
        machines: dict[str, int] | None = None,
        interval_s: float = NORMAL_INTERVAL_S,
        prefix: list[str] | None = None,
        broker: tuple[str, int] | None = None,
        outbox_dir: Path | None = None,
        env: dict[str, str] | None = None,
        **settings: Any,
    ) -> GatewayProc:
        """Write a gateway config for a factory of its own and start the process."""
        index = len(self.gateways) + 1
        factory = f"x{self.run_id}-{index}"
        host, port = broker or (self.broker.host, self.broker.port)
        outbox = (outbox_dir or self.work) / f"outbox-{index}.sqlite"
        machines = machines or NORMAL_MACHINES
        keys = {
            "sample_interval_s": interval_s,
            "samples_per_message": SAMPLES_PER_MESSAGE,
            "metrics_interval_s": 1.0,
            **settings,
        }
        lines = [
            f'cluster = "{self.cluster}"',
            f'factory = "{factory}"',
            'gateway_id = "gw1"',
            f'mqtt_host = "{host}"',
            f"mqtt_port = {port}",
            f'outbox_path = "{outbox}"',
            *(f"{k} = {_toml(v)}" for k, v in keys.items()),
            "[inputs.simulator]",
            "machines = { " + ", ".join(f"{k} = {v}" for k, v in machines.items()) + " }",
            f"seed = {index}",
        ]
        config = self.work / f"gateway-{index}.toml"
        config.write_text("\n".join(lines) + "\n")
        log = self.work / f"gateway-{index}.log"
        gw = GatewayProc(factory, config, outbox, log, prefix or [], env or {})
        gw.start()
        self.gateways.append(gw)
        return gw

    def finish(self, timeout: float) -> None:
        """Stop every gateway (SIGTERM), then replay what a stop left in an outbox."""
        for gw in self.gateways:
            gw.stop()
        for gw in self.gateways:
            if gw.depth() and gw.proc is not None:
                drain = gw.config.with_suffix(".drain.toml")
                drain.write_text(gw.config.read_text().replace("[inputs", "max_ticks = 1\n[inputs"))
                gw.config, saved = drain, gw.config
                gw.start()  # exits by itself once its one tick and the replay are acked
                try:
                    gw.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    gw.stop()
                gw.config = saved

    def close(self) -> None:
        """Stop everything this rig started; never raises."""
        for gw in self.gateways:
            gw.kill()
        for proc in self.others:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
        if self.ingest is not None and self.ingest.poll() is None:
            self.ingest.send_signal(signal.SIGTERM)
            try:
                self.ingest.wait(15)
            except subprocess.TimeoutExpired:
                self.kill_ingest()
        self.broker.stop()

    # --- reconciliation -------------------------------------------------------------

    def produced(self) -> dict[tuple[str, str], int]:
        """``next_seq`` per (factory, machine) over all gateways."""
        return {(gw.factory, m): n for gw in self.gateways for m, n in gw.produced().items()}

    def landed(self, since_ns: int = 0) -> dict[tuple[str, str], Landed]:
        """Per (factory, machine): the seqs, rows and distinct keys InfluxDB holds."""
        found: dict[tuple[str, str], Landed] = {}
        for factory in {gw.factory for gw in self.gateways} | set(self.extra_factories):
            self.collect(factory, found, since_ns)
        return found

    def collect(self, factory: str, found: dict[tuple[str, str], Landed], since_ns: int) -> None:
        """Add one factory's rows to ``found``."""
        db = contract.factory_database(factory)
        telemetry: dict[str, set[int]] = {}
        records: dict[str, set[int]] = {}
        for measurement in MEASUREMENTS:
            q = f'SELECT "seq" FROM "{measurement}" WHERE time >= {since_ns} GROUP BY "machine"'
            keys: dict[str, set[tuple[int, int]]] = {}
            for row in self.query(db, q):
                entry = found.setdefault((factory, row["machine"]), Landed())
                entry.rows += 1
                entry.seqs.add(row["seq"])
                keys.setdefault(row["machine"], set()).add((row["time"], row["seq"]))
                seen = telemetry if measurement in _TELEMETRY else records
                seen.setdefault(row["machine"], set()).add(row["seq"])
            for machine, distinct in keys.items():
                found[(factory, machine)].keys += len(distinct)
        for machine, seqs in telemetry.items():
            found[(factory, machine)].reused += len(seqs & records.get(machine, set()))

    def query(self, db: str, q: str) -> list[dict[str, Any]]:
        """Run InfluxQL; rows as dicts with their series tags; [] for a missing database."""
        response = httpx.get(
            f"{self.influx.url}/query",
            params={"db": db, "q": q, "epoch": "ns"},
            timeout=30,
            trust_env=False,
        )
        response.raise_for_status()
        rows: list[dict[str, Any]] = []
        for result in response.json()["results"]:
            if "error" in result:
                if "database not found" in result["error"]:
                    return []
                raise RuntimeError(f"InfluxQL error for {q!r}: {result['error']}")
            for series in result.get("series", []):
                tags = series.get("tags", {})
                for values in series["values"]:
                    rows.append({**dict(zip(series["columns"], values, strict=True)), **tags})
        return rows

    def wait_landed(self, wanted: dict[tuple[str, str], int], timeout: float) -> float | None:
        """Seconds until every seq below ``wanted[machine]`` landed; None on timeout."""
        start = time.monotonic()
        while True:
            landed = self.landed()
            if all(set(range(n)) <= landed.get(k, Landed()).seqs for k, n in wanted.items()):
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                return None
            time.sleep(0.5)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MILLWATCH_")}


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return f'"{value}"'
