"""Where ingest stores line protocol: InfluxDB v1 API, v2 API, or memory (tests).

:func:`make_output` picks one from :class:`~ingest.settings.IngestSettings`.
"""

from __future__ import annotations

from ingest.outputs.base import Output
from ingest.outputs.influxdb_v1 import InfluxDBv1Output
from ingest.outputs.influxdb_v2 import InfluxDBv2Output
from ingest.outputs.memory import MemoryOutput
from ingest.settings import IngestSettings

__all__ = ["InfluxDBv1Output", "InfluxDBv2Output", "MemoryOutput", "Output", "make_output"]


def make_output(settings: IngestSettings) -> Output:
    """Build the output ``settings.influx_api`` names (v2 needs token and org)."""
    token = settings.influx_token.get_secret_value() if settings.influx_token else None
    timeout = settings.influx_timeout_s
    if settings.influx_api == "v2":
        if token is None or settings.influx_org is None:
            raise ValueError("influx_api='v2' needs influx_token and influx_org")
        return InfluxDBv2Output(settings.influx_url, token, settings.influx_org, timeout)
    return InfluxDBv1Output(settings.influx_url, token, timeout)
