"""The writer thread: batch deliveries, decode, store in InfluxDB, then ack.

One thread owns the output, so writes are sequential and a batch's acks follow
its writes. The loop, per batch:

1. take deliveries from the consumer queue until ``batch_max_messages``,
   ``batch_max_lines`` or ``flush_interval_s`` after the first one. Deliveries
   of an older connection are taken like the others (written, never acked; see
   :mod:`ingest.consumer`);
2. decode each (:func:`ingest.decode.decode_message`); a contract violation
   becomes a reject, so it never blocks valid traffic;
3. write the lines, one request per database. A retryable failure (InfluxDB
   down) retries with capped exponential backoff, never acking and never
   dropping. A final failure (400) makes the writer retry that database's lines
   message by message, because InfluxDB 2.x refuses the whole request for one bad
   line (1.x stores the rest: then the rewrite is idempotent); a message still
   refused on its own becomes a reject with reason ``influx_rejected``;
4. store one ``dead_letter`` row per reject in ``contract.INTERNAL_DATABASE``,
   with the same retries. Only then is each reject counted, logged
   (rate-limited) and republished to ``contract.deadletter_topic(reason)``;
5. ack every delivery of the batch, valid or not, in the order received.

On shutdown the queue is drained while InfluxDB takes writes; the first batch
that fails is left unacked with everything after it, for the broker to resend
(its rejects are then neither counted nor published: the redelivery will be).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from ingest import lineproto
from ingest.backoff import Backoff
from ingest.decode import Lines, dead_letter_lines, deadletter_payload, decode_message
from ingest.errors import INFLUX_REJECTED, INGEST_ERROR, WriteError
from ingest.inbox import Delivery
from ingest.logs import RateLimiter, kv
from ingest.metrics import IngestMetrics
from ingest.outputs.base import Output
from ingest.settings import IngestSettings
from millwatch import contract
from millwatch.contract import ContractError

__all__ = ["Batch", "Source", "Writer"]

log = logging.getLogger(__name__)

DEADLETTER_WAIT_S: Final = 5.0
JOIN_TIMEOUT_S: Final = 30.0

#: One message's lines (or its dead-letter row), with the delivery they came from.
Entry = tuple[Delivery, Lines]
Reject = tuple[Delivery, ContractError]


class _StoppingError(Exception):
    """Raised out of a retry loop when :meth:`Writer.stop` gives up on a failing output."""


class Source(Protocol):
    """What the writer needs from the consumer (see :class:`ingest.consumer.Consumer`)."""

    @property
    def queue(self) -> Any:
        """``queue.Queue`` of deliveries; ``None`` marks the end."""

    def settle(self, deliveries: list[Delivery]) -> int:
        """Ack in order what can be acked; return how many."""

    def forget(self, deliveries: list[Delivery]) -> None:
        """Give up on deliveries without acking them."""

    def publish(self, topic: str, payload: bytes) -> Any:
        """Publish at QoS 1; return paho's ``MQTTMessageInfo``."""


@dataclass
class Batch:
    """Deliveries taken together, with each message's lines grouped per database."""

    deliveries: list[Delivery] = field(default_factory=list)
    parts: dict[str, list[Entry]] = field(default_factory=lambda: defaultdict(list))
    rejected: list[Reject] = field(default_factory=list)
    lines: int = 0

    def add(self, delivery: Delivery, lines: Lines) -> None:
        """Add one message's lines."""
        self.parts[lines.database].append((delivery, lines))
        self.lines += lines.count


class Writer:
    """Drains a :class:`Source` into an :class:`~ingest.outputs.base.Output`.

    Parameters
    ----------
    settings
        Batch limits, flush interval, retry backoff, self-metrics interval.
    output
        Where lines go.
    source
        The consumer: queue of deliveries (older connections' ones included:
        written, never acked), acks, dead-letter publishing.
    metrics
        Counters to update.
    """

    def __init__(
        self,
        settings: IngestSettings,
        output: Output,
        source: Source,
        metrics: IngestMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._output = output
        self._source = source
        self._metrics = metrics
        self._clock = clock
        self._stopping = threading.Event()
        self._giving_up = False
        self._failed: BaseException | None = None
        self._output_ok = True
        self._failed_since = 0.0
        self._rejects_log = RateLimiter()
        self._next_internal = clock() + settings.internal_interval_s
        self._thread = threading.Thread(target=self.run, name="ingest-writer", daemon=True)

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def stop(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Stop retrying, finish the queue (the source must have ended it), and join."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error(kv("writer_stop_timeout", timeout_s=timeout))

    @property
    def failed(self) -> BaseException | None:
        """The exception that killed the thread, if one did (then the process should exit)."""
        return self._failed

    def run(self) -> None:
        """Thread body: loop until the queue's end marker has been processed.

        A bug that escapes the loop is recorded in :attr:`failed` rather than
        retried: the unacked messages only come back after a reconnect, so the
        service exits and its supervisor restarts it.
        """
        done = False
        try:
            while not done:
                batch, done = self.collect()
                if batch.deliveries:
                    self.deliver(batch)
                if self._clock() >= self._next_internal and not self._giving_up:
                    self.write_internal()
        except Exception as exc:
            self._failed = exc
            log.critical(kv("writer_crashed", error=repr(exc)[:300]), exc_info=True)

    def collect(self) -> tuple[Batch, bool]:
        """Take deliveries for one batch; ``True`` once the end marker was seen."""
        s, batch, deadline = self._settings, Batch(), None
        while len(batch.deliveries) < s.batch_max_messages and batch.lines < s.batch_max_lines:
            if deadline is None:
                timeout = max(0.01, self._next_internal - self._clock())
            else:
                timeout = deadline - self._clock()
                if timeout <= 0:
                    break
            try:
                delivery = self._source.queue.get(timeout=timeout)
            except queue.Empty:
                break
            if delivery is None:
                return batch, True
            if deadline is None:
                deadline = self._clock() + s.flush_interval_s
            self._take(batch, delivery)
        return batch, False

    def _take(self, batch: Batch, delivery: Delivery) -> None:
        batch.deliveries.append(delivery)
        try:
            topic = contract.parse_topic(delivery.topic)
        except ContractError as exc:
            self._metrics.messages_received.labels(channel="invalid").inc()
            batch.rejected.append((delivery, exc))
            return
        self._metrics.messages_received.labels(channel=topic.channel).inc()
        try:
            batch.add(delivery, decode_message(topic, delivery.payload))
        except ContractError as exc:
            batch.rejected.append((delivery, exc))
        except Exception as exc:  # a decoder bug must not stall the stream
            log.exception(kv("decode_crashed", topic=delivery.topic))
            batch.rejected.append((delivery, ContractError(INGEST_ERROR, repr(exc)[:200])))

    def deliver(self, batch: Batch) -> None:
        """Store the lines and the rejects' dead letters, then ack the whole batch in order."""
        if self._giving_up:  # shutting down while the output fails: leave it to the broker
            self._source.forget(batch.deliveries)
            return
        rejected = self._store(batch)
        if rejected is None:
            self._giving_up = True
            self._source.forget(batch.deliveries)
            return
        infos = [self._reject(delivery, error) for delivery, error in rejected]
        self._wait_published(infos)
        self._metrics.acked.inc(self._source.settle(batch.deliveries))

    def _reject(self, delivery: Delivery, error: ContractError) -> Any:
        """Count and log a reject whose dead-letter row is stored; republish it on MQTT."""
        self._metrics.messages_rejected.labels(reason=error.reason).inc()
        allowed, suppressed = self._rejects_log.allow(error.reason)
        if allowed:
            log.warning(
                kv(
                    "message_rejected",
                    reason=error.reason,
                    topic=delivery.topic[:200],
                    detail=error.detail[:200],
                    suppressed=suppressed,
                )
            )
        body = deadletter_payload(delivery.topic, error, delivery.payload)
        return self._source.publish(contract.deadletter_topic(error.reason), body)

    def _wait_published(self, infos: list[Any]) -> None:
        # The row in InfluxDB is the durable copy; give live subscribers theirs before the ack.
        deadline = self._clock() + DEADLETTER_WAIT_S
        for info in infos:
            # Not connected raises: paho keeps the QoS 1 message and resends it.
            with contextlib.suppress(ValueError, RuntimeError):
                info.wait_for_publish(max(0.0, deadline - self._clock()))

    def _store(self, batch: Batch) -> list[Reject] | None:
        """Write the data, then the rejects' dead-letter rows; return the rejects in order.

        ``None`` if stopping while the output fails (nothing may be acked then).
        """
        started = self._clock()
        backoff = Backoff(self._settings.retry_initial_s, self._settings.retry_max_s)
        rejected = list(batch.rejected)
        try:
            for db, entries in batch.parts.items():
                stored, refused = self._write_entries(db, entries, backoff)
                self._count_written(stored)
                rejected += [(d, ContractError(INFLUX_REJECTED, e.message)) for d, e in refused]
            rejected.sort(key=lambda reject: reject[0].serial)
            rows = [
                (d, dead_letter_lines(d.topic, error, d.payload, d.received_ns))
                for d, error in rejected
            ]
            _, lost = self._write_entries(contract.INTERNAL_DATABASE, rows, backoff)
        except _StoppingError:
            return None
        for delivery, exc in lost:  # only a bug in the row's format can cause this
            log.error(kv("dead_letter_refused", topic=delivery.topic[:200], error=exc.message))
        self._note_success()
        self._metrics.batch_write_seconds.observe(self._clock() - started)
        return rejected

    def _write_entries(
        self, db: str, entries: list[Entry], backoff: Backoff
    ) -> tuple[list[Entry], list[tuple[Delivery, WriteError]]]:
        """Store ``entries`` in ``db`` in one request, else one request per message.

        Returns the entries stored and the deliveries InfluxDB refused for good.
        """
        if not entries:
            return [], []
        body = "\n".join(lines.body for _, lines in entries)
        error = self._write(db, body, backoff)
        if error is None:
            return entries, []
        self._metrics.write_errors.inc()
        if len(entries) == 1:
            return [], [(entries[0][0], error)]
        allowed, suppressed = self._rejects_log.allow("write_refused")
        if allowed:
            log.warning(
                kv(
                    "write_refused",
                    db=db,
                    error=error.message,
                    messages=len(entries),
                    action="writing message by message",
                    suppressed=suppressed,
                )
            )
        stored: list[Entry] = []
        refused: list[tuple[Delivery, WriteError]] = []
        for delivery, lines in entries:
            error = self._write(db, lines.body, backoff)
            if error is None:
                stored.append((delivery, lines))
            else:
                self._metrics.write_errors.inc()
                refused.append((delivery, error))
        return stored, refused

    def _write(self, db: str, body: str, backoff: Backoff) -> WriteError | None:
        """Store ``body``, retrying while the failure is retryable; return a final refusal.

        Raises
        ------
        _StoppingError
            When stopping while the output still fails.
        """
        payload = body.encode()
        while True:
            try:
                self._output.ensure_database(db)
                self._output.write(db, payload)
            except WriteError as exc:
                if not exc.retryable:
                    return exc
                self._note_failure(exc)
                delay = backoff.next(exc.retry_after)
            except Exception as exc:  # unknown failure: retry rather than drop
                if self._output_ok:
                    log.exception(kv("write_crashed", db=db))
                self._note_failure(WriteError(repr(exc), True))
                delay = backoff.next()
            else:
                return None
            if self._stopping.wait(delay):
                raise _StoppingError

    def _count_written(self, entries: list[Entry]) -> None:
        for _, lines in entries:
            self._metrics.lines_written.labels(measurement=lines.measurement).inc(lines.count)

    def _note_failure(self, exc: WriteError) -> None:
        self._metrics.write_retries.inc()
        if self._output_ok:
            self._output_ok, self._failed_since = False, self._clock()
            log.warning(kv("output_unavailable", error=exc.message, action="retrying, not acking"))

    def _note_success(self) -> None:
        if not self._output_ok:
            self._output_ok = True
            down = round(self._clock() - self._failed_since, 1)
            log.info(kv("output_recovered", down_s=down))

    def write_internal(self) -> None:
        """Write one ``internal_ingest`` point (best effort: skipped while InfluxDB fails)."""
        self._next_internal = self._clock() + self._settings.internal_interval_s
        line = lineproto.point_line(
            lineproto.INGEST_MEASUREMENT,
            {"worker": self._settings.client_id},
            self._metrics.snapshot(),
            time.time_ns(),
        )
        try:
            self._output.ensure_database(contract.INTERNAL_DATABASE)
            self._output.write(contract.INTERNAL_DATABASE, line.encode())
        except WriteError as exc:
            log.debug(kv("internal_write_skipped", error=exc.message))
