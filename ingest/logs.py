"""Structured ``key=value`` log lines and a rate limiter for noisy ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter", "kv"]


def _value(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\n'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def kv(event: str, **fields: object) -> str:
    r"""Format a log message as ``event=... key=value ...``; foreign text is quoted.

    >>> kv("write_failed", db="f_f1", error='refused "x"')
    'event=write_failed db=f_f1 error="refused \\"x\\""'
    """
    parts = [f"event={event}"]
    parts.extend(f"{key}={_value(value)}" for key, value in fields.items())
    return " ".join(parts)


class RateLimiter:
    """Allow ``burst`` events per key per ``period`` seconds; count the rest.

    Invalid input can arrive thousands of times a second; logging each one would
    drown the useful lines (the counters keep the exact numbers).
    """

    def __init__(
        self, burst: int = 5, period: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._burst = burst
        self._period = period
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int, int]] = {}

    def allow(self, key: str) -> tuple[bool, int]:
        """Return ``(allowed, suppressed)``; ``suppressed`` counts calls dropped before."""
        now = self._clock()
        with self._lock:
            start, used, suppressed = self._windows.get(key, (now, 0, 0))
            if now - start >= self._period:
                start, used = now, 0
            if used < self._burst:
                self._windows[key] = (start, used + 1, 0)
                return True, suppressed
            self._windows[key] = (start, used, suppressed + 1)
            return False, suppressed + 1
