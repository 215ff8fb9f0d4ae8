"""The writer thread: batch deliveries, decode, store in InfluxDB, then ack.

One thread owns the output, so writes are sequential and a batch's acks follow
its writes. The loop, per batch:

1. take deliveries from the consumer queue until ``batch_max_messages``,
   ``batch_max_lines`` or ``flush_interval_s`` after the first one;
2. decode each (:func:`ingest.decode.decode_message`); a contract violation is
   counted by reason, logged (rate-limited) and republished to
   ``contract.deadletter_topic(reason)`` so it never blocks valid traffic;
3. write the lines, grouped per database. A retryable failure (InfluxDB down)
   retries the same batch with capped exponential backoff, never acking and
   never dropping; a final failure (400 partial write) is logged and counted;
4. ack every delivery of the batch, valid or not, in the order received.

On shutdown the queue is drained while InfluxDB takes writes; the first batch
that fails is left unacked with everything after it, for the broker to resend.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from ingest import lineproto
from ingest.backoff import Backoff
from ingest.consumer import Delivery
from ingest.decode import Lines, deadletter_payload, decode_message
from ingest.errors import WriteError
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


class Source(Protocol):
    """What the writer needs from the consumer (see :class:`ingest.consumer.Consumer`)."""

    @property
    def queue(self) -> Any:
        """``queue.Queue`` of deliveries; ``None`` marks the end."""

    def is_redelivered_later(self, delivery: Delivery) -> bool:
        """Whether the broker will resend it (skip it now)."""

    def settle(self, deliveries: list[Delivery]) -> int:
        """Ack in order what can be acked; return how many."""

    def forget(self, deliveries: list[Delivery]) -> None:
        """Give up on deliveries without acking them."""

    def publish(self, topic: str, payload: bytes) -> Any:
        """Publish at QoS 1; return paho's ``MQTTMessageInfo``."""


@dataclass
class Batch:
    """Deliveries taken together, with their line protocol grouped per database."""

    deliveries: list[Delivery] = field(default_factory=list)
    bodies: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    rejected: list[tuple[Delivery, ContractError]] = field(default_factory=list)
    lines: int = 0

    def add(self, lines: Lines) -> None:
        """Add one message's lines."""
        self.bodies[lines.database].append(lines.body)
        self.counts[lines.database][lines.measurement] += lines.count
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
        The consumer: queue of deliveries, acks, dead-letter publishing.
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
        if self._source.is_redelivered_later(delivery):
            self._source.forget([delivery])
            return
        batch.deliveries.append(delivery)
        try:
            topic = contract.parse_topic(delivery.topic)
        except ContractError as exc:
            self._metrics.messages_received.labels(channel="invalid").inc()
            batch.rejected.append((delivery, exc))
            return
        self._metrics.messages_received.labels(channel=topic.channel).inc()
        try:
            batch.add(decode_message(topic, delivery.payload))
        except ContractError as exc:
            batch.rejected.append((delivery, exc))
        except Exception as exc:  # a decoder bug must not stall the stream
            log.exception(kv("decode_crashed", topic=delivery.topic))
            batch.rejected.append((delivery, ContractError("ingest_error", repr(exc)[:200])))

    def deliver(self, batch: Batch) -> None:
        """Dead-letter the rejects, store the lines, then ack the whole batch in order."""
        if self._giving_up:  # shutting down while the output fails: leave it to the broker
            self._source.forget(batch.deliveries)
            return
        infos = [self._reject(delivery, error) for delivery, error in batch.rejected]
        stored = self._store(batch)
        self._wait_published(infos)
        if stored:
            self._metrics.acked.inc(self._source.settle(batch.deliveries))
        else:
            self._giving_up = True
            self._source.forget(batch.deliveries)

    def _reject(self, delivery: Delivery, error: ContractError) -> Any:
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
        # Ack a rejected message only once its dead letter reached the broker, when we can.
        deadline = self._clock() + DEADLETTER_WAIT_S
        for info in infos:
            # Not connected raises: paho keeps the QoS 1 message and resends it.
            with contextlib.suppress(ValueError, RuntimeError):
                info.wait_for_publish(max(0.0, deadline - self._clock()))

    def _store(self, batch: Batch) -> bool:
        """Write every database's lines; ``False`` if stopping while the output fails."""
        started = self._clock()
        pending = {db: "\n".join(parts).encode() for db, parts in batch.bodies.items()}
        backoff = Backoff(self._settings.retry_initial_s, self._settings.retry_max_s)
        while pending:
            db = next(iter(pending))
            try:
                self._output.ensure_database(db)
                self._output.write(db, pending[db])
            except WriteError as exc:
                if not exc.retryable:
                    self._metrics.write_errors.inc()
                    log.error(kv("write_refused", db=db, error=exc.message, lines=batch.lines))
                    del pending[db]
                    continue
                self._note_failure(exc)
                if self._stopping.wait(backoff.next(exc.retry_after)):
                    return False
                continue
            except Exception as exc:  # unknown failure: retry rather than drop
                if self._output_ok:
                    log.exception(kv("write_crashed", db=db))
                self._note_failure(WriteError(repr(exc), True))
                if self._stopping.wait(backoff.next()):
                    return False
                continue
            for measurement, count in batch.counts[db].items():
                self._metrics.lines_written.labels(measurement=measurement).inc(count)
            del pending[db]
        self._note_success()
        self._metrics.batch_write_seconds.observe(self._clock() - started)
        return True

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
        line = lineproto.internal_line(
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
