"""The API's own counters on ``/metrics`` (Prometheus text format).

Each app gets its own registry, so two apps in one process (tests) never collide.
Requests are labelled by route template (``/v1/machines/{machine_id}``), never by the
raw path, so ids cannot blow up the label set.
"""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["install_metrics"]


class RequestMetrics:
    """Plain ASGI middleware (cheaper than ``@app.middleware``, which wraps every body)."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app, self.requests, self.latency = app, requests, latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            self.latency.labels(template).observe(time.perf_counter() - started)
            self.requests.labels(template, scope["method"], str(status)).inc()


def install_metrics(app: FastAPI) -> CollectorRegistry:
    """Count and time every request of ``app``; serve the figures on ``/metrics``."""
    registry = CollectorRegistry()
    requests = Counter(
        "millwatch_api_requests_total",
        "Requests answered, by route template, method and status",
        ["route", "method", "status"],
        registry=registry,
    )
    latency = Histogram(
        "millwatch_api_request_seconds",
        "Time to answer a request, by route template",
        ["route"],
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        registry=registry,
    )

    app.add_middleware(RequestMetrics, requests=requests, latency=latency)

    @app.get("/metrics", include_in_schema=False)
    def _metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return registry
