"""An in-memory output for tests and dry runs; can be told to fail."""

from __future__ import annotations

import threading
from collections import defaultdict

from ingest.errors import WriteError

__all__ = ["MemoryOutput"]


class MemoryOutput:
    """Keeps every written line per database, like ``httpx.MockTransport`` for ingest.

    ``fail_next(n)`` makes the next ``n`` writes raise a retryable ``WriteError``
    (an InfluxDB outage); ``reject_next(n)`` makes them raise a non-retryable one
    (a 400 that stored nothing, as InfluxDB 2.x answers a bad line).
    """

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = defaultdict(list)
        self.databases: set[str] = set()
        self.writes = 0
        self.closed = False
        self._fail = 0
        self._reject = 0
        self._lock = threading.Lock()

    def fail_next(self, n: int) -> None:
        """Fail the next ``n`` writes with a retryable error."""
        with self._lock:
            self._fail = n

    def reject_next(self, n: int) -> None:
        """Refuse the next ``n`` writes with a non-retryable error."""
        with self._lock:
            self._reject = n

    def ensure_database(self, db: str) -> None:
        """Record that ``db`` exists."""
        self.databases.add(db)

    def write(self, db: str, body: bytes) -> None:
        """Append the body's lines, unless told to fail."""
        with self._lock:
            self.writes += 1
            if self._fail > 0:
                self._fail -= 1
                raise WriteError(f"memory output: simulated outage writing to {db!r}", True)
            if self._reject > 0:
                self._reject -= 1
                raise WriteError(f"memory output: simulated 400 writing to {db!r}", False)
            if db not in self.databases:
                raise WriteError(f"memory output: database {db!r} not found", False)
            self.lines[db].extend(body.decode().split("\n"))

    def close(self) -> None:
        """Mark the output closed."""
        self.closed = True
