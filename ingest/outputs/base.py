"""The interface every ingest output implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Output"]


@runtime_checkable
class Output(Protocol):
    """Stores line protocol in a time-series database.

    Implementations are called from the single writer thread. ``write`` must be
    safe to repeat with the same body: ingest retries whole bodies after a
    retryable failure and relies on InfluxDB overwriting identical points.
    """

    def ensure_database(self, db: str) -> None:
        """Create ``db`` if it does not exist yet (cached, cheap to call often).

        Raises
        ------
        WriteError
            If the server cannot be reached (retryable) or refuses.
        """
        ...

    def write(self, db: str, body: bytes) -> None:
        """Store newline-separated lines (ns precision) in ``db``.

        Raises
        ------
        WriteError
            ``retryable=True`` when the same body may succeed later.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
