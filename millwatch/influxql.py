"""InfluxQL over InfluxDB's v1 ``/query`` endpoint, which 1.x, 2.x and 3.x all serve.

Analytics and the API read InfluxDB through this one client. Values that come from
outside (machine ids, times) travel as bind parameters (``$name`` in the query and a
JSON ``params`` object beside it), never pasted into the query text, so no input can
change a query's meaning; identifiers (measurements, fields) come from the data
contract's own tables.

Example
-------
>>> import httpx
>>> reply = {"results": [{"series": [{"name": "loom", "tags": {"machine": "l1"},
...          "columns": ["time", "last"], "values": [[1000, 1]]}]}]}
>>> transport = httpx.MockTransport(lambda request: httpx.Response(200, json=reply))
>>> client = InfluxQL("http://influx", transport=transport)
>>> client.query("f_f01", 'SELECT last("state_code") FROM "loom" WHERE machine = $m', {"m": "l1"})
[Series(tags={'machine': 'l1'}, columns=['time', 'last'], values=[[1000, 1]])]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

__all__ = ["InfluxQL", "QueryError", "Series", "span_where"]


def span_where(
    start_ms: int, end_ms: int, tags: Mapping[str, str | None] | None = None
) -> tuple[str, dict[str, Any]]:
    """A ``WHERE`` body for ``[start_ms, end_ms)`` and tag equalities, with bind params.

    Tags whose value is ``None`` are left out (no filter). Tag *names* must come from
    the caller's own code; values are bound.

    >>> span_where(0, 60_000, {"machine": "l1", "hall": None})
    ('time >= 0ms AND time < 60000ms AND "machine" = $machine', {'machine': 'l1'})
    """
    clauses = [f"time >= {int(start_ms)}ms", f"time < {int(end_ms)}ms"]
    params: dict[str, Any] = {}
    for tag, value in (tags or {}).items():
        if value is not None:
            clauses.append(f'"{tag}" = ${tag}')
            params[tag] = value
    return " AND ".join(clauses), params


class QueryError(RuntimeError):
    """InfluxDB refused, failed or could not be reached for a query."""


@dataclass
class Series:
    """One series of a query result: its tags, column names and rows (time in epoch ms)."""

    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]


class InfluxQL:
    """A pooled, thread-safe InfluxQL client for one InfluxDB.

    Parameters
    ----------
    url
        Base URL of the InfluxDB HTTP API.
    token
        Sent as ``Authorization: Token …`` (2.x/3.x); 1.x without auth needs none.
    timeout
        Seconds per request.
    transport
        Injected httpx transport for unit tests.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Token {token}"} if token else {}
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        self._client = httpx.Client(
            base_url=url, headers=headers, timeout=timeout, transport=transport, limits=limits
        )

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def query(self, db: str, q: str, params: Mapping[str, Any] | None = None) -> list[Series]:
        """Run InfluxQL ``q`` in ``db`` with bind ``params``; a missing database is empty."""
        return self.query_many(db, [q], params)[0]

    def query_many(
        self, db: str, statements: Sequence[str], params: Mapping[str, Any] | None = None
    ) -> list[list[Series]]:
        """Run several statements in one request (one round trip); series per statement."""
        arguments = {"db": db, "q": ";\n".join(statements), "epoch": "ms"}
        if params:
            arguments["params"] = orjson.dumps(dict(params)).decode()
        try:
            response = self._client.get("/query", params=arguments)
        except httpx.TransportError as exc:
            raise QueryError(f"query to {db!r}: {type(exc).__name__}: {exc}") from exc
        if response.is_error:
            raise QueryError(f"HTTP {response.status_code} from {db!r}: {response.text[:300]}")
        found: list[list[Series]] = [[] for _ in statements]
        for position, result in enumerate(orjson.loads(response.content).get("results", [])):
            if "error" in result and "database not found" not in result["error"]:
                raise QueryError(f"InfluxQL error in {db!r}: {result['error']}")
            index = result.get("statement_id", position)
            for s in result.get("series", []):
                found[index].append(Series(s.get("tags") or {}, s["columns"], s["values"]))
        return found

    def ping(self) -> bool:
        """Whether InfluxDB answers its ``/ping`` endpoint."""
        try:
            return self._client.get("/ping").status_code == 204
        except httpx.TransportError:
            return False
