"""What every route shares: settings, the registry database and the InfluxQL client."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from api.db import Database
from api.settings import ApiSettings
from api.status import StatusCache
from millwatch.influxql import InfluxQL

__all__ = ["AppContext", "context"]


@dataclass
class AppContext:
    """Long-lived resources of one API process (thread-safe, shared by all requests)."""

    settings: ApiSettings
    database: Database
    influx: InfluxQL
    #: Whether :meth:`close` releases the database / the client (not when they were lent).
    owns_database: bool = True
    owns_influx: bool = True
    status: StatusCache = field(init=False)

    def __post_init__(self) -> None:
        offline_ms = round(self.settings.offline_after_s * 1000)
        self.status = StatusCache(self.influx, self.settings.status_cache_s, offline_ms)

    def close(self) -> None:
        """Release the database and InfluxDB connection pools the app created."""
        if self.owns_database:
            self.database.dispose()
        if self.owns_influx:
            self.influx.close()


def context(request: Request) -> AppContext:
    """FastAPI dependency: the app's context."""
    return request.app.state.ctx
