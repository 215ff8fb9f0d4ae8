"""The InfluxDB v2 output against a local HTTP stand-in.

No InfluxDB 2.x server can be installed on these machines (Debian ships 1.6 only), so a
stand-in that records requests answers the few v2 endpoints the output uses. What is
real here: influxdb-client's HTTP requests, headers and error handling.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ingest.errors import WriteError
from ingest.outputs.influxdb_v2 import InfluxDBv2Output


class StandIn:
    """Records every request; ``write_status`` sets the answer to the next writes."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.buckets: dict[str, str] = {}
        self.write_status = 204


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _answer(self, status: int, doc: Any = None) -> None:
            body = json.dumps(doc).encode() if doc is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _record(self) -> tuple[str, dict[str, list[str]], bytes]:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append(
                {
                    "method": self.command,
                    "path": url.path,
                    "query": parse_qs(url.query),
                    "auth": self.headers.get("Authorization"),
                    "body": body,
                }
            )
            return url.path, parse_qs(url.query), body

        def do_GET(self) -> None:
            path, query, _ = self._record()
            if path == "/api/v2/buckets":
                names = query.get("name", [])
                found = [
                    {"id": state.buckets[n], "name": n, "retentionRules": []}
                    for n in names
                    if n in state.buckets
                ]
                self._answer(200, {"buckets": found})
            elif path == "/api/v2/orgs":
                self._answer(200, {"orgs": [{"id": "0rg", "name": "mill"}]})
            else:
                self._answer(404, {"code": "not found", "message": path})

        def do_POST(self) -> None:
            path, _, body = self._record()
            if path == "/api/v2/buckets":
                name = json.loads(body)["name"]
                state.buckets[name] = f"b{len(state.buckets)}"
                self._answer(
                    201,
                    {"id": state.buckets[name], "name": name, "orgID": "0rg", "retentionRules": []},
                )
            elif path == "/api/v2/write":
                status = state.write_status
                self._answer(status, None if status == 204 else {"code": "x", "message": "no"})
            else:
                self._answer(404, {"code": "not found", "message": path})

    return Handler


@pytest.fixture
def standin() -> Iterator[tuple[StandIn, str]]:
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_v2_output_writes_through_influxdb_client_to_an_http_standin(
    standin: tuple[StandIn, str],
) -> None:
    state, url = standin
    output = InfluxDBv2Output(url, "s3cret", "mill", timeout=5)
    body = b"loom,machine=l1 seq=1i,speed_rpm=812.0 1767168000000000000"
    for _ in range(2):
        output.ensure_database("f_f01")
        output.write("f_f01", body)
    output.close()
    writes = [r for r in state.requests if r["path"] == "/api/v2/write"]
    creates = [r for r in state.requests if r["method"] == "POST" and "buckets" in r["path"]]
    assert len(writes) == 2 and len(creates) == 1, "the bucket is created once, on first use"
    assert json.loads(creates[0]["body"])["name"] == "f_f01"
    for write in writes:
        assert write["auth"] == "Token s3cret"
        assert write["query"]["bucket"] == ["f_f01"]
        assert write["query"]["org"] == ["mill"]
        assert write["query"]["precision"] == ["ns"]
        assert write["body"] == body


@pytest.mark.parametrize(("status", "retryable"), [(503, True), (401, True), (400, False)])
def test_v2_output_maps_standin_errors(
    standin: tuple[StandIn, str], status: int, retryable: bool
) -> None:
    state, url = standin
    state.buckets["f_f01"] = "b0"
    state.write_status = status
    output = InfluxDBv2Output(url, "s3cret", "mill", timeout=5)
    output.ensure_database("f_f01")
    with pytest.raises(WriteError) as error:
        output.write("f_f01", b"loom,machine=l1 seq=1i 1")
    output.close()
    assert error.value.retryable is retryable
