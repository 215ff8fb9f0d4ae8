"""What the consumer hands the writer: deliveries, and the queue that holds them."""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Delivery", "Inbox"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as received, with what is needed to ack it later.

    ``received_at`` is monotonic (ack lag); ``received_ns`` is wall-clock epoch ns,
    strictly increasing per consumer, and timestamps the message's dead letter.
    ``serial`` numbers deliveries in arrival order, one per delivery, so each can
    be settled exactly once whatever the order.
    """

    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: float
    received_ns: int
    generation: int
    serial: int


class Inbox(queue.Queue["Delivery | None"]):
    """An unbounded ``queue.Queue`` of deliveries (``None`` ends it) that can drop some.

    The bound comes from the consumer (:meth:`ingest.consumer.Consumer` purges
    copies the broker will resend), never from refusing a put.
    """

    def generations(self) -> set[int]:
        """Connection generations of the deliveries queued now."""
        with self.mutex:
            return {item.generation for item in self.queue if item is not None}

    def remove(self, select: Callable[[Delivery], bool]) -> list[Delivery]:
        """Take out, in order, the queued deliveries ``select`` picks; return them."""
        with self.mutex:
            removed = [item for item in self.queue if item is not None and select(item)]
            if removed:
                kept = (item for item in self.queue if item is None or not select(item))
                self.queue = deque(kept)
                self.unfinished_tasks -= len(removed)
            return removed
