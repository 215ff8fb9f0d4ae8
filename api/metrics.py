"""The API's own counters on ``/metrics`` (Prometheus text format).

Each app gets its own registry, so two apps in one process (tests) never collide.
Requests are labelled by route template (``/v1/machines/{machine_id}``), never by the
raw path, so ids cannot blow up the label set.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

__all__ = ["install_metrics"]


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

    @app.middleware("http")
    async def _measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        latency.labels(template).observe(time.perf_counter() - started)
        requests.labels(template, request.method, str(response.status_code)).inc()
        return response

    @app.get("/metrics", include_in_schema=False)
    def _metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return registry
