"""What every route shares: settings, the registry database and the InfluxQL client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from api.auth import Principal, authenticate
from api.db import Database
from api.memo import ttl_memo
from api.models import Machine
from api.settings import ApiSettings
from api.status import StatusCache
from api.throttle import Throttle
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
    #: ``token -> Principal | None``, remembered for ``auth_cache_s``.
    principal_of: Callable[[str], Principal | None] = field(init=False)
    #: ``(factory, machine) -> Machine | None``, remembered for ``auth_cache_s``.
    machine_of: Callable[[str, str], Machine | None] = field(init=False)
    key_rate: Throttle = field(init=False)
    auth_failures: Throttle = field(init=False)

    def __post_init__(self) -> None:
        offline_ms = round(self.settings.offline_after_s * 1000)
        self.status = StatusCache(self.influx, self.settings.status_cache_s, offline_ms)
        self.principal_of = ttl_memo(self._authenticate, self.settings.auth_cache_s)
        self.machine_of = ttl_memo(self._machine, self.settings.auth_cache_s)
        self.key_rate = Throttle(self.settings.rate_limit)
        self.auth_failures = Throttle(self.settings.auth_failure_limit)

    def _authenticate(self, token: str) -> Principal | None:
        with self.database.session() as session:
            return authenticate(session, token)

    def _machine(self, factory_id: str, machine_id: str) -> Machine | None:
        with self.database.session() as session:
            return session.get(Machine, (factory_id, machine_id))

    def close(self) -> None:
        """Release the database and InfluxDB connection pools the app created."""
        if self.owns_database:
            self.database.dispose()
        if self.owns_influx:
            self.influx.close()


def context(request: Request) -> AppContext:
    """FastAPI dependency: the app's context."""
    return request.app.state.ctx
