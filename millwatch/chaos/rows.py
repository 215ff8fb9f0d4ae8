"""The fault matrix: each row streams, breaks something, heals and reconciles.

A row runs on real processes (see :mod:`millwatch.chaos.rig`): a healthy stream for
``stream_s``, the fault for ``fault_s``, the heal, ``after_s`` more of production, then
the gateways stop and everything they produced must land. ``recovery_s`` is the time from
the heal until every seq the outboxes had handed out at the heal is in InfluxDB.

>>> SHORT.fault_s < FULL.fault_s
True
>>> [row.name for row in ROWS][:3]
['broker_restart', 'broker_down', 'broker_kill9']
"""

from __future__ import annotations

import itertools
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt

from gateway.settings import GatewaySettings
from millwatch import contract
from millwatch.chaos.net import DelayProxy, Netns
from millwatch.chaos.rig import NORMAL_INTERVAL_S, NORMAL_MACHINES, Landed, Rig
from millwatch.servers import InfluxDB, free_port

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


@dataclass(frozen=True)
class Durations:
    """Seconds of healthy stream, of fault, and of production after the heal."""

    stream_s: float
    fault_s: float
    after_s: float
    drain_timeout_s: float


SHORT = Durations(stream_s=2, fault_s=6, after_s=2, drain_timeout_s=90)
FULL = Durations(stream_s=20, fault_s=120, after_s=20, drain_timeout_s=900)


@dataclass
class Result:
    """One row's figures; ``passed`` needs 0 lost, 0 duplicates and the row's own checks."""

    fault: str
    produced: int = 0
    landed: int = 0
    lost: int = 0
    duplicates: int = 0
    recovery_s: float | None = None
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No loss, no duplicate and no failed row check."""
        return self.lost == 0 and self.duplicates == 0 and not self.failures


@dataclass
class Context:
    """What a row gets: the shared InfluxDB, a work folder and the durations."""

    influx: InfluxDB
    work: Path
    durations: Durations


@dataclass(frozen=True)
class Row:
    """A named fault and the function that runs it."""

    name: str
    description: str
    run: Callable[[Context], Result]


# --- reconciliation ---------------------------------------------------------------------


def reconcile(name: str, produced: dict[tuple[str, str], int], rig: Rig) -> Result:
    """Compare seqs ``0..next-1`` per machine with what landed."""
    landed = rig.landed()
    result = Result(name)
    for key, n in produced.items():
        got = landed.get(key, Landed())
        wanted = set(range(n))
        result.produced += n
        result.landed += len(got.seqs & wanted)
        result.lost += len(wanted - got.seqs)
        result.duplicates += got.duplicates
        extra = got.seqs - wanted
        if extra:
            result.failures.append(f"{key}: seqs beyond the produced range {sorted(extra)[:5]}")
    strays = set(landed) - set(produced)
    if strays:
        result.failures.append(f"rows of machines nobody produced: {sorted(strays)[:5]}")
    if not result.produced:
        result.failures.append("nothing was produced")
    return result


def _wait_flowing(rig: Rig, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.seqs for e in rig.landed().values()):
            return
        time.sleep(0.3)
    tails = "\n".join(gw.tail() for gw in rig.gateways)
    raise RuntimeError(f"no data landed within {timeout} s; gateway logs:\n{tails}")


def _fresh(rig: Rig) -> dict[tuple[str, str], int]:
    """Seqs to wait for after a heal.

    All handed out so far, and a new one from each machine of a running gateway, so the
    recovery includes the data path working again.
    """
    wanted = {}
    for gw in rig.gateways:
        running = gw.proc is not None and gw.proc.poll() is None
        for machine, n in gw.produced().items():
            wanted[(gw.factory, machine)] = n + 1 if running else n
    return wanted


def _standard(
    ctx: Context,
    name: str,
    inject: Callable[[Rig], None],
    heal: Callable[[Rig], None],
    rig: Rig | None = None,
    recovery_timeout_s: float | None = None,
    **gateway: object,
) -> Result:
    """Stream, inject, hold for ``fault_s``, heal, stream on, stop, reconcile."""
    d = ctx.durations
    rig = rig or Rig(ctx.influx, ctx.work / name)
    try:
        if rig.ingest is None:
            rig.start()
        if not rig.gateways:
            rig.add_gateway(**gateway)  # type: ignore[arg-type]
        _wait_flowing(rig)
        time.sleep(d.stream_s)
        inject(rig)
        time.sleep(d.fault_s)
        heal(rig)
        recovery_timeout_s = recovery_timeout_s or d.drain_timeout_s
        recovery = rig.wait_landed(_fresh(rig), recovery_timeout_s)
        time.sleep(d.after_s)
        rig.finish(d.drain_timeout_s)
        produced = rig.produced()
        rig.wait_landed(produced, d.drain_timeout_s)
        result = reconcile(name, produced, rig)
        result.recovery_s = recovery
        if recovery is None:
            result.failures.append(f"not recovered within {recovery_timeout_s} s of the heal")
        return result
    finally:
        rig.close()


# --- rows: broker, database, processes --------------------------------------------------


def broker_restart(ctx: Context) -> Result:
    """Mosquitto restarted (SIGTERM, start) mid-stream."""
    return _standard(ctx, "broker_restart", lambda r: r.broker.restart(), lambda r: None)


def broker_down(ctx: Context) -> Result:
    """Mosquitto stopped for ``fault_s`` while the gateway keeps producing into its outbox."""
    depth: list[int] = []

    def heal(rig: Rig) -> None:
        depth.append(rig.gateways[0].depth())
        rig.broker.start()

    result = _standard(ctx, "broker_down", lambda r: r.broker.stop(), heal)
    result.notes.append(f"outbox held {depth[0]} messages at the heal")
    if depth[0] == 0:
        result.failures.append("the outbox held nothing: the broker outage proved nothing")
    return result


def broker_kill9(ctx: Context) -> Result:
    """Mosquitto killed with SIGKILL mid-stream and started again a second later."""

    def inject(rig: Rig) -> None:
        rig.broker.kill()
        time.sleep(1)
        rig.broker.start()

    return _standard(ctx, "broker_kill9", inject, lambda r: None)


def influx_down(ctx: Context) -> Result:
    """InfluxDB stopped for ``fault_s``: ingest acks nothing, the broker holds the rest."""
    return _standard(ctx, "influx_down", lambda r: r.influx.stop(), lambda r: r.influx.start())


def _when(condition: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def ingest_kill9(ctx: Context) -> Result:
    """The ingest worker SIGKILLed mid-batch, restarted after ``fault_s``.

    To kill it mid-batch for sure, InfluxDB is frozen (SIGSTOP) until the worker holds
    received, unacked messages whose write is under way; InfluxDB resumes (SIGCONT) right
    after the kill, so that write may still land, unacked: the redelivery rewrites it.
    """
    held: list[float] = []

    def inject(rig: Rig) -> None:
        pid = rig.influx.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            _when(lambda: (rig.ingest_unacked() or 0) > 0)
            held.append(rig.ingest_unacked() or 0)
            rig.kill_ingest()
        finally:
            os.kill(pid, signal.SIGCONT)

    result = _standard(ctx, "ingest_kill9", inject, lambda r: r.start_ingest())
    result.notes.append(f"killed holding {held[0]:.0f} received, unacked messages")
    if not held[0]:
        result.failures.append("ingest held nothing when killed: not mid-batch")
    return result


def gateway_kill9(ctx: Context) -> Result:
    """The gateway SIGKILLed mid-publish (rows unacked in its outbox), restarted on it.

    The broker is frozen (SIGSTOP) until the outbox holds unacked rows, so they are surely
    there at the kill (a fast broker could otherwise drain them between check and kill).
    """
    depth: list[int] = []

    def inject(rig: Rig) -> None:
        gw, pid = rig.gateways[0], rig.broker.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            _when(lambda: gw.depth() > 0)
            gw.kill()
            depth.append(gw.depth())
        finally:
            os.kill(pid, signal.SIGCONT)

    result = _standard(ctx, "gateway_kill9", inject, lambda r: r.gateways[0].start())
    result.notes.append(f"{depth[0]} outbox rows unacked at the kill, replayed at the restart")
    if not depth[0]:
        result.failures.append("the outbox was empty at the kill: not mid-publish")
    return result


def burst_10x(ctx: Context) -> Result:
    """For ``fault_s`` a second gateway adds 9x the normal load: 10x the machines in all.

    The normal gateway has 8 machines and 2 hall sensors; the burst one 88 and 2.
    """
    burst = {kind: 11 * n for kind, n in NORMAL_MACHINES.items()}

    ticks = round(ctx.durations.fault_s / NORMAL_INTERVAL_S)
    took: list[float] = []

    def inject(rig: Rig) -> None:
        took.append(time.monotonic())
        rig.add_gateway(burst, max_ticks=ticks)  # exits once its ticks are all acked

    def heal(rig: Rig) -> None:
        proc = rig.gateways[1].proc
        assert proc is not None
        proc.wait(ctx.durations.drain_timeout_s)
        took[0] = time.monotonic() - took[0]

    result = _standard(ctx, "burst_10x", inject, heal)
    result.notes.append(f"burst gateway: {ticks} ticks, done and drained after {took[0]:.1f} s")
    return result


# --- rows: the gateway's link -----------------------------------------------------------


def _netns_rig(ctx: Context, name: str) -> tuple[Rig, Netns]:
    ns = Netns(random.randint(1, 250))
    ns.create()
    try:
        rig = Rig(ctx.influx, ctx.work / name, broker_host=ns.host_ip)
        rig.start()
    except BaseException:
        ns.destroy()
        raise
    return rig, ns


def partition(ctx: Context) -> Result:
    """The gateway's link to the broker cut (veth down in its namespace) for ``fault_s``."""
    rig, ns = _netns_rig(ctx, "partition")
    try:
        rig.add_gateway(prefix=ns.exec_prefix(), broker=(ns.host_ip, rig.link_port))
        return _standard(ctx, "partition", lambda r: ns.partition(), lambda r: ns.heal(), rig)
    finally:
        ns.destroy()


def latency_loss(ctx: Context) -> Result:
    """200 ms added latency and 5 % random packet loss on the gateway's link."""
    rig, ns = _netns_rig(ctx, "latency_loss")
    proxy = DelayProxy((ns.host_ip, free_port(ns.host_ip)), ("127.0.0.1", rig.broker.port), 0.2)
    proxy.start()
    counters: list[str] = []
    try:
        rig.add_gateway(prefix=ns.exec_prefix(), broker=proxy.listen)

        def heal(rig: Rig) -> None:
            counters.append(ns.loss_counters())
            ns.remove_loss()

        result = _standard(ctx, "latency_loss", lambda r: ns.add_loss(5), heal, rig)
    finally:
        proxy.stop()
        ns.destroy()
    dropped = sum(int(n) for n in re.findall(r"counter packets (\d+)", counters[0]))
    result.notes.append(f"{dropped} packets dropped by the loss rule; +200 ms via relay")
    if dropped == 0:
        result.failures.append("the loss rule dropped no packet")
    return result


# --- rows: a fake gateway (paho) ------------------------------------------------------


class FakeGateway:
    """Publishes hand-made payloads as one factory's machines, QoS 1, waits for PUBACKs.

    MQTT 5, so a PUBACK says "no matching subscribers" (0x10) while ingest has not
    subscribed yet; :meth:`send` then publishes those messages again, as the gateway does.
    """

    def __init__(self, rig: Rig, factory: str) -> None:
        self.rig, self.factory = rig, factory
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(100)
        self.client.on_publish = self._on_publish
        self._codes: dict[int, int] = {}
        self.client.connect(rig.broker.host, rig.broker.port)
        self.client.loop_start()

    def _on_publish(self, *args: object) -> None:
        mid, reason = args[2], args[3]  # paho callback API 2: client, userdata, mid, rc, props
        self._codes[int(mid)] = int(getattr(reason, "value", 0))  # type: ignore[call-overload]

    def topic(self, machine: str, channel: str = "telemetry") -> str:
        """The contract topic of one of this factory's machines (hall ``weave1``)."""
        address = contract.MachineAddress(self.rig.cluster, self.factory, "weave1", machine)
        return contract.machine_topic(address, channel)  # type: ignore[arg-type]

    def send(self, messages: list[tuple[str, bytes]], timeout: float = 60) -> None:
        """Publish every ``(topic, payload)``; again while the broker has no subscriber."""
        deadline = time.monotonic() + timeout
        while messages:
            infos = [(self.client.publish(t, p, qos=1), (t, p)) for t, p in messages]
            for info, _ in infos:
                info.wait_for_publish(30)
            messages = [m for info, m in infos if self._codes.pop(info.mid, 0) == 0x10]
            if messages and time.monotonic() > deadline:
                raise RuntimeError(f"{len(messages)} messages found no subscriber in {timeout} s")
            if messages:
                time.sleep(0.5)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def telemetry(seq: int, start_ms: int, samples: int = 5, step_ms: int = 100) -> bytes:
    """A valid loom telemetry payload of ``samples`` samples from ``start_ms``."""
    ts = start_ms + step_ms * np.arange(samples)
    speed = 800.0 + np.arange(samples, dtype=float)
    batch = contract.TelemetryBatch("loom_airjet", seq, ts, {"speed_rpm": speed})
    return contract.encode_telemetry(batch)


def _fake_rig(ctx: Context, name: str) -> tuple[Rig, FakeGateway, str]:
    rig = Rig(ctx.influx, ctx.work / name)
    rig.start()
    factory = f"x{rig.run_id}-p"
    rig.extra_factories.append(factory)
    return rig, FakeGateway(rig, factory), factory


def _settle(rig: Rig, produced: dict[tuple[str, str], int], timeout: float) -> float | None:
    start = time.monotonic()
    done = rig.wait_landed(produced, timeout)
    return None if done is None else time.monotonic() - start


def dup_reorder(ctx: Context) -> Result:
    """Every message published twice, all in random order: each row lands once."""
    rig, fake, factory = _fake_rig(ctx, "dup_reorder")
    machines, seqs, samples = 5, 40, 5
    try:
        base = contract.now_ms() - 3_600_000
        messages = [
            (fake.topic(f"l{m:03d}"), telemetry(s, base + s * 1000, samples))
            for m in range(machines)
            for s in range(seqs)
        ]
        doubled = messages * 2
        random.Random(7).shuffle(doubled)
        fake.send(doubled)
        produced = {(factory, f"l{m:03d}"): seqs for m in range(machines)}
        recovery = _settle(rig, produced, ctx.durations.drain_timeout_s)
        time.sleep(1)  # late redeliveries would add rows now
        result = reconcile("dup_reorder", produced, rig)
        result.recovery_s = recovery
        rows = sum(e.rows for e in rig.landed().values())
        result.duplicates += max(0, rows - machines * seqs * samples)
        result.notes.append(f"{len(doubled)} messages sent for {len(messages)}; {rows} rows")
        return result
    finally:
        fake.close()
        rig.close()


def _rejections(rig: Rig, since_ns: int) -> Counter[str]:
    q = (
        f'SELECT count("detail") FROM "dead_letter" WHERE time >= {since_ns} '
        f'AND "topic" =~ /x{rig.run_id}/ GROUP BY "reason"'
    )
    return Counter({r["reason"]: int(r["count"]) for r in rig.query("millwatch_internal", q)})


def _wait_rejections(rig: Rig, since_ns: int, want: Counter[str], timeout: float) -> Counter[str]:
    deadline = time.monotonic() + timeout
    got = _rejections(rig, since_ns)
    while got != want and time.monotonic() < deadline:
        time.sleep(0.5)
        got = _rejections(rig, since_ns)
    return got


def clock_skew(ctx: Context) -> Result:
    """Gateways whose clocks run minutes off: +5 min and -20 min land, +15 min is refused.

    Two real gateway processes run under ``faketime`` (+5 min, -20 min); a fake gateway
    sends batches 15 min ahead, which the contract refuses (``timestamp_out_of_range``).
    """
    lib = Path(FAKETIME_LIB)
    if not lib.exists():
        raise RuntimeError(f"{lib} not found: apt-get install faketime")
    rig = Rig(ctx.influx, ctx.work / "clock_skew")
    since = time.time_ns()
    rig.start()
    for skew in ("+5m", "-20m"):
        # Preloaded into the gateway itself (the faketime wrapper would own the pid we
        # kill); only the wall clock is skewed: with a faked monotonic clock waits hang.
        env = {"LD_PRELOAD": str(lib), "FAKETIME": skew, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
        rig.add_gateway(env=env)
    fake = FakeGateway(rig, f"x{rig.run_id}-p")
    try:
        ahead = contract.now_ms() + 15 * 60_000
        fake.send([(fake.topic("l001"), telemetry(s, ahead + s * 1000)) for s in range(10)])
        result = _standard(ctx, "clock_skew", lambda r: None, lambda r: None, rig)
        got = _wait_rejections(rig, since, Counter(timestamp_out_of_range=10), 30)
        result.notes.append(f"+15 min batches rejected: {dict(got)}")
        if got != Counter(timestamp_out_of_range=10):
            result.failures.append(f"expected 10 timestamp_out_of_range, got {dict(got)}")
        return result
    finally:
        fake.close()
        rig.close()


def bad_input(ctx: Context) -> Result:
    """Bad payloads amid a real gateway's stream: each refused under its reason, none lost."""
    rig = Rig(ctx.influx, ctx.work / "bad_input")
    since = time.time_ns()
    rig.start()
    rig.add_gateway()
    fake = FakeGateway(rig, f"x{rig.run_id}-p")
    now = contract.now_ms()
    good = telemetry(0, now).decode()
    bad = {
        "malformed_json": b'{"v":1,"seq":1,',
        "wrong_type": good.replace("800.0", '"fast"').encode(),
        "non_finite": good.replace("800.0", "NaN").encode(),
        "timestamp_out_of_range": telemetry(1, now + 86_400_000),
        "oversize": b'{"v":1,"pad":"' + b"x" * (2 * 1024 * 1024 + 10) + b'"}',
        "unknown_machine_type": good.replace("loom_airjet", "loom_warp9").encode(),
        "unknown_field": good.replace("speed_rpm", "warp_speed").encode(),
        "schema": b'{"v":1,"type":"loom_airjet","ts":[1],"m":{}}',
    }
    past = telemetry(2, now - 500 * 86_400_000)
    want = Counter({**dict.fromkeys(bad, 2), "timestamp_out_of_range": 4, "bad_topic": 2})

    def inject(rig: Rig) -> None:
        for _ in range(2):
            messages = [(fake.topic("l001"), p) for p in bad.values()]
            bad_topic = fake.topic("l001").replace("/l001/", "/BAD_ID/")
            messages += [(fake.topic("l001"), past), (bad_topic, b"{}")]
            fake.send(messages)

    try:
        result = _standard(ctx, "bad_input", inject, lambda r: None, rig)
        got = _wait_rejections(rig, since, want, 30)
        result.notes.append(f"rejected by reason: {dict(sorted(got.items()))}")
        if got != want:
            result.failures.append(f"rejections {dict(got)} != sent {dict(want)}")
        return result
    finally:
        fake.close()
        rig.close()


# --- rows: analytics -------------------------------------------------------------------

SHIFT_MS = 8 * 3_600_000
SHIFT_OFFSET_MS = 6 * 3_600_000  # 3x8 shifts from 06:00 UTC


def analytics_kill9(ctx: Context) -> Result:
    """Analytics SIGKILLed during its first pass, restarted: its tables come out complete.

    Two hours of a factory are streamed in fast-forward first. Complete means: every raw
    row is counted in the 60-s tables (``sum(rows)`` = raw count per type) and every
    machine has a ``kpi_shift`` row for each shift its data touches.
    """
    rig = Rig(ctx.influx, ctx.work / "analytics_kill9")
    try:
        rig.start()
        # Two hours ending 3 min ago: the last minute is complete, so downsampled at once.
        start = (contract.now_ms() // 60_000 - 123) * 60_000
        settings = {"fast_forward": True, "start_ts_ms": start, "max_ticks": 7200}
        gw = rig.add_gateway(samples_per_message=60, **settings)  # type: ignore[arg-type]
        assert gw.proc is not None
        gw.proc.wait(ctx.durations.drain_timeout_s)
        produced = rig.produced()
        if rig.wait_landed(produced, ctx.durations.drain_timeout_s) is None:
            raise RuntimeError("the fast-forward fill did not land")
        factories = rig.work / "factories.toml"
        factories.write_text(
            f'[[factories]]\nid = "{gw.factory}"\ntimezone = "UTC"\nshifts = "3x8"\n'
            'shift_start = "06:00"\n'
        )
        env = {
            "MILLWATCH_ANALYTICS_INFLUX_URL": ctx.influx.url,
            "MILLWATCH_ANALYTICS_FACTORIES_FILE": str(factories),
            "MILLWATCH_ANALYTICS_CLUSTER": rig.cluster,
            "MILLWATCH_ANALYTICS_INTERVAL_S": "2",
            "MILLWATCH_ANALYTICS_SETTLE_S": "0",
            "MILLWATCH_ANALYTICS_KPI_EVERY_S": "2",
            "MILLWATCH_ANALYTICS_KPI_HORIZON_H": "3",
            "MILLWATCH_ANALYTICS_TRAIN_H": "2",
            "MILLWATCH_ANALYTICS_MIN_TRAIN_H": "1",
        }
        db = contract.factory_database(gw.factory)
        first = rig.spawn("analytics", ["-m", "analytics"], env)
        _wait_log(rig.work / "analytics.log", "analytics_started", 60)
        time.sleep(1.0)  # into the first pass: downsampling, the monitor's fit
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
        passes = rig.query(contract.INTERNAL_DATABASE, _passes_query(gw.factory))
        partial = _downsampled(rig, db)
        restarted = time.monotonic()
        rig.spawn("analytics", ["-m", "analytics"], env)
        result = reconcile("analytics_kill9", produced, rig)
        deadline = restarted + ctx.durations.drain_timeout_s
        missing = _analytics_missing(rig, db)
        while missing and time.monotonic() < deadline:
            time.sleep(1)
            missing = _analytics_missing(rig, db)
        result.recovery_s = time.monotonic() - restarted if not missing else None
        result.failures += missing
        result.notes.append(f"killed with {partial} raw rows downsampled, {len(passes)} passes")
        if passes:
            result.failures.append("the kill came after a complete pass: nothing was interrupted")
        return result
    finally:
        rig.close()


def _passes_query(factory: str) -> str:
    return f"SELECT pass_s FROM internal_analytics WHERE factory = '{factory}'"


def _wait_log(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{text!r} not in {path} after {timeout} s")


def _downsampled(rig: Rig, db: str) -> int:
    rows = rig.query(db, 'SELECT sum("rows") FROM /_1m$/')
    return int(sum(r["sum"] for r in rows))


def _analytics_missing(rig: Rig, db: str) -> list[str]:
    """What the analytics tables still lack; empty when complete."""
    missing = []
    for m in ("loom", "knit", "hall_env"):
        raw = rig.query(db, f'SELECT count("seq") FROM "{m}"')
        done = rig.query(db, f'SELECT sum("rows") FROM "{m}_1m"')
        want, got = (raw[0]["count"] if raw else 0), (done[0]["sum"] if done else 0)
        if want != got:
            missing.append(f"{m}_1m counts {got} of {want} raw rows")
    for m in ("loom", "knit"):
        q = f'SELECT first("seq"), last("seq") FROM "{m}" GROUP BY "machine"'
        first = {r["machine"]: r["time"] for r in rig.query(db, q.replace(', last("seq")', ""))}
        last = {r["machine"]: r["time"] for r in rig.query(db, q.replace('first("seq"), ', ""))}
        q = f'SELECT count("planned_s") FROM kpi_shift WHERE "type" =~ /^{m}/ GROUP BY machine'
        kpis = {r["machine"]: r["count"] for r in rig.query(db, q)}
        for machine, t0 in first.items():
            shifts = len(_shift_starts(t0 // 1_000_000, last[machine] // 1_000_000))
            if kpis.get(machine, 0) != shifts:
                missing.append(f"{machine}: {kpis.get(machine, 0)} of {shifts} shift KPIs")
    return missing


def _shift_starts(first_ms: int, last_ms: int) -> list[int]:
    """Starts of the 3x8 shifts (06:00 UTC) that ``[first_ms, last_ms]`` touches.

    >>> _shift_starts(6 * 3_600_000, 14 * 3_600_000)
    [21600000, 50400000]
    """
    start = (first_ms - SHIFT_OFFSET_MS) // SHIFT_MS * SHIFT_MS + SHIFT_OFFSET_MS
    return list(range(start, last_ms + 1, SHIFT_MS))


# --- rows: the gateway's disk -----------------------------------------------------------


#: The free space a gateway's outbox leaves alone by default (its appends stop there).
OUTBOX_RESERVE_BYTES: int = GatewaySettings.model_fields["outbox_min_free_bytes"].default


def disk_full(ctx: Context) -> Result:
    """The outbox's filesystem (a 16 MiB tmpfs) fills up during a broker outage.

    The outbox grows into the last free space until only its reserve is left; the gateway
    then holds new flushes in memory (:mod:`gateway.holding`) and stores them once the
    heal frees the disk (and restarts the broker). Besides seq reconciliation this row
    counts missing sample timestamps per machine and the messages the gateway logged as
    given up, so a loss without a seq gap cannot pass unseen.
    """
    work = ctx.work / "disk_full"
    mount = work / "outbox"
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    filler = mount / "filler"
    try:
        rig = Rig(ctx.influx, work)

        def inject(rig: Rig) -> None:
            rig.broker.stop()
            free = shutil.disk_usage(mount).free
            room = OUTBOX_RESERVE_BYTES + 128 * 1024  # a few seconds of outbox growth
            filler.write_bytes(b"\0" * max(0, free - room))

        def heal(rig: Rig) -> None:
            filler.unlink()
            rig.broker.start()

        result = _standard(ctx, "disk_full", inject, heal, rig, outbox_dir=mount)
        log = rig.gateways[0].log.read_text(errors="replace")
        held = re.findall(r"event=outbox_storage_recovered .*?held_max_messages=(\d+)", log)
        # A stop that left rows in the outbox is followed by a one-tick drain gateway; the
        # pause before its tick is a restart, not a loss.
        drained = rig.gateways[0].config.with_suffix(".drain.toml").exists()
        missing = _missing_samples(rig, drained)
        result.notes.append(
            f"storage failures logged: {log.count('event=outbox_storage_failed')}, "
            f"recoveries: {log.count('event=outbox_storage_recovered')}, "
            f"most held in memory: {max(map(int, held), default=0)} messages; "
            f"{missing} sample timestamps missing"
        )
        if not held:
            result.failures.append("the outbox never failed and recovered: the row proved nothing")
        given_up = sum(map(int, re.findall(r"given_up_messages=(\d+)", log)))
        given_up += sum(map(int, re.findall(r"event=outbox_held_lost_at_stop messages=(\d+)", log)))
        if missing or given_up:
            result.lost += max(missing, given_up)
            result.failures.append(
                f"{missing} samples missing, {given_up} messages given up by the gateway"
            )
        return result
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _missing_samples(rig: Rig, drained: bool) -> int:
    """Sample ticks absent between a machine's first and last telemetry row.

    With ``drained``, the last row (the drain gateway's one tick) is left out.
    """
    step_ns = round(NORMAL_INTERVAL_S * 1e9)
    missing = 0
    for gw in rig.gateways:
        db = contract.factory_database(gw.factory)
        for measurement in ("loom", "knit"):
            q = f'SELECT "seq" FROM "{measurement}" GROUP BY "machine"'
            times: dict[str, list[int]] = {}
            for row in rig.query(db, q):
                times.setdefault(row["machine"], []).append(row["time"])
            for ts in times.values():
                ts.sort()
                if drained:
                    ts.pop()
                missing += sum(round((b - a) / step_ns) - 1 for a, b in itertools.pairwise(ts))
    return missing


ROWS: tuple[Row, ...] = (
    Row("broker_restart", "Mosquitto restarted mid-stream", broker_restart),
    Row("broker_down", "Mosquitto down, gateway outbox holds then drains", broker_down),
    Row("broker_kill9", "Mosquitto SIGKILLed mid-stream, restarted", broker_kill9),
    Row("influx_down", "InfluxDB down, ingest holds acks", influx_down),
    Row("ingest_kill9", "ingest SIGKILLed mid-batch, restarted", ingest_kill9),
    Row("gateway_kill9", "gateway SIGKILLed mid-publish, restarted", gateway_kill9),
    Row("partition", "gateway <-> broker link down (netns veth)", partition),
    Row("latency_loss", "200 ms latency + 5 % packet loss on that link", latency_loss),
    Row("dup_reorder", "every message twice, shuffled", dup_reorder),
    Row("clock_skew", "gateway clocks +5 min / -20 min; +15 min refused", clock_skew),
    Row("burst_10x", "10x normal load", burst_10x),
    Row("bad_input", "malformed, wrong types, NaN, out-of-range ts, oversize...", bad_input),
    Row("analytics_kill9", "analytics SIGKILLed mid-pass, restarted", analytics_kill9),
    Row("disk_full", "outbox filesystem full during a broker outage", disk_full),
)
