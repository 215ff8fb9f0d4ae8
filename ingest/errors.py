"""Exceptions raised by ingest, and the reject reasons ingest adds to the contract's.

The tree, in the manner of ``httpx._exceptions``::

    IngestError                 base of everything ingest raises on purpose
    └── WriteError              an output could not store a batch
          .retryable            True: keep the batch unacked and try again later
                                (connection refused, timeout, 5xx, 429, auth)
                                False: the server refused the data itself (400,
                                partial write): retrying the same body would fail
                                forever, so the writer retries message by message
                                and rejects only what is still refused
          .retry_after          seconds the server asked us to wait, or None

Payloads and topics that break the data contract raise
:class:`millwatch.contract.ContractError` instead; ingest counts those by
``reason``, dead-letters them and acks them. Ingest rejects with two reasons of
its own, :data:`INGEST_ERROR` and :data:`INFLUX_REJECTED`.
"""

from __future__ import annotations

from typing import Final

__all__ = ["INFLUX_REJECTED", "INGEST_ERROR", "IngestError", "WriteError"]

#: Reject reason of a message whose decoding crashed (a bug in ingest, not bad input).
INGEST_ERROR: Final = "ingest_error"
#: Reject reason of a valid message InfluxDB refused for good, even written on its own.
INFLUX_REJECTED: Final = "influx_rejected"


class IngestError(Exception):
    """Base class of the errors ingest raises on purpose."""


class WriteError(IngestError):
    """An output failed to store a body of line protocol.

    Parameters
    ----------
    message
        What failed, with the database and the server's own words (quoted).
    retryable
        Whether the same body may succeed later; decides retry versus drop.
    retry_after
        Delay the server asked for (HTTP ``Retry-After``), in seconds.
    """

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
