"""A gateway's own network: a namespace joined to the host by a veth pair.

The gateway runs inside the namespace (``ip netns exec``) and reaches the broker on the
host end of the pair, so the fault acts on that link only: ``partition`` sets the
namespace's end down, ``add_loss`` drops a share of its packets at random (an nftables
``numgen random`` rule inside the namespace). The kernel here lacks ``sch_netem``, so
latency comes from :class:`DelayProxy`, a TCP relay on the host end that holds every
chunk from the gateway for the delay before passing it on.

>>> Netns(7).host_ip, Netns(7).ns_ip
('10.200.7.1', '10.200.7.2')
"""

from __future__ import annotations

import contextlib
import queue
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


class NetError(RuntimeError):
    """A namespace, link or nftables command failed (not root, tool missing...)."""


def _tool(name: str, package: str) -> str:
    path = shutil.which(name) or next(
        (str(Path(d) / name) for d in _SBIN if (Path(d) / name).exists()), None
    )
    if path is None:
        raise NetError(f"{name} not found: apt-get install {package}")
    return path


def _run(*args: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")


class Netns:
    """Namespace ``mwchaos<index>`` with veth ``mwc<index>h`` (host) / ``mwc<index>n``."""

    def __init__(self, index: int) -> None:
        if not 1 <= index <= 250:
            raise ValueError("index must be 1..250")
        self.name = f"mwchaos{index}"
        self.host_if, self.ns_if = f"mwc{index}h", f"mwc{index}n"
        self.host_ip, self.ns_ip = f"10.200.{index}.1", f"10.200.{index}.2"
        self._ip = ""
        self._nft = ""

    def create(self) -> None:
        """Create the namespace and the link, both ends up, a /30 between them."""
        self._ip = _tool("ip", "iproute2")
        ip, ns = self._ip, self.name
        self.destroy()  # leftovers of a killed run
        _run(ip, "netns", "add", ns)
        try:
            _run(ip, "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _run(ip, "link", "set", self.ns_if, "netns", ns)
            _run(ip, "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            _run(ip, "link", "set", self.host_if, "up")
            _run(ip, "-n", ns, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
            _run(ip, "-n", ns, "link", "set", self.ns_if, "up")
            _run(ip, "-n", ns, "link", "set", "lo", "up")
        except NetError:
            self.destroy()
            raise

    def exec_prefix(self) -> list[str]:
        """Command prefix that runs a program inside the namespace (same pid)."""
        return [self._ip or _tool("ip", "iproute2"), "netns", "exec", self.name]

    def partition(self) -> None:
        """Cut the link: the namespace's end goes down, the gateway's packets go nowhere."""
        _run(self._ip, "-n", self.name, "link", "set", self.ns_if, "down")

    def heal(self) -> None:
        """Bring the namespace's end back up."""
        _run(self._ip, "-n", self.name, "link", "set", self.ns_if, "up")

    def add_loss(self, percent: int) -> None:
        """Drop ``percent`` % of the namespace's packets, each way, at random."""
        self._nft = _tool("nft", "nftables")
        nft = [self._ip, "netns", "exec", self.name, self._nft]
        _run(*nft, "add", "table", "inet", "mwchaos")
        for chain, hook in (("out", "output"), ("in", "input")):
            spec = f"{{ type filter hook {hook} priority 0 ; }}"
            _run(*nft, "add", "chain", "inet", "mwchaos", chain, spec)
            rule = f"meta l4proto tcp numgen random mod 100 < {percent} counter drop"
            _run(*nft, "add", "rule", "inet", "mwchaos", chain, *rule.split())

    def loss_counters(self) -> str:
        """The nftables ruleset of the namespace with its drop counters."""
        if not self._nft:
            return ""
        cmd = [self._ip, "netns", "exec", self.name, self._nft, "list", "table", "inet", "mwchaos"]
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout

    def remove_loss(self) -> None:
        """Delete the loss rules."""
        nft = [self._ip, "netns", "exec", self.name, self._nft]
        _run(*nft, "delete", "table", "inet", "mwchaos")

    def destroy(self) -> None:
        """Delete the namespace (its veth end and so the pair with it); never raises."""
        ip = self._ip or _tool("ip", "iproute2")
        for args in (("netns", "del", self.name), ("link", "del", self.host_if)):
            subprocess.run([ip, *args], capture_output=True, check=False)


class DelayProxy:
    """TCP relay ``listen`` → ``target`` that delays the client's bytes by ``delay_s``.

    Each chunk read from the client is forwarded ``delay_s`` after it arrived, in order;
    the answers come back at once. So the round trip grows by ``delay_s``, as with
    ``tc netem delay`` on the client's egress.
    """

    def __init__(self, listen: tuple[str, int], target: tuple[str, int], delay_s: float) -> None:
        self.listen, self.target, self.delay_s = listen, target, delay_s
        self._server = socket.create_server(listen)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []

    def start(self) -> None:
        """Accept clients on a daemon thread."""
        self._spawn(self._accept)

    def stop(self) -> None:
        """Close the listener and every relayed connection."""
        self._stop.set()
        self._server.close()
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._socks += [client, upstream]
            chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()
            self._spawn(self._read, client, upstream, chunks)
            self._spawn(self._write_delayed, chunks, upstream, client)
            self._spawn(self._pump, upstream, client)

    def _read(self, src: socket.socket, dst: socket.socket, chunks: queue.Queue) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            chunks.put((time.monotonic() + self.delay_s, data))
            if not data:
                return

    def _write_delayed(self, chunks: queue.Queue, dst: socket.socket, src: socket.socket) -> None:
        while True:
            due, data = chunks.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not data:
                _close(dst, src)
                return
            try:
                dst.sendall(data)
            except OSError:
                _close(dst, src)
                return

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            except OSError:
                break
        _close(src, dst)


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
