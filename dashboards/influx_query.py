"""An InfluxQL target for grafana-foundation-sdk, which ships no InfluxDB query type.

The SDK's builders accept any :class:`~grafana_foundation_sdk.cog.variants.Dataquery`
(its ``custom-query`` example does the same for a plugin it lacks), so a raw InfluxQL
query is one small model with ``to_json`` and a fluent builder. Grafana's InfluxDB
data source (InfluxQL mode) reads ``query`` as written when ``rawQuery`` is true, after
substituting ``$timeFilter``, ``$__interval`` and the template variables.

Example
-------
>>> q = InfluxQL('SELECT mean("speed_rpm") FROM "loom" WHERE $timeFilter').ref_id("A")
>>> sorted(q.build().to_json().items())  # doctest: +NORMALIZE_WHITESPACE
[('query', 'SELECT mean("speed_rpm") FROM "loom" WHERE $timeFilter'), ('rawQuery', True),
 ('refId', 'A'), ('resultFormat', 'time_series')]
"""

from __future__ import annotations

from typing import Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

__all__ = ["InfluxQL", "InfluxQLQuery", "ResultFormat"]

ResultFormat = Literal["time_series", "table", "logs"]


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL query as Grafana's InfluxDB data source stores it in a panel."""

    def __init__(self, query: str = "") -> None:
        self.query = query
        self.ref_id = ""
        self.result_format: ResultFormat = "time_series"
        self.alias: str | None = None
        self.hide: bool | None = None
        self.datasource: DataSourceRef | None = None

    def to_json(self) -> dict[str, object]:
        """The target's JSON as Grafana saves it (keys sorted by the encoder)."""
        payload: dict[str, object] = {
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.hide is not None:
            payload["hide"] = self.hide
        if self.datasource is not None:
            payload["datasource"] = self.datasource.to_json()
        return payload


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Fluent builder of an :class:`InfluxQLQuery`, like the SDK's own query builders."""

    def __init__(self, query: str) -> None:
        self._internal = InfluxQLQuery(query)

    def build(self) -> InfluxQLQuery:
        """Return the built query."""
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        """Set the target's id within its panel (``A``, ``B``…)."""
        self._internal.ref_id = ref_id
        return self

    def table(self) -> Self:
        """Return rows as a table (raw selects, lists) instead of time series."""
        self._internal.result_format = "table"
        return self

    def alias(self, alias: str) -> Self:
        """Name the series; ``$tag_machine`` and ``$col`` are expanded by Grafana."""
        self._internal.alias = alias
        return self

    def datasource(self, ref: DataSourceRef) -> Self:
        """Query another data source than the panel's (mixed panels)."""
        self._internal.datasource = ref
        return self
