"""KPIs and anomaly detection over telemetry (built in the analytics issue)."""

__all__: list[str] = []
