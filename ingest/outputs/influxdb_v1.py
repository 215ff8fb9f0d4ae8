"""Output to InfluxDB's v1 HTTP API (``/write``, ``/query``) through httpx.

InfluxDB 1.x serves it natively; 2.x and 3.x serve it for compatibility (there,
``CREATE DATABASE`` may be refused; create the bucket or DBRP mapping up front).

Status mapping (``WriteError.retryable``)::

    2xx                      stored
    400, 413, other 4xx      not retryable: the server refused the data itself. For
                             a 400 "partial write" InfluxDB 1.x has stored the valid
                             points (2.x stores none); retrying the same body would
                             fail forever, so the writer retries message by message
    401, 403                 retryable: credentials are an operator's fix, and data
                             must not be dropped while they are wrong
    404                      retryable: database missing (dropped under us); the
                             cache is cleared so the next attempt creates it again
    429, 5xx, no connection  retryable; ``Retry-After`` is passed on
"""

from __future__ import annotations

import logging
from typing import Final

import httpx

from ingest.errors import WriteError
from ingest.logs import kv

__all__ = ["InfluxDBv1Output"]

log = logging.getLogger(__name__)

_AUTH_STATUSES: Final = (401, 403)
_ERROR_TEXT_CHARS: Final = 300


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _error_text(response: httpx.Response) -> str:
    try:
        text = str(response.json().get("error", ""))
    except (ValueError, AttributeError):
        text = response.text
    return (text or response.reason_phrase)[:_ERROR_TEXT_CHARS]


def _quote_identifier(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxDBv1Output:
    """Writes line protocol with ``POST /write?db=..&precision=ns``.

    Parameters
    ----------
    url
        Base URL, e.g. ``http://127.0.0.1:8086``.
    token
        Sent as ``Authorization: Token ...`` when set (1.8+ ``user:password``,
        2.x/3.x API tokens).
    timeout
        Seconds per HTTP request.
    transport
        Injected httpx transport (``httpx.MockTransport`` in unit tests).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Token {token}"} if token else {}
        self._client = httpx.Client(
            base_url=url, headers=headers, timeout=timeout, transport=transport
        )
        self._known: set[str] = set()

    def ensure_database(self, db: str) -> None:
        """Run ``CREATE DATABASE`` once per name (it is a no-op when it exists)."""
        if db in self._known:
            return
        query = f"CREATE DATABASE {_quote_identifier(db)}"
        response = self._post(db, "/query", data={"q": query})
        if response.status_code >= 500 or response.status_code in (*_AUTH_STATUSES, 429):
            raise self._error(db, response)
        refused = response.status_code >= 400 or "error" in response.text
        if refused:
            # 2.x/3.x may refuse CREATE DATABASE yet accept writes: let the write decide.
            log.warning(kv("create_database_refused", db=db, error=_error_text(response)))
        self._known.add(db)

    def write(self, db: str, body: bytes) -> None:
        """Store ``body`` in ``db``; raise ``WriteError`` on any failure."""
        response = self._post(db, "/write", params={"db": db, "precision": "ns"}, content=body)
        if response.status_code >= 300:
            if response.status_code == 404:
                self._known.discard(db)
            raise self._error(db, response)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _post(
        self,
        db: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        try:
            return self._client.post(path, params=params, data=data, content=content)
        except httpx.TransportError as exc:
            raise WriteError(f"{path} for {db!r}: {type(exc).__name__}: {exc}", True) from exc

    @staticmethod
    def _error(db: str, response: httpx.Response) -> WriteError:
        status = response.status_code
        retryable = status >= 500 or status in (*_AUTH_STATUSES, 404, 429)
        message = f"HTTP {status} for {db!r}: {_error_text(response)!r}"
        return WriteError(message, retryable, _retry_after(response))
