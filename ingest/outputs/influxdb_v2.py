"""Output to the InfluxDB v2 API through the official ``influxdb_client`` library.

A millwatch database maps to a bucket of the same name in ``org``. Errors are
mapped like the v1 output's (see :mod:`ingest.outputs.influxdb_v1`): 400/413 and
other 4xx are final, 401/403/404/429/5xx and connection failures are retryable.
"""

from __future__ import annotations

from typing import Any, Final

import urllib3.exceptions
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from ingest.errors import WriteError

__all__ = ["InfluxDBv2Output"]

_RETRYABLE_4XX: Final = (401, 403, 404, 429)


def _retry_after(exc: InfluxDBError) -> float | None:
    try:
        return float(exc.retry_after) if exc.retry_after is not None else None
    except (TypeError, ValueError):
        return None


def _to_write_error(action: str, exc: Exception) -> WriteError:
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        retryable = status >= 500 or status in _RETRYABLE_4XX or status == 0
        message = f"{action}: HTTP {status}: {str(exc.message)[:300]!r}"
        return WriteError(message, retryable, _retry_after(exc))
    if isinstance(exc, InfluxDBError):
        return WriteError(f"{action}: {str(exc)[:300]!r}", True, _retry_after(exc))
    return WriteError(f"{action}: {type(exc).__name__}: {exc}", True)


class InfluxDBv2Output:
    """Writes line protocol to bucket ``db`` of ``org``.

    Parameters
    ----------
    url, token, org
        Passed to ``InfluxDBClient``.
    timeout
        Seconds per HTTP request.
    client
        An injected ``InfluxDBClient`` (a fake in unit tests).
    """

    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        timeout: float = 10.0,
        client: Any | None = None,
    ) -> None:
        self._org = org
        self._client = client or InfluxDBClient(
            url=url, token=token, org=org, timeout=int(timeout * 1000)
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._buckets = self._client.buckets_api()
        self._known: set[str] = set()

    def ensure_database(self, db: str) -> None:
        """Create bucket ``db`` if ``buckets_api`` does not find it (once per name)."""
        if db in self._known:
            return
        try:
            if self._buckets.find_bucket_by_name(db) is None:
                self._buckets.create_bucket(bucket_name=db, org=self._org)
        except (InfluxDBError, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _to_write_error(f"create bucket {db!r}", exc) from exc
        self._known.add(db)

    def write(self, db: str, body: bytes) -> None:
        """Store ``body`` in bucket ``db`` with ns precision."""
        try:
            self._write_api.write(
                bucket=db, org=self._org, record=body, write_precision=WritePrecision.NS
            )
        except (InfluxDBError, urllib3.exceptions.HTTPError, OSError) as exc:
            if isinstance(exc, ApiException) and exc.status == 404:
                self._known.discard(db)
            raise _to_write_error(f"write to {db!r}", exc) from exc

    def close(self) -> None:
        """Close the client and its pool."""
        self._write_api.close()
        self._client.close()
