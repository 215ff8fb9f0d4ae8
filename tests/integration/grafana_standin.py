"""A stand-in for Grafana's HTTP API (no Grafana server can run here): records requests.

It serves just the endpoints ``dashboards.push`` calls, keeps what was stored by uid the
way Grafana does (a dashboard saved again with ``overwrite`` replaces the old one), and
records every request (method, path, headers, JSON body) for the tests to inspect.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class GrafanaStandin:
    """State and request log; ``url`` is set once serving."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:  # noqa: PLR0911
        parts = path.split("?", maxsplit=1)[0].strip("/").split("/")
        match method, parts:
            case "GET", ["api", "folders", uid]:
                return (200, self.folders[uid]) if uid in self.folders else _missing()
            case "POST", ["api", "folders"]:
                if body["uid"] in self.folders:
                    return 409, {"message": "a folder with the same uid already exists"}
                self.folders[body["uid"]] = body
                return 200, {**body, "id": len(self.folders)}
            case "GET", ["api", "datasources", "uid", uid]:
                return (200, self.datasources[uid]) if uid in self.datasources else _missing()
            case "POST", ["api", "datasources"]:
                if body["uid"] in self.datasources:
                    return 409, {"message": "data source with the same uid already exists"}
                self.datasources[body["uid"]] = body
                return 200, {"datasource": body, "message": "Datasource added"}
            case "PUT", ["api", "datasources", "uid", uid]:
                if uid not in self.datasources:
                    return _missing()
                self.datasources[uid] = body
                return 200, {"datasource": body, "message": "Datasource updated"}
            case "POST", ["api", "dashboards", "db"]:
                uid = body["dashboard"]["uid"]
                if uid in self.dashboards and not body.get("overwrite"):
                    return 412, {"status": "name-exists"}
                self.dashboards[uid] = body
                return 200, {"status": "success", "uid": uid, "version": 1}
        return 404, {"message": "Not found"}


def _missing() -> tuple[int, Any]:
    return 404, {"message": "not found"}


@contextmanager
def serve() -> Iterator[GrafanaStandin]:
    """Run a stand-in on a free loopback port until the block ends."""
    standin = GrafanaStandin()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            standin.requests.append(Request(self.command, self.path, dict(self.headers), body))
            status, doc = standin.handle(self.command, self.path, body)
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _answer  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    standin.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
