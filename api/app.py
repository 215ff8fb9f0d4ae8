"""The cluster service platform API: one FastAPI app built from settings.

Example
-------
>>> from fastapi.testclient import TestClient
>>> app = create_app(ApiSettings(registry_url="sqlite://", influx_url="http://127.0.0.1:9"))
>>> with TestClient(app) as client:
...     client.get("/v1/me").json()["status"]
401
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from api.body_limit import BodyLimit
from api.context import AppContext
from api.db import Database
from api.metrics import install_metrics
from api.problems import PROBLEM_RESPONSES, install_problem_handlers
from api.routes import (
    alarms,
    benchmarks,
    health,
    kpis,
    machines,
    registry,
    status_page,
    telemetry,
)
from api.settings import ApiSettings
from millwatch.influxql import InfluxQL

__all__ = ["create_app"]

DESCRIPTION = """
Machines, telemetry, KPIs, anomalies and alarms of a textile cluster's factories, and
anonymised benchmarks across them.

* **factory_engineer** keys see one factory: its machines, raw telemetry, KPIs, alarms.
* **cluster_operator** keys see every factory's aggregates and the benchmarks, never a
  factory's raw telemetry or machine-level data.
* **admin** keys manage the asset registry, API keys and gateway credentials.

The factory a key belongs to comes from the key, never from the request: an object of
another factory answers 404 like one that does not exist. Errors are
`application/problem+json` (RFC 9457). Times are ISO 8601 with a zone.
"""

TAGS = [
    {"name": "machines", "description": "Machines of your factory and their live status"},
    {"name": "telemetry", "description": "Downsampled signal history of one machine"},
    {"name": "kpis", "description": "Shift and day KPIs per machine, hall and factory"},
    {"name": "alarms", "description": "Anomaly scores and alarms; acknowledge and comment"},
    {"name": "benchmarks", "description": "Cross-factory percentile bands, anonymised"},
    {"name": "registry", "description": "Asset registry, API keys, gateway credentials"},
    {"name": "auth", "description": "The calling credential"},
    {"name": "health", "description": "Health of the service"},
]


def create_app(
    settings: ApiSettings, database: Database | None = None, influx: InfluxQL | None = None
) -> FastAPI:
    """Build the app; ``database`` and ``influx`` default to those the settings name.

    Lent ``database`` and ``influx`` objects stay open when the app stops (tests share them).
    """
    ctx = AppContext(
        settings=settings,
        database=database or Database(settings.registry_url),
        influx=influx
        or InfluxQL(
            settings.influx_url,
            settings.influx_token.get_secret_value() if settings.influx_token else None,
            settings.influx_timeout_s,
        ),
        owns_database=database is None,
        owns_influx=influx is None,
    )
    ctx.database.create_all()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        yield
        ctx.close()

    app = FastAPI(
        title="millwatch cluster API",
        version="1",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        responses={k: v for k, v in PROBLEM_RESPONSES.items() if k in (401, 413, 422, 429)},
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install_problem_handlers(app)
    install_metrics(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(machines.router)
    app.include_router(telemetry.router)
    app.include_router(kpis.router)
    app.include_router(alarms.router)
    app.include_router(benchmarks.router)
    app.include_router(registry.router)
    app.include_router(status_page.router)
    return app
