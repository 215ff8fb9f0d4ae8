"""The local stack behind ``millwatch up``: broker, database, ingest and simulated gateways.

Every service runs as its own process (the way it runs in production), with its
configuration, ports and data under one state folder. A broker or database given by
URL is used as it is instead of starting one.

The broker the stack starts is secured: no anonymous clients, one login per gateway
issued into the registry (``state/registry.sqlite``, a fresh password at every start)
plus the ``ingest`` service login, and the ACL the registry generates (each gateway
publishes under its own factory only). The passwords are written only into the
services' config files (mode 0600) in the state folder, never logged.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from api.db import Database
from api.mosquitto import INGEST_SERVICE, generate_password, hash_password, registry_files
from api.seed import gateway_logins, seed_from_scenario
from millwatch.contract import now_ms
from millwatch.private_file import write_private
from millwatch.servers import InfluxDB, Mosquitto, ServerError, check_port_free, free_port
from simulators.scenario import Scenario, load_scenario

log = logging.getLogger("millwatch.stack")

#: Samples per machine per message while backfilling: large batches, few messages.
BACKFILL_BATCH = 300
#: Messages the broker may store before backfilling gateways pause: ingest drains the broker
#: while the backlog stays small enough to persist every second.
BACKFILL_BROKER_BACKLOG = 500
#: The gateway id of every simulated gateway (one per factory).
GATEWAY_ID = "gw1"
#: How long a stop phase waits for its services after SIGTERM before SIGKILL.
STOP_TIMEOUT_S = 20.0


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class StackConfig:
    """What ``millwatch up`` starts; defaults give a small cluster that fits 2 cores."""

    state_dir: Path
    scenario: str = "default"
    mqtt_url: str | None = None
    influx_url: str | None = None
    mqtt_port: int = 18830
    influx_port: int = 18086
    ingest_workers: int = 1
    analytics_every_s: float = 60.0
    analytics_min_train_h: float = 1.0
    api_port: int = 18000
    broker_auth: bool = True
    mqtt_username: str | None = None
    mqtt_password: str | None = field(default=None, repr=False)


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
                name = sample.name
                for prefix in (
                    "millwatch_gateway_",
                    "millwatch_ingest_",
                    "millwatch_analytics_",
                    "millwatch_api_",
                ):
                    name = name.removeprefix(prefix)
                totals[name] = totals.get(name, 0.0) + sample.value
        return totals


@dataclass
class Stack:
    """Starts and stops the whole local stack in order; ``status`` reads live counters."""

    config: StackConfig
    servers: list[Mosquitto | InfluxDB] = field(default_factory=list)
    services: list[ServiceProcess] = field(default_factory=list)
    scenario: Scenario = field(init=False)
    broker: tuple[str, int] = field(init=False)
    backfill_s: int = 0
    #: Start of the history the backfill replayed; live gateways continue from its end.
    backfill_start_ms: int | None = None
    #: Broker logins by service: ``gateway-{factory}`` and ``ingest``; (user, password).
    logins: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)

    def start(self) -> None:
        """Start the servers (unless given by URL), the ingest workers and analytics."""
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.scenario = load_scenario(cfg.scenario)
        self._seed_registry()
        self.broker = self._broker()
        influx_url = self._database()
        mqtt_host, mqtt_port = self.broker
        args, login_env = self._ingest_login()
        for worker in range(cfg.ingest_workers):
            port = free_port()
            env = {
                "MILLWATCH_INGEST_MQTT_HOST": mqtt_host,
                "MILLWATCH_INGEST_MQTT_PORT": str(mqtt_port),
                "MILLWATCH_INGEST_INFLUX_URL": influx_url,
                "MILLWATCH_INGEST_CLIENT_ID": f"millwatch-ingest-{worker}",
                "MILLWATCH_INGEST_METRICS_PORT": str(port),
                **login_env,
            }
            self._spawn(f"ingest-{worker}", args, env, port)
        self._start_analytics(influx_url)
        self._start_api(influx_url)

    def _ingest_login(self) -> tuple[list[str], dict[str, str]]:
        """Ingest's arguments and environment for its broker login.

        The stack's own login goes to a private env file (the password never on a command
        line); a login given for an external broker arrived through the environment or the
        command line already and is passed on in the environment.
        """
        args = ["-m", "ingest"]
        given = self._given_login()
        if given is not None:
            user, password = given
            return args, {
                "MILLWATCH_INGEST_MQTT_USERNAME": user,
                "MILLWATCH_INGEST_MQTT_PASSWORD": password,
            }
        if "ingest" not in self.logins:
            return args, {}
        user, password = self.logins["ingest"]  # URL-safe characters only
        env_file = self.config.state_dir / "ingest.env"
        text = f"MILLWATCH_INGEST_MQTT_USERNAME={user}\nMILLWATCH_INGEST_MQTT_PASSWORD={password}\n"
        write_private(env_file, text)
        return [*args, "--env-file", str(env_file)], {}

    def _start_analytics(self, influx_url: str) -> None:
        """One analytics worker for every scenario factory (their calendars in a file)."""
        cfg = self.config
        tables = []
        for f in self.scenario.factories:
            keys = {"id": f.id, "timezone": f.timezone, "shifts": f.shifts}
            keys["shift_start"] = f.shift_start
            tables += ["[[factories]]", *(f"{k} = {_toml(v)}" for k, v in keys.items()), ""]
        path = cfg.state_dir / "analytics-factories.toml"
        path.write_text("\n".join(tables))
        port = free_port()
        env = {
            "MILLWATCH_ANALYTICS_INFLUX_URL": influx_url,
            "MILLWATCH_ANALYTICS_FACTORIES_FILE": str(path),
            "MILLWATCH_ANALYTICS_CLUSTER": self.scenario.cluster,
            "MILLWATCH_ANALYTICS_METRICS_PORT": str(port),
            "MILLWATCH_ANALYTICS_INTERVAL_S": str(cfg.analytics_every_s),
            "MILLWATCH_ANALYTICS_MIN_TRAIN_H": str(cfg.analytics_min_train_h),
        }
        self._spawn("analytics", ["-m", "analytics"], env, port)

    def _start_api(self, influx_url: str) -> None:
        """The cluster API over a registry seeded from the scenario, with demo keys."""
        cfg = self.config
        check_port_free("127.0.0.1", cfg.api_port)
        env = {
            "MILLWATCH_API_INFLUX_URL": influx_url,
            "MILLWATCH_API_REGISTRY_URL": self.registry_url,
            "MILLWATCH_API_CLUSTER": self.scenario.cluster,
            "MILLWATCH_API_PORT": str(cfg.api_port),
        }
        if cfg.broker_auth and not cfg.mqtt_url:  # logins changed in the API reach the broker
            env["MILLWATCH_API_BROKER_DIR"] = str(cfg.state_dir / "mosquitto")
        args = ["-m", "api", "--seed-scenario", cfg.scenario]
        args += ["--demo-keys-file", str(self.demo_keys_path)]
        self._spawn("api", args, env, cfg.api_port)

    @property
    def api_url(self) -> str:
        """Base URL of the API ``millwatch up`` serves."""
        return f"http://127.0.0.1:{self.config.api_port}"

    @property
    def demo_keys_path(self) -> Path:
        """Where the API writes the demo keys it issues on first start."""
        return self.config.state_dir / "demo-keys.toml"

    def wait_for_api(self, timeout_s: float = 30.0) -> bool:
        """Whether the API answered ``/health`` (any status) within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                httpx.get(f"{self.api_url}/health", timeout=2)
                return True
            except httpx.HTTPError:
                time.sleep(0.2)
        return False

    def attach(self, mqtt_url: str) -> None:
        """Use a running broker (with its ingest) for gateways only; start nothing else.

        Without a login given in the config, each gateway reuses the one a ``millwatch
        up`` on the same state folder wrote into its live gateway's config.
        """
        self.config.mqtt_url = mqtt_url
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self.scenario = load_scenario(self.config.scenario)
        self.broker = self._broker()
        for fc in self.scenario.factories:
            path = self._gateway_folder(fc.id) / f"gateway-{fc.id}.toml"
            try:
                stored = tomllib.loads(path.read_text())
            except (OSError, tomllib.TOMLDecodeError):
                continue
            if "mqtt_username" in stored and "mqtt_password" in stored:
                login = (stored["mqtt_username"], stored["mqtt_password"])
                self.logins[f"gateway-{fc.id}"] = login

    def start_gateways(self, backfill_s: int = 0) -> list[ServiceProcess]:
        """Start one simulated gateway per scenario factory and return them.

        With ``backfill_s`` the gateways replay that many seconds of history up to now as
        fast as the pipeline takes it, marked historical, and exit when it is delivered;
        the live gateways started afterwards continue the same outboxes (and sequences).
        """
        started = []
        self.backfill_s = backfill_s
        if backfill_s:
            self.backfill_start_ms = (now_ms() - backfill_s * 1000) // 1000 * 1000
        for fc in self.scenario.factories:
            extra = {}
            if backfill_s:
                start_ms = self.backfill_start_ms
                extra = {"fast_forward": True, "historical": True, "start_ts_ms": start_ms}
                extra |= {"max_ticks": backfill_s, "samples_per_message": BACKFILL_BATCH}
                extra["broker_backlog_limit"] = BACKFILL_BROKER_BACKLOG
            name = f"{'backfill' if backfill_s else 'gateway'}-{fc.id}"
            started.append(self._spawn_gateway(name, fc.id, extra))
        return started

    def _gateway_folder(self, factory: str) -> Path:
        return self.config.state_dir / "gateways" / factory

    def _spawn_gateway(self, name: str, factory: str, extra: dict[str, object]) -> ServiceProcess:
        folder = self._gateway_folder(factory)
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        settings: dict[str, object] = {
            "cluster": self.scenario.cluster,
            "factory": factory,
            "gateway_id": GATEWAY_ID,
            "mqtt_host": self.broker[0],
            "mqtt_port": self.broker[1],
        }
        login = self._given_login() or self.logins.get(f"gateway-{factory}")
        if login is not None:
            settings["mqtt_username"], settings["mqtt_password"] = login
        settings |= {"outbox_path": str(folder / "outbox.sqlite"), "metrics_port": port, **extra}
        lines = [f"{key} = {_toml(value)}" for key, value in settings.items()]
        simulator: dict[str, object] = {"scenario": self.config.scenario, "factory": factory}
        if not extra.get("historical") and self.backfill_start_ms is not None:
            simulator["resume_from_ms"] = self.backfill_start_ms  # continue the backfill
        if extra.get("historical"):
            simulator["labels_file"] = str(folder / "labels-backfill.jsonl")
        lines += ["", "[inputs.simulator]", *(f"{k} = {_toml(v)}" for k, v in simulator.items())]
        path = folder / f"{name}.toml"
        write_private(path, "\n".join(lines) + "\n")  # it may hold the broker password
        tomllib.loads(path.read_text())  # fail here, not in the child, on a bad file
        return self._spawn(name, ["-m", "gateway", "-c", str(path)], {}, port)

    def _broker(self) -> tuple[str, int]:
        cfg = self.config
        if cfg.mqtt_url:
            url = urlsplit(cfg.mqtt_url)
            return url.hostname or "127.0.0.1", url.port or 1883
        folder = cfg.state_dir / "mosquitto"
        files: dict[str, Path] = {}
        if cfg.broker_auth:
            files = {"password_file": folder / "passwd", "acl_file": folder / "acl"}
            self._write_broker_files(files["password_file"], files["acl_file"])
        broker = Mosquitto(folder, port=cfg.mqtt_port, **files)
        broker.start()
        self.servers.append(broker)
        log.info(
            "event=server_started server=mosquitto url=%s secured=%s", broker.url, broker.secured
        )
        return broker.host, broker.port

    def _given_login(self) -> tuple[str, str] | None:
        """The login given for an external broker (``--mqtt-username``), if any."""
        cfg = self.config
        if cfg.mqtt_url and cfg.mqtt_username:
            return cfg.mqtt_username, cfg.mqtt_password or ""
        return None

    @property
    def registry_url(self) -> str:
        """The registry database the API serves and the broker logins come from."""
        return f"sqlite:///{self.config.state_dir / 'registry.sqlite'}"

    def _seed_registry(self) -> None:
        """Register the scenario's assets (the API does it again: it is idempotent)."""
        database = Database(self.registry_url)
        try:
            database.create_all()
            with database.session() as session:
                seed_from_scenario(session, self.config.scenario, self.scenario.cluster)
        finally:
            database.dispose()

    def _write_broker_files(self, passwd_path: Path, acl_path: Path) -> None:
        """Issue fresh gateway logins into the registry; write the broker's files from it."""
        factories = [f.id for f in self.scenario.factories]
        database = Database(self.registry_url)
        try:
            with database.session() as session:
                issued = gateway_logins(session, factories, GATEWAY_ID)
                ingest = (INGEST_SERVICE.user, generate_password())
                service_lines = [hash_password(*ingest)]
                files = registry_files(session, self.scenario.cluster, service_lines)
        finally:
            database.dispose()
        self.logins["ingest"] = ingest
        for factory in factories:
            user = f"{factory}.{GATEWAY_ID}"
            if user in issued:
                self.logins[f"gateway-{factory}"] = (user, issued[user])
            else:
                log.warning("event=gateway_login_revoked user=%s (its gateway is refused)", user)
        write_private(passwd_path, files.passwd)
        write_private(acl_path, files.acl)

    def _database(self) -> str:
        cfg = self.config
        if cfg.influx_url:
            return cfg.influx_url
        database = InfluxDB(cfg.state_dir / "influxdb", port=cfg.influx_port)
        database.start()
        self.servers.append(database)
        log.info("event=server_started server=influxdb url=%s", database.url)
        return database.url

    def _spawn(self, name: str, args: list[str], env: dict[str, str], port: int) -> ServiceProcess:
        log_file = (self.config.state_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        service = ServiceProcess(name, process, port)
        self.services.append(service)
        log.info("event=service_started service=%s pid=%d metrics_port=%d", name, process.pid, port)
        return service

    def check_alive(self) -> None:
        """Raise ``ServerError`` naming the first service that exited (finished backfills aside)."""
        for service in self.services:
            finished = service.name.startswith("backfill-") and service.process.poll() == 0
            if service.process.poll() is not None and not finished:
                log_path = self.config.state_dir / f"{service.name}.log"
                tail = log_path.read_text(errors="replace").splitlines()[-15:]
                raise ServerError(
                    f"{service.name} exited with {service.process.returncode}:\n" + "\n".join(tail)
                )

    def status(self) -> dict[str, dict[str, float]]:
        """Live counters of every running service, by service name."""
        return {s.name: s.counters() for s in self.services if s.process.poll() is None}

    def stop(self) -> None:
        """Stop gateways first (they drain), then analytics and the API, then ingest, then servers.

        The services of one phase are signalled together and share one deadline, so a
        service slow to stop costs its phase ``STOP_TIMEOUT_S``, not every service that much.
        """
        services = list(reversed(self.services))
        gateways = [s for s in services if s.name.startswith(("gateway-", "backfill-"))]
        ingest = [s for s in services if s.name.startswith("ingest")]
        others = [s for s in services if s not in gateways and s not in ingest]
        for phase in (gateways, others, ingest):
            _stop_together(phase, STOP_TIMEOUT_S)
        for server in reversed(self.servers):
            server.stop()
        self.services.clear()
        self.servers.clear()


def _stop_together(services: list[ServiceProcess], timeout_s: float) -> None:
    """SIGTERM every service, wait for all until one deadline, SIGKILL the ones left."""
    for service in services:
        if service.process.poll() is None:
            service.process.terminate()
    deadline = time.monotonic() + timeout_s
    for service in services:
        try:
            service.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()
            log.error("event=service_killed service=%s reason=stop_timeout", service.name)
