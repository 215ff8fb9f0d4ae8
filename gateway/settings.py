"""Gateway settings: one typed class, read from a TOML file and ``MILLWATCH_GATEWAY_*``.

Sources, highest priority first: keyword arguments, environment variables, the TOML
file given to :meth:`GatewaySettings.from_toml`, then the defaults below. The keys are
documented for operators in ``gateway/sample.toml``.

Example
-------
>>> s = GatewaySettings(cluster="c1", factory="f01", gateway_id="gw1",
...                     outbox_path="/tmp/outbox.sqlite")
>>> s.client_id, s.max_unacked
('gw-c1-f01-gw1', 1000)
"""

from __future__ import annotations

import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gateway.errors import ConfigError
from millwatch.contract import MAX_SAMPLES, GatewayAddress, check_id

# paho refuses a message whose id is still in flight and ids wrap at 65,535; the
# publisher also needs slack for status and metrics messages, so cap well below.
MAX_UNACKED_LIMIT = 32_768

# The TOML document ``from_toml`` is loading; read by ``settings_customise_sources``.
_TOML_DATA: ContextVar[dict[str, Any] | None] = ContextVar("_TOML_DATA", default=None)


class GatewaySettings(BaseSettings):
    """Everything one gateway process needs; see ``gateway/sample.toml`` for each key."""

    model_config = SettingsConfigDict(
        env_prefix="MILLWATCH_GATEWAY_", env_ignore_empty=True, extra="forbid"
    )

    cluster: str
    factory: str
    gateway_id: str
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(1883, ge=1, le=65_535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls_ca_file: Path | None = None
    outbox_path: Path
    outbox_max_messages: int = Field(200_000, ge=1)
    outbox_full_policy: Literal["drop_oldest", "reject_newest"] = "drop_oldest"
    outbox_hold_max_bytes: int = Field(64 << 20, ge=0)
    outbox_min_free_bytes: int = Field(4 << 20, ge=0)
    max_unacked: int = Field(1000, ge=1, le=MAX_UNACKED_LIMIT)
    sample_interval_s: float = Field(1.0, gt=0)
    samples_per_message: int = Field(1, ge=1, le=MAX_SAMPLES)
    fast_forward: bool = False
    historical: bool = False
    broker_backlog_limit: int | None = Field(None, ge=1)
    start_ts_ms: int | None = Field(None, ge=0)
    max_ticks: int | None = Field(None, ge=1)
    metrics_port: int = Field(0, ge=0, le=65_535)
    metrics_host: str = "127.0.0.1"
    metrics_interval_s: float = Field(10.0, gt=0)
    inputs: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("cluster", "factory", "gateway_id")
    @classmethod
    def _contract_id(cls, value: str, info: ValidationInfo) -> str:
        return check_id(value, str(info.field_name))

    @model_validator(mode="after")
    def _fits_outbox(self) -> GatewaySettings:
        # A flush that cannot fit even in an empty outbox would be refused forever.
        if self.max_unacked > self.outbox_max_messages:
            raise ValueError("max_unacked must not exceed outbox_max_messages")
        if self.mqtt_password is not None and self.mqtt_username is None:
            raise ValueError("mqtt_password needs mqtt_username")
        return self

    @property
    def address(self) -> GatewayAddress:
        """The gateway's contract address (for its status and metrics topics)."""
        return GatewayAddress(self.cluster, self.factory, self.gateway_id)

    @property
    def client_id(self) -> str:
        """MQTT client id, stable across restarts so the broker sees one client."""
        return f"gw-{self.cluster}-{self.factory}-{self.gateway_id}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order the sources: keyword arguments, environment, TOML file (no dotenv)."""
        data = _TOML_DATA.get()
        if data is None:
            return init_settings, env_settings
        return init_settings, env_settings, InitSettingsSource(settings_cls, init_kwargs=data)

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> GatewaySettings:
        """Load settings from a TOML file; environment and ``overrides`` take precedence.

        Raises
        ------
        ConfigError
            If the file is missing, is not TOML, or holds invalid or unknown keys; the
            message names the file, so an operator sees which config is wrong.
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        token = _TOML_DATA.set(data)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        finally:
            _TOML_DATA.reset(token)
