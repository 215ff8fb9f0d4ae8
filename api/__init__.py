"""Cluster service platform HTTP API (built in the API issue)."""

__all__: list[str] = []
