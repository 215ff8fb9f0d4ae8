"""Cluster benchmark: factories compared as percentile bands, never by name.

Reads only ``cluster_kpi``.``factory_kpi`` (one row per factory, machine class and
shift). Each panel reduces every factory to one value per day (the mean of its
shifts), then shows the 10th, 50th and 90th percentile across factories per machine
class, the way the API anonymises: no factory id appears in any result.

k-anonymity: like the API, a band is only shown when at least ``K_ANONYMITY`` = 5
factories are behind it. InfluxQL has no HAVING, but its ``percentile`` is nearest-rank
and returns null when the rank ``floor(n * p / 100 + 0.5)`` is below 1, i.e. for
``p = 50 / k`` exactly when fewer than ``k`` values (factories) are in the bucket. Adding
``0 * percentile("v", 50 / k)`` to each band therefore nulls the whole band below ``k``
factories, inside the query: the suppressed values never reach the browser. The panel
beside the bands counts the factories behind each day.

Example
-------
>>> q = band("oee").query
>>> "percentile" in q and 'GROUP BY time(1d), "factory"' in q and "$type" in q
True
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as model

from dashboards.common import (
    CLUSTER_DS,
    PanelBuilder,
    add_rows,
    dashboard,
    stat,
    steps,
    tag_variable,
    timeseries,
)
from dashboards.dyeing_batch import ENERGY, STEAM, WATER
from dashboards.influx_query import InfluxQL, InfluxQLQuery

__all__ = ["K_ANONYMITY", "METRICS", "UID", "band", "build", "factories"]

UID = "mw-cluster-benchmark"
#: Fewest factories a published band may be built from (the API's rule).
K_ANONYMITY: Final = 5
#: (title, factory_kpi field, unit, thresholds)
METRICS: Final = (
    ("Efficiency", "efficiency", "percentunit", None),
    (
        "OEE",
        "oee",
        "percentunit",
        steps("red", (0.60, "orange"), (0.75, "yellow"), (0.85, "green")),
    ),
    (
        "Stops per 10⁵ picks",
        "stops_per_1e5_picks",
        "short",
        steps("green", (8, "yellow"), (25, "red")),
    ),
    ("Water per kg", "water_l_per_kg", "suffix: L/kg", WATER),
    ("Steam per kg", "steam_kg_per_kg", "suffix: kg/kg", STEAM),
    ("Energy per kg", "kwh_per_kg", "suffix: kWh/kg", ENERGY),
)


def _per_factory(field: str) -> str:
    return (
        f'SELECT mean("{field}") AS "v" FROM "factory_kpi" '
        'WHERE "type" =~ /^$type$/ AND $timeFilter GROUP BY time(1d), "factory"'
    )


def band(field: str) -> InfluxQLQuery:
    """p10/p50/p90 across factories of each factory's daily mean of ``field``.

    Each is null where fewer than :data:`K_ANONYMITY` factories report (see above).
    """
    gate = f' + 0 * percentile("v", {50 / K_ANONYMITY:g})'
    columns = ", ".join(f'percentile("v", {p}){gate} AS "p{p}"' for p in (10, 50, 90))
    return (
        InfluxQL(
            f"SELECT {columns} FROM ({_per_factory(field)}) "
            "WHERE $timeFilter GROUP BY time(1d) fill(none)"
        )
        .alias("$col")
        .build()
    )


def factories(field: str) -> InfluxQL:
    """How many factories each day's band of ``field`` is built from."""
    return InfluxQL(
        f'SELECT count("v") AS "factories" FROM ({_per_factory(field)}) '
        "WHERE $timeFilter GROUP BY time(1d) fill(none)"
    )


def _band_panel(
    title: str, field: str, unit: str, th: dash.ThresholdsConfig | None
) -> PanelBuilder:
    query = InfluxQL(band(field).query).alias("$col")
    panel = timeseries(f"{title}: p10-p90 band, median", unit, query, ds=CLUSTER_DS, span=18)
    return panel.override_by_name(  # type: ignore[attr-defined,no-any-return]
        "p90", [model.DynamicConfigValue("custom.fillBelowTo", "p10")]
    )


def _count_panel(field: str) -> PanelBuilder:
    return stat(
        "Factories in the band",
        "short",
        factories(field),
        ds=CLUSTER_DS,
        thresholds=steps("red", (K_ANONYMITY, "green")),
        description=f"Bands need at least {K_ANONYMITY} factories (k-anonymity, as in the "
        "API); the band queries return nothing for days with fewer.",
        height=8,
    )


def build() -> dash.Dashboard:
    """The cluster benchmark dashboard builder."""
    board = dashboard("Cluster benchmark", UID, ["cluster"], "now-30d").with_variable(
        tag_variable(
            "type",
            'SHOW TAG VALUES FROM "factory_kpi" WITH KEY = "type"',
            label="Machine class",
            datasource=CLUSTER_DS,
            include_all=False,
        )
    )
    rows = [(t, [_band_panel(t, f, u, th), _count_panel(f)]) for t, f, u, th in METRICS]
    return add_rows(board, *rows)
