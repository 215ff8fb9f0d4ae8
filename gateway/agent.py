"""The gather loop: read the inputs every tick, batch per machine, store in the outbox.

Inputs hand over whole machine groups (one array per field, one value per machine).
The agent keeps them grouped until a flush, stacks each field into shape
``(ticks, n_machines)`` and slices column ``j`` for machine ``j``: no per-sample
Python loop. Every flush becomes one outbox transaction holding every machine's
telemetry and event messages together with the advanced sequence counters, so a
crash never splits a flush and never reuses a ``seq``.

Sequence numbers are per machine, one counter shared by its ``telemetry`` and
``event`` messages, strictly increasing and persisted in the outbox. Refused
messages (outbox full under ``reject_newest``) keep their numbers: the gaps are
visible end to end. A flush the outbox cannot store (disk full) waits in memory
(:mod:`gateway.holding`) and keeps its numbers too; one given up for memory is a gap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gateway.holding import FlushWriter, HeldFlush, Outcome
from gateway.inputs.base import Input, Reading
from gateway.metrics import GatewayMetrics
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from gateway.settings import GatewaySettings
from millwatch.contract import (
    MACHINE_TYPES,
    MAX_PAYLOAD_BYTES,
    MAX_RECORDS,
    ContractError,
    FieldKind,
    MachineAddress,
    MachineChannel,
    RecordBatch,
    TelemetryBatch,
    check_numeric,
    check_record,
    encode_records,
    encode_telemetry,
    machine_topic,
    now_ms,
)

log = logging.getLogger(__name__)

FAST_FORWARD_STEP_MS = 1000
#: Capped backoff between attempts to start an input whose ``start()`` raised.
START_RETRY_MIN_S = 1.0
START_RETRY_MAX_S = 60.0
_ERROR_LOG_EVERY_S = 10.0
_ROOM_POLL_S = 0.01
_GROUP_KEY_CACHE = 256


@dataclass
class Produced:
    """What this process stored for one machine (tests reconcile end to end with it).

    ``first_seq``..``last_seq`` are the sequence numbers this process consumed, without
    holes except the ``rejected`` messages (refused by a full outbox, or given up while
    the outbox could not be written). Rows that ``drop_oldest`` deletes later are
    counted only in ``outbox_dropped_total``.
    """

    first_seq: int | None = None
    last_seq: int | None = None
    messages: int = 0
    samples: int = 0
    events: int = 0
    labels: int = 0
    rejected: int = 0


@dataclass
class _Group:
    """Readings of one machine group buffered until the next flush."""

    machine_type: str
    machines: Sequence[MachineAddress]
    ts: list[int] = field(default_factory=list)
    ticks: list[dict[str, np.ndarray]] = field(default_factory=list)
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    labels: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


@dataclass
class _InputState:
    input: Input
    started: bool = False
    retry_at: float = 0.0
    backoff_s: float = 0.0
    last_log: float = float("-inf")
    unlogged_errors: int = 0


class Agent:
    """Gather, batch and store; runs on its own thread via :meth:`run`.

    Parameters
    ----------
    settings
        Tick period or fast-forward, ``samples_per_message``, ids.
    inputs
        Initialised input plugins (``init()`` already passed); the agent starts them
        and retries a failed ``start()`` with capped backoff instead of giving up.
    outbox
        Where every flush goes, in one transaction; also holds the sequence counters.
    metrics
        Samples, events, input errors and drops are counted here.
    publisher
        Woken after each flush and used for the self-metrics; optional in tests.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        inputs: Sequence[Input],
        outbox: Outbox,
        metrics: GatewayMetrics,
        publisher: Publisher | None = None,
    ) -> None:
        self.settings, self.outbox, self.metrics = settings, outbox, metrics
        self.publisher = publisher
        self.writer = FlushWriter(outbox, metrics, settings.outbox_hold_max_bytes)
        self.ticks = 0
        self.last_ts_ms: int | None = None
        self.done = threading.Event()
        self._inputs = [_InputState(i) for i in inputs]
        self._seqs = outbox.next_seqs()
        self._groups: dict[int, _Group] = {}
        self._buffered_ticks = 0
        self._last_flush_rows = 0
        self._next_metrics = float("inf")  # set when run() starts
        self._produced: dict[MachineAddress, Produced] = {}
        self._produced_lock = threading.Lock()
        self._topics: dict[tuple[MachineAddress, str], str] = {}
        self._warned_fields: set[tuple[str, str]] = set()
        self._group_keys: dict[int, tuple[Sequence[MachineAddress], int]] = {}
        self._group_ids: dict[tuple[str, tuple[MachineAddress, ...]], int] = {}

    def produced(self) -> dict[MachineAddress, Produced]:
        """A copy of the per-machine bookkeeping, safe to read from another thread."""
        with self._produced_lock:
            return {a: replace(p) for a, p in self._produced.items()}

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set or ``max_ticks`` is reached, then flush and stop inputs."""
        try:
            if self.settings.fast_forward:
                ticks = self._fast_forward_ticks(stop)
            else:
                ticks = self._real_time_ticks(stop)
            self._next_metrics = time.monotonic() + self.settings.metrics_interval_s
            for ts_ms in ticks:
                try:
                    self.tick(ts_ms)
                except Exception:  # a bug must not stop the gateway; the tick is lost
                    log.exception("event=tick_failed ts=%d", ts_ms)
                    self.metrics.input_errors.inc()
                self._metrics_when_due()
        finally:
            self.close()
            self.done.set()

    def tick(self, ts_ms: int) -> None:
        """Gather every input once at ``ts_ms``; flush after ``samples_per_message`` ticks."""
        for state in self._inputs:
            for reading in self._gather(state, ts_ms):
                self._buffer(reading)
        self.ticks += 1
        self.last_ts_ms = ts_ms
        self._buffered_ticks += 1
        if self._buffered_ticks >= self.settings.samples_per_message:
            self.flush()

    def flush(self) -> None:
        """Encode the buffered ticks per machine and append them in one transaction."""
        groups, self._groups, self._buffered_ticks = self._groups, {}, 0
        rows: list[tuple[str, bytes]] = []
        seqs: dict[str, int] = {}
        stats: dict[MachineAddress, Produced] = {}
        for group in groups.values():
            try:
                self._encode_group(group, rows, seqs, stats)
            except Exception:  # a bug in one group must not cost the others their data
                log.exception("event=encode_failed type=%s", group.machine_type)
                self.metrics.input_errors.inc()
        self._last_flush_rows = len(rows)
        if not rows:
            return
        self._seqs.update(seqs)  # handed out now, whatever the outbox does with them
        self._record(self.writer.write(HeldFlush(rows, seqs, stats)))

    def _record(self, outcomes: list[Outcome]) -> None:
        """Book what the writer did with each flush; wake the publisher if rows were stored."""
        for flush, outcome in outcomes:
            self._commit(flush.stats, stored=outcome == "stored")
        if self.publisher is not None and any(o == "stored" for _, o in outcomes):
            self.publisher.wake()

    def _metrics_when_due(self) -> None:
        if time.monotonic() >= self._next_metrics:
            self.publish_metrics()
            self._next_metrics = time.monotonic() + self.settings.metrics_interval_s

    def publish_metrics(self) -> None:
        """Send a self-metrics snapshot through the publisher (not outboxed)."""
        self.metrics.outbox_depth.set(self.outbox.depth())
        if self.publisher is not None:
            self.publisher.publish_metrics(self.metrics.snapshot())

    def close(self) -> None:
        """Flush what is buffered, store what is held if the disk allows, stop the inputs."""
        if self._buffered_ticks:
            self.flush()
        if self.writer.held:
            self._record(self.writer.close())
        for state in self._inputs:
            if state.started:
                try:
                    state.input.stop()
                except Exception:
                    log.exception("event=input_stop_failed input=%s", _name(state.input))
                state.started = False

    # --- ticks -------------------------------------------------------------------

    def _fast_forward_ticks(self, stop: threading.Event) -> Iterator[int]:
        """Virtual clock, one second per tick, as fast as the outbox drains.

        Fast-forward waits for room in the outbox instead of dropping: virtual time
        can wait, so benchmarks measure the pipeline, not the drop policy.
        """
        max_ticks = self.settings.max_ticks
        ts = self.settings.start_ts_ms
        if ts is None:  # end near now: ingest rejects timestamps > now + 10 min
            ts = now_ms() // 1000 * 1000 - (max_ticks or 0) * FAST_FORWARD_STEP_MS
        while not stop.is_set() and (max_ticks is None or self.ticks < max_ticks):
            self._wait_for_room(stop)
            yield ts
            ts += FAST_FORWARD_STEP_MS

    def _real_time_ticks(self, stop: threading.Event) -> Iterator[int]:
        """Wall-clock ticks on multiples of ``sample_interval_s``; late ticks are skipped."""
        interval = max(1, round(self.settings.sample_interval_s * 1000))
        max_ticks = self.settings.max_ticks
        ts = now_ms() // interval * interval
        while not stop.is_set() and (max_ticks is None or self.ticks < max_ticks):
            yield ts
            ts = max(ts + interval, now_ms() // interval * interval)
            delay = (ts - now_ms()) / 1000
            if delay > 0 and stop.wait(delay):
                return

    def _wait_for_room(self, stop: threading.Event) -> None:
        if self._buffered_ticks + 1 < self.settings.samples_per_message:
            return
        need = self._last_flush_rows  # the next flush is about as big as the last
        limit = self.outbox.max_messages
        while (
            need <= limit < self.outbox.depth() + need
            or self._broker_backlogged()
            or self.writer.held
        ) and not stop.is_set():
            stop.wait(_ROOM_POLL_S)
            if self.writer.held:  # virtual time waits for the disk instead of holding
                self._record(self.writer.retry_when_due())
                self._metrics_when_due()  # the alarm must go out while it waits

    def _broker_backlogged(self) -> bool:
        """Whether the broker stores more messages than a backfill may pile up."""
        limit = self.settings.broker_backlog_limit
        backlog = self.publisher.broker_backlog if self.publisher is not None else None
        return limit is not None and backlog is not None and backlog > limit

    # --- inputs ------------------------------------------------------------------

    def _gather(self, state: _InputState, ts_ms: int) -> list[Reading]:
        if not state.started and not self._try_start(state):
            return []
        try:
            return state.input.gather(ts_ms)
        except Exception as exc:
            self._input_error(state, "gather", exc)
            return []

    def _try_start(self, state: _InputState) -> bool:
        now = time.monotonic()
        if now < state.retry_at:
            return False
        try:
            state.input.start()
        except Exception as exc:
            self._input_error(state, "start", exc)
            state.backoff_s = min(max(state.backoff_s * 2, START_RETRY_MIN_S), START_RETRY_MAX_S)
            state.retry_at = now + state.backoff_s
            return False
        state.started = True
        log.info("event=input_started input=%s", _name(state.input))
        return True

    def _input_error(self, state: _InputState, stage: str, exc: Exception) -> None:
        # Counted every time; logged at most every few seconds per input.
        self.metrics.input_errors.inc()
        state.unlogged_errors += 1
        now = time.monotonic()
        if now - state.last_log >= _ERROR_LOG_EVERY_S:
            log.error(
                "event=input_error input=%s stage=%s errors=%d error=%r",
                _name(state.input),
                stage,
                state.unlogged_errors,
                str(exc),
                exc_info=state.last_log == float("-inf"),
            )
            state.last_log, state.unlogged_errors = now, 0

    # --- batching ----------------------------------------------------------------

    def _buffer(self, reading: Reading) -> None:
        known = MACHINE_TYPES.get(reading.machine_type)
        n = len(reading.machines)
        if known is None or any(np.shape(v) != (n,) for v in reading.fields.values()):
            self.metrics.input_errors.inc()
            log.error(
                "event=bad_reading type=%r machines=%d (unknown type or field shape)",
                reading.machine_type,
                n,
            )
            return
        try:
            fields = self._checked_fields(reading, known.fields)
        except ContractError as exc:  # drop this reading only; the rest of the flush stays
            self.metrics.input_errors.inc()
            self._warn_once((reading.machine_type, exc.reason), "bad_reading", str(exc))
            return
        events = self._checked_records(reading.events, "event")
        labels = self._checked_records(reading.labels, "fault_label")
        key = self._group_key(reading)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(reading.machine_type, reading.machines)
        group.ts.append(reading.ts_ms)
        group.ticks.append(fields)
        group.events.extend(events)
        group.labels.extend(labels)
        self.metrics.samples.inc(n)
        self.metrics.events.inc(len(events))

    def _checked_fields(
        self, reading: Reading, kinds: dict[str, FieldKind]
    ) -> dict[str, np.ndarray]:
        """The reading's contract fields, typed, after the checks ingest would apply."""
        fields: dict[str, np.ndarray] = {}
        for name, values in reading.fields.items():
            kind = kinds.get(name)
            if kind is None:
                self._warn_once((reading.machine_type, name), "unknown_field", name)
            elif kind is FieldKind.STR:
                if not all(v is None or isinstance(v, str) for v in values):
                    raise ContractError("wrong_type", f"field {name!r} must hold strings")
                fields[name] = values
            else:
                fields[name] = _numeric(name, values, kind)
        return fields

    def _checked_records(
        self, records: list[tuple[int, dict[str, Any]]], channel: str
    ) -> list[tuple[int, dict[str, Any]]]:
        kept = []
        for index, record in records:
            try:
                check_record(record, channel)
            except ContractError as exc:
                self.metrics.input_errors.inc()
                self._warn_once((channel, exc.reason), f"bad_{channel}", str(exc))
                continue
            kept.append((index, record))
        return kept

    def _warn_once(self, key: tuple[str, str], event: str, detail: str) -> None:
        """Log a data problem the first time it is seen; the counter counts every time."""
        if key not in self._warned_fields:
            self._warned_fields.add(key)
            log.warning("event=%s type=%s detail=%r", event, key[0], detail)

    def _group_key(self, reading: Reading) -> int:
        # Small id of (machine type, machines). Hashing 100 addresses per tick costs
        # more than the rest of buffering; inputs that hand the same machines list
        # every tick (the usual case) hit an identity cache instead.
        cached = self._group_keys.get(id(reading.machines))
        if cached is not None and cached[0] is reading.machines:
            return cached[1]
        if len(self._group_keys) > _GROUP_KEY_CACHE:  # an input building new lists
            self._group_keys.clear()
        full = (reading.machine_type, tuple(reading.machines))
        key = self._group_ids.setdefault(full, len(self._group_ids))
        self._group_keys[id(reading.machines)] = (reading.machines, key)
        return key

    def _encode_group(
        self,
        group: _Group,
        rows: list[tuple[str, bytes]],
        seqs: dict[str, int],
        stats: dict[MachineAddress, Produced],
    ) -> None:
        ts = np.asarray(group.ts, dtype=np.int64)
        columns = _stack(group)  # name -> (ticks, n_machines)
        events, labels = _by_machine(group.events), _by_machine(group.labels)
        mtype = group.machine_type
        historical = self.settings.historical
        for j, address in enumerate(group.machines):
            key = _machine_key(address)
            seq = seqs.get(key, self._seqs.get(key, 0))  # a machine may be in two groups
            first = seq
            fields = {name: column[:, j] for name, column in columns.items()}
            payloads = _telemetry_payloads(mtype, seq, ts, fields, historical)
            seq += len(payloads)
            rows.extend((self._topic(address, "telemetry"), p) for p in payloads)
            for channel, records in (
                ("event", events.get(j, [])),
                ("fault_label", labels.get(j, [])),
            ):
                for start in range(0, len(records), MAX_RECORDS):
                    batch = RecordBatch(mtype, seq, records[start : start + MAX_RECORDS])
                    rows.append((self._topic(address, channel), encode_records(batch)))
                    seq += 1
            seqs[key] = seq
            made = Produced(
                first, seq - 1, seq - first, len(ts), len(events.get(j, [])), len(labels.get(j, []))
            )
            stats[address] = _merge(stats.get(address), made)

    def _commit(self, stats: dict[MachineAddress, Produced], *, stored: bool) -> None:
        if stored:
            self.metrics.messages_produced.inc(sum(s.messages for s in stats.values()))
        with self._produced_lock:
            for address, s in stats.items():
                p = self._produced.setdefault(address, Produced())
                p.first_seq = s.first_seq if p.first_seq is None else p.first_seq
                p.last_seq = s.last_seq
                if not stored:
                    p.rejected += s.messages
                else:
                    p.messages += s.messages
                    p.samples += s.samples
                    p.events += s.events
                    p.labels += s.labels

    def _topic(self, address: MachineAddress, channel: MachineChannel) -> str:
        topic = self._topics.get((address, channel))
        if topic is None:
            topic = self._topics[(address, channel)] = machine_topic(address, channel)
        return topic


def _stack(group: _Group) -> dict[str, np.ndarray]:
    """Field name -> array (ticks, n_machines); ticks that lack a field get NaN/None."""
    n = len(group.machines)
    kinds = MACHINE_TYPES[group.machine_type].fields
    names = dict.fromkeys(name for tick in group.ticks for name in tick)
    columns = {}
    for name in names:
        if kinds[name] is FieldKind.STR:
            missing = np.full(n, None, dtype=object)
            parts = [np.asarray(t.get(name, missing), dtype=object) for t in group.ticks]
        else:
            missing = np.full(n, np.nan)
            parts = [np.asarray(t.get(name, missing), dtype=np.float64) for t in group.ticks]
        columns[name] = np.stack(parts)
    return columns


def _numeric(name: str, values: Any, kind: FieldKind) -> np.ndarray:
    try:
        column = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ContractError("wrong_type", f"field {name!r} must be numeric") from exc
    return check_numeric(name, column, kind)


def _merge(earlier: Produced | None, later: Produced) -> Produced:
    """One flush's bookkeeping for a machine that more than one group reported."""
    if earlier is None:
        return later
    return Produced(
        earlier.first_seq,
        later.last_seq,
        earlier.messages + later.messages,
        earlier.samples + later.samples,
        earlier.events + later.events,
        earlier.labels + later.labels,
    )


def _by_machine(records: list[tuple[int, dict[str, Any]]]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = {}
    for index, record in records:
        grouped.setdefault(index, []).append(record)
    return grouped


def _telemetry_payloads(
    machine_type: str, seq: int, ts: np.ndarray, fields: dict[str, np.ndarray], historical: bool
) -> list[bytes]:
    """Encode one machine's samples; split in halves (one seq each) past the size limit."""
    payload = encode_telemetry(TelemetryBatch(machine_type, seq, ts, fields, historical))
    if len(payload) <= MAX_PAYLOAD_BYTES or len(ts) < 2:
        return [payload]
    half = len(ts) // 2
    head = _telemetry_payloads(
        machine_type, seq, ts[:half], {k: v[:half] for k, v in fields.items()}, historical
    )
    tail = _telemetry_payloads(
        machine_type,
        seq + len(head),
        ts[half:],
        {k: v[half:] for k, v in fields.items()},
        historical,
    )
    return head + tail


def _machine_key(address: MachineAddress) -> str:
    """Key of a machine's sequence counter in the outbox (not a topic)."""
    return f"{address.cluster}/{address.factory}/{address.hall}/{address.machine}"


def _name(plugin: Input) -> str:
    return type(plugin).__name__
