"""The local stack behind ``millwatch up``: broker, database, ingest and simulated gateways.

Every service runs as its own process (the way it runs in production), with its
configuration, ports and data under one state folder. A broker or database given by
URL is used as it is instead of starting one.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from millwatch.servers import InfluxDB, Mosquitto, ServerError, free_port

log = logging.getLogger("millwatch.stack")


@dataclass
class StackConfig:
    """What ``millwatch up`` starts; defaults give a small cluster that fits 2 cores."""

    state_dir: Path
    cluster: str = "c1"
    factories: int = 3
    looms: int = 20
    knitting: int = 6
    dyeing: int = 4
    mqtt_url: str | None = None
    influx_url: str | None = None
    mqtt_port: int = 18830
    influx_port: int = 18086
    ingest_workers: int = 1


@dataclass
class ServiceProcess:
    """A running millwatch service and the port its Prometheus counters are served on."""

    name: str
    process: subprocess.Popen[bytes]
    metrics_port: int

    def counters(self) -> dict[str, float]:
        """Scrape the service's counters, summed over labels and without the service prefix.

        Empty when the service does not answer (yet).
        """
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=1).text
        except httpx.HTTPError:
            return {}
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.endswith(("_created", "_bucket")):
                    continue
                name = sample.name.removeprefix("millwatch_gateway_").removeprefix(
                    "millwatch_ingest_"
                )
                totals[name] = totals.get(name, 0.0) + sample.value
        return totals


@dataclass
class Stack:
    """Starts and stops the whole local stack in order; ``status`` reads live counters."""

    config: StackConfig
    servers: list[Mosquitto | InfluxDB] = field(default_factory=list)
    services: list[ServiceProcess] = field(default_factory=list)

    def start(self) -> None:
        """Start servers (unless given by URL), ingest workers, then one gateway per factory."""
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        mqtt_host, mqtt_port = self._broker()
        influx_url = self._database()
        for worker in range(cfg.ingest_workers):
            port = free_port()
            env = {
                "MILLWATCH_INGEST_MQTT_HOST": mqtt_host,
                "MILLWATCH_INGEST_MQTT_PORT": str(mqtt_port),
                "MILLWATCH_INGEST_INFLUX_URL": influx_url,
                "MILLWATCH_INGEST_CLIENT_ID": f"millwatch-ingest-{worker}",
                "MILLWATCH_INGEST_METRICS_PORT": str(port),
            }
            self._spawn(f"ingest-{worker}", ["-m", "ingest"], env, port)
        for index in range(cfg.factories):
            factory, port = f"f{index + 1:02d}", free_port()
            path = self._gateway_config(factory, index, (mqtt_host, mqtt_port), port)
            self._spawn(f"gateway-{factory}", ["-m", "gateway", "-c", str(path)], {}, port)

    def _broker(self) -> tuple[str, int]:
        cfg = self.config
        if cfg.mqtt_url:
            url = urlsplit(cfg.mqtt_url)
            return url.hostname or "127.0.0.1", url.port or 1883
        broker = Mosquitto(cfg.state_dir / "mosquitto", port=cfg.mqtt_port)
        broker.start()
        self.servers.append(broker)
        log.info("event=server_started server=mosquitto url=%s", broker.url)
        return broker.host, broker.port

    def _database(self) -> str:
        cfg = self.config
        if cfg.influx_url:
            return cfg.influx_url
        database = InfluxDB(cfg.state_dir / "influxdb", port=cfg.influx_port)
        database.start()
        self.servers.append(database)
        log.info("event=server_started server=influxdb url=%s", database.url)
        return database.url

    def _gateway_config(
        self, factory: str, index: int, broker: tuple[str, int], metrics_port: int
    ) -> Path:
        cfg = self.config
        folder = cfg.state_dir / "gateways" / factory
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "gateway.toml"
        path.write_text(
            f'cluster = "{cfg.cluster}"\nfactory = "{factory}"\ngateway_id = "gw1"\n'
            f'mqtt_host = "{broker[0]}"\nmqtt_port = {broker[1]}\nmetrics_port = {metrics_port}\n'
            f'outbox_path = "{folder / "outbox.sqlite"}"\n\n'
            f"[inputs.simulator]\nlooms = {cfg.looms}\nknitting = {cfg.knitting}\n"
            f"dyeing = {cfg.dyeing}\nseed = {index}\n"
        )
        tomllib.loads(path.read_text())  # fail here, not in the child, on a bad file
        return path

    def _spawn(self, name: str, args: list[str], env: dict[str, str], port: int) -> None:
        log_file = (self.config.state_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.services.append(ServiceProcess(name, process, port))
        log.info("event=service_started service=%s pid=%d metrics_port=%d", name, process.pid, port)

    def check_alive(self) -> None:
        """Raise ``ServerError`` naming the first service that exited."""
        for service in self.services:
            if service.process.poll() is not None:
                log_path = self.config.state_dir / f"{service.name}.log"
                tail = log_path.read_text(errors="replace").splitlines()[-15:]
                raise ServerError(
                    f"{service.name} exited with {service.process.returncode}:\n" + "\n".join(tail)
                )

    def status(self) -> dict[str, dict[str, float]]:
        """Live counters of every service, by service name."""
        return {service.name: service.counters() for service in self.services}

    def stop(self) -> None:
        """Stop gateways first (they drain), then ingest, then the servers."""
        for service in reversed(self.services):
            service.process.terminate()
            try:
                service.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                service.process.kill()
                log.error("event=service_killed service=%s reason=stop_timeout", service.name)
        for server in reversed(self.servers):
            server.stop()
        self.services.clear()
        self.servers.clear()
