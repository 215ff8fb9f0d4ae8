"""Real Mosquitto and InfluxDB processes for the local stack and the integration tests.

Each server gets a config rendered from ``config/<name>.conf`` into its own data directory
and a loopback port. It runs in its own session with stdin closed, so Ctrl-C in a terminal
reaches only the Python process, which then stops its servers cleanly. A missing binary
raises `ServerError`, never a skip: ``scripts/setup`` installs both servers.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import ClassVar

import httpx

from millwatch.lifecycle import Lifecycle

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")  # often missing from a user's PATH
_POLL_S = 0.05
_STOP_TIMEOUT_S = 30.0
_LOG_TAIL_LINES = 20


class ServerError(RuntimeError):
    """A server binary is missing, or its process did not start or answer in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on `host` now.

    The kernel picks it, so parallel test runs don't collide; `start` still checks that
    nothing took it in between.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _ManagedProcess(Lifecycle):
    """Start, wait for and stop one server process; subclasses say how."""

    binary: ClassVar[str]
    package: ClassVar[str]  # the Debian package that provides `binary`
    start_timeout_s: ClassVar[float]

    def __init__(self, data_dir: Path, port: int | None, host: str) -> None:
        self.data_dir = Path(data_dir)
        self._host = host
        self._port = free_port(host) if port is None else port
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """Address the server listens on."""
        return self._host

    @property
    def port(self) -> int:
        """Port the server listens on; it stays the same across restarts."""
        return self._port

    @property
    @abstractmethod
    def url(self) -> str:
        """Where clients connect."""

    @property
    def pid(self) -> int | None:
        """Process id while running, else None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive (it may have died since `start`)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        """Server log; also receives the process's stdout and stderr."""
        return self.data_dir / f"{self.binary}.log"

    def start(self) -> None:
        """Write the config, spawn the server and wait until it answers.

        Raises
        ------
        ServerError
            If the binary is missing, the port is taken, or the server exits or does not
            answer within `start_timeout_s`; the message ends with the log's last lines.
        """
        if self.running:
            raise ServerError(f"{self.binary} is already running (pid {self.pid})")
        binary = _find_binary(self.binary, self.package)
        check_port_free(self.host, self.port)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf_path = self.data_dir / f"{self.binary}.conf"
        conf_path.write_text(self._config())
        with self.log_path.open("ab") as log:
            try:
                proc = subprocess.Popen(
                    [binary, *self._args(conf_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=self._env(),
                )
            except OSError as exc:
                raise ServerError(f"cannot run {binary}: {exc}") from exc
        self._proc = proc
        self._wait_ready(proc)

    def stop(self) -> None:
        """Stop with SIGTERM so the server saves its state; SIGKILL if it hangs."""
        self._signal_and_wait(signal.SIGTERM)

    def kill(self) -> None:
        """Kill with SIGKILL, as a crash would: nothing is saved."""
        self._signal_and_wait(signal.SIGKILL)

    def restart(self) -> None:
        """Stop, then start again on the same port and data directory."""
        self.stop()
        self.start()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, pid={self.pid})"

    @abstractmethod
    def _config(self) -> str:
        """Return the rendered config file."""

    @abstractmethod
    def _args(self, conf_path: Path) -> list[str]:
        """Return the command-line arguments after the binary."""

    @abstractmethod
    def _ready(self) -> bool:
        """Return whether the server answers clients yet."""

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            code = proc.poll()
            if code is not None:
                self._proc = None
                raise ServerError(
                    f"{self.binary} exited with code {code} while starting{self._log_tail()}"
                )
            if self._ready():
                return
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(
                    f"{self.binary} did not answer on {self.url} within "
                    f"{self.start_timeout_s:g} s{self._log_tail()}"
                )
            time.sleep(_POLL_S)

    def _signal_and_wait(self, sig: signal.Signals) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        tail = "\n".join(lines[-_LOG_TAIL_LINES:])
        return f"; last lines of {self.log_path}:\n{tail}"


@dataclass(frozen=True)
class TlsListener:
    """A second Mosquitto listener that speaks TLS (same host, its own port).

    ``certfile`` and ``keyfile`` are the broker's PEM certificate and key; clients trust
    the CA that signed it (``mqtt_tls_ca_file`` in the gateway and ingest settings).
    """

    port: int
    certfile: Path
    keyfile: Path


class Mosquitto(_ManagedProcess):
    """Mosquitto MQTT broker with persistent sessions, from ``config/mosquitto.conf``.

    Parameters
    ----------
    data_dir
        Holds the config, the persistence database and the log.
    port
        TCP port; a free one when None.
    host
        Listen address.
    extra_conf
        Lines appended to the config, e.g. for a test that needs another limit.
    password_file
        Secured mode: Mosquitto ``password_file`` (hashed ``user:$7$...`` lines, see
        ``api.mosquitto``); anonymous clients are then refused. None: anyone may connect.
    acl_file
        Mosquitto ``acl_file``: what each user may read and write.
    tls
        An extra TLS listener, e.g. ``TlsListener(free_port(), cert, key)``.

    Examples
    --------
    >>> broker = Mosquitto(Path("/tmp/mw"), port=1883, password_file=Path("/etc/passwd.mq"))
    >>> [line for line in broker._config().splitlines() if "anonymous" in line[:15]]
    ['allow_anonymous false']
    """

    binary = "mosquitto"
    package = "mosquitto"
    start_timeout_s = 15.0

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        extra_conf: str = "",
        *,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        tls: TlsListener | None = None,
    ) -> None:
        super().__init__(data_dir, port, host)
        self.extra_conf = extra_conf
        self.password_file = password_file
        self.acl_file = acl_file
        self.tls = tls

    @property
    def url(self) -> str:
        """``mqtt://host:port``."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def secured(self) -> bool:
        """Whether only users of the password file may connect."""
        return self.password_file is not None

    def reload(self) -> None:
        """Reread the config, password and ACL files (SIGHUP); clients stay connected.

        Mosquitto disconnects connected clients whose login the new files no longer
        accept. Raises ``ServerError`` when the broker is not running.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise ServerError("mosquitto is not running")
        proc.send_signal(signal.SIGHUP)

    def _config(self) -> str:
        security = [f"allow_anonymous {'false' if self.secured else 'true'}"]
        if self.password_file is not None:
            security.append(f"password_file {self.password_file}")
        if self.acl_file is not None:
            security.append(f"acl_file {self.acl_file}")
        tls = ""
        if self.tls is not None:
            # Last in the file: certfile and keyfile belong to the listener line above them.
            tls = (
                f"\n# TLS listener (same logins and ACL as the plain one).\n"
                f"listener {self.tls.port} {self.host}\n"
                f"certfile {self.tls.certfile}\nkeyfile {self.tls.keyfile}\n"
            )
        text = _render(
            "mosquitto.conf",
            host=self.host,
            port=self.port,
            user=_current_user(),
            data_dir=self.data_dir,
            log_path=self.log_path,
            security="\n".join(security),
            tls_listener="",
        )
        if self.extra_conf:
            text = f"{text}\n{self.extra_conf}\n"
        return text + tls

    def _args(self, conf_path: Path) -> list[str]:
        return ["-c", str(conf_path)]

    def _ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False


class InfluxDB(_ManagedProcess):
    """InfluxDB 1.6 server (influxd), from ``config/influxdb.conf``.

    Parameters
    ----------
    data_dir
        Holds the config, the meta, data and WAL directories and the log.
    port
        HTTP port; a free one when None.
    host
        Listen address, for HTTP and for the backup RPC service (on `rpc_port`).
    """

    binary = "influxd"
    package = "influxdb"
    start_timeout_s = 30.0

    def __init__(self, data_dir: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        super().__init__(data_dir, port, host)
        self.rpc_port = free_port(host)

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def _config(self) -> str:
        return _render(
            "influxdb.conf",
            data_dir=json.dumps(str(self.data_dir))[1:-1],  # escaped for a TOML string
            http_address=f"{self.host}:{self.port}",
            rpc_address=f"{self.host}:{self.rpc_port}",
        )

    def _args(self, conf_path: Path) -> list[str]:
        return ["-config", str(conf_path)]

    def _env(self) -> dict[str, str]:
        # influxd lets INFLUXDB_<SECTION>_<KEY> variables override its config file.
        return {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}

    def _ready(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/ping", timeout=1, trust_env=False)
        except httpx.HTTPError:
            return False
        return response.status_code == 204


def _render(name: str, **values: object) -> str:
    return Template((CONFIG_DIR / name).read_text()).substitute(values)


def _find_binary(name: str, package: str) -> str:
    search_path = os.pathsep.join([os.environ.get("PATH", os.defpath), *_SBIN_DIRS])
    found = shutil.which(name, path=search_path)
    if found is None:
        raise ServerError(f"{name} not found: run scripts/setup (apt-get install {package})")
    return found


def check_port_free(host: str, port: int) -> None:
    """Raise ``ServerError`` when ``port`` is taken.

    Otherwise a server already on the port would answer the readiness check for ours.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ServerError(f"port {port} on {host} is already in use: {exc}") from exc


def _current_user() -> str:
    # Mosquitto drops root to this user; as non-root it ignores the option.
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return "mosquitto"
