"""Flushes the outbox could not store (disk full, I/O error), held in memory until it can.

A full disk on an edge gateway is usually short-lived (a log rotated late, a backlog
that drains once the broker is back), so losing every flush meanwhile would be the
worst answer. The agent keeps such flushes here, in order, and retries them before any
newer flush, so the outbox still receives messages in sequence order. Memory is bounded
too: past ``max_bytes`` the oldest held flushes are given up. Their sequence numbers
were already handed out and are never reused, so the loss shows end to end as a gap.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.errors import OutboxFullError, OutboxStorageError
from gateway.metrics import GatewayMetrics
from gateway.outbox import Outbox

__all__ = ["FlushWriter", "HeldFlush", "HoldQueue", "Outcome"]

log = logging.getLogger(__name__)

_LOG_EVERY_S = 10.0
#: A held row's tuple, ``str`` and ``bytes`` objects, beyond their characters.
_ROW_OVERHEAD_BYTES = 150
#: A stopping gateway stores rows until only this share of the outbox's reserve is
#: left free; not less, or the next process could not even delete.
_STOP_RESERVE = 0.5


@dataclass(frozen=True, slots=True)
class HeldFlush:
    """One flush as the outbox should receive it: rows, next seqs and bookkeeping."""

    rows: list[tuple[str, bytes]]
    seqs: dict[str, int]
    stats: dict[Any, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """What holding this flush costs in memory: topics, payloads and Python's objects."""
        return sum(len(t) + len(p) + _ROW_OVERHEAD_BYTES for t, p in self.rows)


Outcome = tuple[HeldFlush, Literal["stored", "rejected", "given_up"]]


class HoldQueue:
    """Bounded FIFO of held flushes; the oldest give way when ``max_bytes`` is exceeded.

    >>> q = HoldQueue(max_bytes=200)
    >>> q.push(HeldFlush([("t", b"12345")], {"m": 1}))
    []
    >>> [f.seqs for f in q.push(HeldFlush([("t", b"67890")], {"m": 2}))]
    [{'m': 1}]
    >>> len(q), q.messages, q.bytes
    (1, 1, 156)
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = max_bytes
        self.bytes = 0
        self.messages = 0
        self._flushes: deque[tuple[HeldFlush, int]] = deque()

    def __len__(self) -> int:
        return len(self._flushes)

    def __iter__(self) -> Iterator[HeldFlush]:
        return (flush for flush, _ in self._flushes)

    def push(self, flush: HeldFlush) -> list[HeldFlush]:
        """Hold ``flush`` after the others; return the oldest flushes given up for room.

        The newest flush is kept even when it alone exceeds the bound: giving up the
        data that just arrived would leave nothing to retry.
        """
        size = flush.size
        self._flushes.append((flush, size))
        self.bytes += size
        self.messages += len(flush.rows)
        given_up = []
        while self.bytes > self.max_bytes and len(self._flushes) > 1:
            given_up.append(self.pop())
        return given_up

    def first(self) -> HeldFlush:
        """The oldest held flush (the next to store); ``IndexError`` when empty."""
        return self._flushes[0][0]

    def pop(self) -> HeldFlush:
        """Remove and return the oldest held flush."""
        flush, size = self._flushes.popleft()
        self.bytes -= size
        self.messages -= len(flush.rows)
        return flush


class FlushWriter:
    """Stores flushes in the outbox in order, holding them in memory while it fails.

    Every outcome is returned so the caller can keep its books: ``stored``,
    ``rejected`` (``reject_newest`` refused it, seqs persisted as gaps) or
    ``given_up`` (held too long for the memory bound; seqs never reused).

    Parameters
    ----------
    outbox
        Where flushes go.
    metrics
        ``outbox_held``, ``outbox_storage_failing``, ``outbox_storage_errors`` and
        ``outbox_dropped{policy}`` are kept here.
    max_bytes
        Memory bound of the held flushes.
    retry_s
        Least time between two attempts while failing, so a tight loop cannot spin.
    """

    def __init__(
        self, outbox: Outbox, metrics: GatewayMetrics, max_bytes: int, retry_s: float = 0.5
    ) -> None:
        self.outbox, self.metrics, self.retry_s = outbox, metrics, retry_s
        self.held = HoldQueue(max_bytes)
        self._failing_since: float | None = None
        self._next_try = 0.0
        self._last_log = float("-inf")
        self._held_peak = 0
        # Seqs of given-up flushes, written with the next append: a machine that is in
        # no later flush must not hand them out again after a restart.
        self._unpersisted: dict[str, int] = {}

    @property
    def failing(self) -> bool:
        """Whether the last write failed and flushes are waiting in memory."""
        return self._failing_since is not None

    def write(self, flush: HeldFlush) -> list[Outcome]:
        """Queue ``flush`` behind any held ones and store as many as the disk takes."""
        outcomes = [(old, "given_up") for old in self.held.push(flush)]
        self._held_peak = max(self._held_peak, self.held.messages)
        if outcomes:
            self._give_up(outcomes)
        outcomes += self.retry_when_due()
        self.metrics.outbox_held.set(self.held.messages)
        return outcomes

    def retry_when_due(self) -> list[Outcome]:
        """:meth:`retry`, unless the last failure was less than ``retry_s`` ago."""
        if self.failing and time.monotonic() < self._next_try:
            return []
        return self.retry()

    def close(self) -> list[Outcome]:
        """Last attempt before the process stops; what is still held is lost as a seq gap.

        The seqs of everything held are written first (a tiny transaction that may
        succeed where rows would not), so the next process continues after them; then
        rows are stored down to half the outbox's reserve.
        """
        seqs = dict(self._unpersisted)
        for flush in self.held:
            seqs.update(flush.seqs)  # later flushes carry higher seqs
        try:
            self.outbox.append([], seqs, reserve=0.0)
            self._unpersisted, burned = {}, "yes"
        except Exception as exc:
            burned = f"no ({exc})"
        outcomes = self.retry(reserve=_STOP_RESERVE)
        if not self.held:
            return outcomes
        lost = [(self.held.pop(), "given_up") for _ in range(len(self.held))]
        messages = sum(len(flush.rows) for flush, _ in lost)
        self.metrics.outbox_dropped.labels(policy="storage").inc(messages)
        self.metrics.outbox_held.set(0)
        log.error("event=outbox_held_lost_at_stop messages=%d seqs_burned=%s", messages, burned)
        return outcomes + lost

    def retry(self, reserve: float = 1.0) -> list[Outcome]:
        """Store held flushes oldest first until one fails or none is left.

        ``reserve``: the share of the outbox's free-space reserve to keep (see
        :meth:`Outbox.append`).
        """
        outcomes: list[Outcome] = []
        while self.held:
            flush = self.held.first()
            try:
                self.outbox.append(flush.rows, {**self._unpersisted, **flush.seqs}, reserve)
            except OutboxFullError as exc:
                self.metrics.outbox_dropped.labels(policy="reject_newest").inc(exc.rejected)
                outcomes.append((self.held.pop(), "rejected"))
            except Exception as exc:  # disk full, I/O error, or a bug: hold and retry
                self._failed(exc)
                break
            else:
                outcomes.append((self.held.pop(), "stored"))
            self._unpersisted = {}
        if not self.held:
            self._recovered()
        self.metrics.outbox_held.set(self.held.messages)
        return outcomes

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self.metrics.outbox_storage_errors.inc()
        self.metrics.outbox_storage_failing.set(1)
        self._next_try = now + self.retry_s
        if self._failing_since is None:
            self._failing_since = now
            unexpected = not isinstance(exc, OutboxStorageError)  # a bug: show where
            log.error("event=outbox_storage_failed error=%r", str(exc), exc_info=unexpected)
        elif now - self._last_log >= _LOG_EVERY_S:
            log.error(
                "event=outbox_storage_failing since_s=%.0f held_messages=%d held_bytes=%d error=%r",
                now - self._failing_since,
                self.held.messages,
                self.held.bytes,
                str(exc),
            )
        else:
            return
        self._last_log = now

    def _recovered(self) -> None:
        if self._failing_since is None:
            return
        log.warning(
            "event=outbox_storage_recovered after_s=%.1f held_max_messages=%d",
            time.monotonic() - self._failing_since,
            self._held_peak,
        )
        self._failing_since, self._held_peak = None, 0
        self.metrics.outbox_storage_failing.set(0)

    def _give_up(self, outcomes: list[Outcome]) -> None:
        for flush, _ in outcomes:
            self._unpersisted.update(flush.seqs)
        messages = sum(len(flush.rows) for flush, _ in outcomes)
        self.metrics.outbox_dropped.labels(policy="storage").inc(messages)
        log.error(
            "event=outbox_hold_full given_up_messages=%d held_bytes=%d max_bytes=%d",
            messages,
            self.held.bytes,
            self.held.max_bytes,
        )
