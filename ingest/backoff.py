"""Capped exponential backoff for retrying writes."""

from __future__ import annotations

from typing import Final

__all__ = ["Backoff"]

#: Longest ``Retry-After`` we obey, so a bogus header cannot stall ingest for hours.
RETRY_AFTER_CAP_S: Final = 300.0


class Backoff:
    """Delays ``initial, 2*initial, 4*initial, ...`` capped at ``maximum``.

    A server's ``Retry-After`` replaces the computed delay (up to 5 minutes,
    even above ``maximum``): the server knows when it will take writes again.

    >>> b = Backoff(0.2, 1.0)
    >>> [b.next() for _ in range(5)], b.next(retry_after=30)
    ([0.2, 0.4, 0.8, 1.0, 1.0], 30)
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self._initial = initial
        self._maximum = maximum
        self._delay = initial

    def next(self, retry_after: float | None = None) -> float:
        """Return the delay before the next attempt and grow the following one."""
        delay = self._delay
        self._delay = min(self._delay * 2, self._maximum)
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, RETRY_AFTER_CAP_S)
        return delay

    def reset(self) -> None:
        """Start again from ``initial`` after a success."""
        self._delay = self._initial
