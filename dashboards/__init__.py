"""Grafana dashboards as code (built in the dashboards issue)."""

__all__: list[str] = []
