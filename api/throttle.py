"""Request limits: per-key rate limits and per-client failed-login limits.

A key that sends more than ``rate_limit`` requests (per process) gets ``429`` with
``Retry-After`` instead of taking the API from everyone else; a client address that keeps
presenting invalid keys gets ``429`` for its invalid attempts (valid keys from the same
address, e.g. a factory behind one NAT, are not locked out). Counting uses the ``limits``
library's moving window in memory: limits hold per API process.

Example
-------
>>> throttle = Throttle("2/minute")
>>> throttle.allow("key-1"), throttle.allow("key-1"), throttle.allow("key-1")
(True, True, False)
>>> 0 < throttle.retry_after_s("key-1") <= 60
True
"""

from __future__ import annotations

import math
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

__all__ = ["Throttle"]


class Throttle:
    """One rate (``"100/second"``, ``"20/minute"``…) counted per identifier."""

    def __init__(self, rate: str) -> None:
        self.rate = parse(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def allow(self, identifier: str) -> bool:
        """Count one request of ``identifier``; ``False`` when it is over the rate."""
        return self._limiter.hit(self.rate, identifier)

    def blocked(self, identifier: str) -> bool:
        """Whether ``identifier`` is over the rate, without counting a request."""
        return not self._limiter.test(self.rate, identifier)

    def retry_after_s(self, identifier: str) -> int:
        """Whole seconds until ``identifier`` may send again."""
        reset = self._limiter.get_window_stats(self.rate, identifier).reset_time
        return max(1, math.ceil(reset - time.time()))
