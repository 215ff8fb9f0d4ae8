"""Configuration of the API server, read from ``MILLWATCH_API_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from limits import parse
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ApiSettings"]


class ApiSettings(BaseSettings):
    """Settings of one API server process.

    The server keeps no state of its own: the registry (assets, credentials, alarm
    notes) lives in the SQL database at ``registry_url`` and telemetry in InfluxDB, so
    more processes behind a load balancer serve more clients.
    """

    model_config = SettingsConfigDict(
        env_prefix="MILLWATCH_API_", env_ignore_empty=True, extra="ignore"
    )

    influx_url: str = "http://127.0.0.1:8086"
    influx_token: SecretStr | None = None
    influx_timeout_s: float = Field(30.0, gt=0)
    cluster: str = "c1"
    registry_url: str = "sqlite:///millwatch-registry.db"

    #: A benchmark band built from fewer factories is withheld: with few factories a
    #: percentile is one factory's value.
    benchmark_min_factories: int = Field(5, ge=2)
    #: Longest time range one request may cover.
    max_range_days: float = Field(92.0, gt=0)
    #: Most time buckets one telemetry response may hold.
    max_points: int = Field(10_000, ge=10)
    #: A machine whose newest sample is older than this is reported ``offline``.
    offline_after_s: float = Field(300.0, gt=0)
    #: How long one computation of a factory's live status serves every request.
    status_cache_s: float = Field(2.0, ge=0)
    #: How long a checked key, and a registry lookup, serve later requests in this process.
    #: A key revoked through this process stops at once; other processes follow within it.
    auth_cache_s: float = Field(1.0, ge=0)
    #: Threads that run requests (each waits on InfluxDB or the registry); more only adds
    #: GIL contention on a small machine.
    threads: int = Field(8, ge=1, le=256)

    #: Requests one key may send per process (``limits`` notation).
    rate_limit: str = "100/second"
    #: Invalid-key attempts one client address may make before its invalid attempts get 429.
    auth_failure_limit: str = "30/minute"
    #: Largest request body (alarm comments, registry objects are small).
    max_body_bytes: int = Field(65_536, ge=1024)

    #: The broker's folder (``passwd``, ``acl``, ``mosquitto.pid``): when set, gateway logins
    #: changed through the API rewrite those files and reload the broker.
    broker_dir: Path | None = None

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("rate_limit", "auth_failure_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse(value)  # ValueError names what is wrong
        return value
