"""Configuration of the analytics service, read from ``MILLWATCH_ANALYTICS_*`` variables.

The factories a worker serves come from a TOML file (``factories_file``), one table per
factory with its time zone and shift pattern, because shifts are cut in local time::

    [[factories]]
    id = "f01"
    timezone = "Asia/Dhaka"
    shifts = "3x8"          # or "2x12"
    shift_start = "06:00"

A worker holds no state that cannot be rebuilt from InfluxDB, so a large cluster runs
several workers, each with its own share of the factories.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from millwatch.site import FactorySite

__all__ = ["AnalyticsSettings", "load_factories"]


def load_factories(path: str | Path) -> list[FactorySite]:
    """Read the ``[[factories]]`` tables of a TOML file."""
    with Path(path).open("rb") as handle:
        document = tomllib.load(handle)
    return [FactorySite(**table) for table in document.get("factories", [])]


class AnalyticsSettings(BaseSettings):
    """Settings of one analytics worker.

    Every ``interval_s`` the worker scores the newest complete buckets (each bucket is
    scored once it is ``settle_s`` old, so slow ingest does not hide samples) and
    recomputes the KPIs of every shift in the last ``kpi_horizon_h`` whose stored row
    count changed since it was last computed: the open shift, and any closed shift
    that late data reached. The anomaly monitor learns from ``train_h`` hours (at
    least ``min_train_h``) and relearns every ``refit_h``.
    """

    model_config = SettingsConfigDict(
        env_prefix="MILLWATCH_ANALYTICS_", env_ignore_empty=True, extra="ignore"
    )

    influx_url: str = "http://127.0.0.1:8086"
    influx_token: SecretStr | None = None
    influx_timeout_s: float = Field(120.0, gt=0)
    cluster: str = "c1"
    factories_file: Path | None = None

    interval_s: float = Field(60.0, gt=0)
    settle_s: float = Field(60.0, ge=0)
    kpi_every_s: float = Field(300.0, gt=0)
    kpi_horizon_h: float = Field(48.0, gt=0, le=24 * 31)
    train_h: float = Field(24.0, gt=0)
    min_train_h: float = Field(1.0, gt=0)
    refit_h: float = Field(24.0, gt=0)
    #: History read before the buckets being scored: the monitor's longest trailing
    #: window (4-h counter rates) plus its smoothing, so live scores equal ``millwatch eval``'s.
    context_min: int = Field(300, ge=1, le=24 * 60)

    metrics_port: int = Field(0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.min_train_h > self.train_h:
            raise ValueError("min_train_h must be <= train_h")
        return self

    def factories(self) -> list[FactorySite]:
        """The factories this worker serves (none without ``factories_file``)."""
        return load_factories(self.factories_file) if self.factories_file else []
