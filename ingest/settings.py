"""Configuration of the ingest service, read from ``MILLWATCH_INGEST_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["IngestSettings"]


class IngestSettings(BaseSettings):
    """Settings of one ingest worker.

    Init keyword arguments win over the environment, so tests build settings
    in-process; ``python -m ingest`` reads them from ``MILLWATCH_INGEST_*``.

    Delivery is at-least-once: ``client_id`` must stay fixed across restarts so
    the broker keeps the persistent session (and the unacked messages in it)
    for ``session_expiry_s``. ``receive_maximum`` caps the messages the broker
    has in flight to us unacked; it is the backpressure while InfluxDB is slow
    or down, since ingest never drops a valid message.
    """

    model_config = SettingsConfigDict(
        env_prefix="MILLWATCH_INGEST_", env_ignore_empty=True, extra="ignore"
    )

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls_ca_file: Path | None = None
    client_id: str = Field("millwatch-ingest-0", min_length=1, max_length=64)
    share_group: str = Field("ingest", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    session_expiry_s: int = Field(7 * 24 * 3600, ge=0, le=0xFFFFFFFF)
    receive_maximum: int = Field(1000, ge=1, le=65535)

    influx_url: str = "http://127.0.0.1:8086"
    influx_api: Literal["v1", "v2"] = "v1"
    influx_token: SecretStr | None = None
    influx_org: str | None = None
    influx_timeout_s: float = Field(10.0, gt=0)

    batch_max_lines: int = Field(20_000, ge=1)
    batch_max_messages: int = Field(500, ge=1)
    flush_interval_s: float = Field(0.1, gt=0)
    retry_initial_s: float = Field(0.2, gt=0)
    retry_max_s: float = Field(10.0, gt=0)

    metrics_port: int = Field(0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    internal_interval_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        if self.influx_api == "v2" and not (self.influx_token and self.influx_org):
            raise ValueError("influx_api='v2' needs influx_token and influx_org")
        if self.mqtt_password is not None and self.mqtt_username is None:
            raise ValueError("mqtt_password needs mqtt_username")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be >= retry_initial_s")
        return self
