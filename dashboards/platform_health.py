"""Platform health: is data flowing, how late, what is rejected, is analytics keeping up.

Reads ``millwatch_internal``: ingest workers' counters (``internal_ingest``, tag
``worker``), gateways' counters (``internal_gateway``, tags ``factory``, ``gateway``),
rejected messages (``dead_letter``, tag ``reason``) and the analytics passes
(``internal_analytics``, tag ``factory``). Counters are totals, so rates are
``non_negative_derivative`` (a restart's reset to 0 is skipped, not negative).
A gateway is online while it reports ``connected`` = 1; one that stopped reporting
(crashed, cut off) shows no recent value at all, so the panel's "no data" means offline.

Example
-------
>>> build().build().uid
'mw-platform-health'
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as model

from dashboards.common import (
    INTERNAL_DS,
    PanelBuilder,
    add_rows,
    bar_gauge,
    dashboard,
    stat,
    steps,
    tag_variable,
    timeseries,
    where,
)
from dashboards.influx_query import InfluxQL

__all__ = ["UID", "build"]

UID = "mw-platform-health"
_ONLINE = [
    model.ValueMap(
        {
            "0": model.ValueMappingResult(text="offline", color="red", index=0),
            "1": model.ValueMappingResult(text="online", color="green", index=1),
        }
    )
]
_RATE = 'non_negative_derivative(max("{f}"), 1s) AS "{a}"'


def _ingest() -> list[PanelBuilder]:
    rates = ", ".join(
        _RATE.format(f=f, a=a)
        for f, a in (("lines_written_total", "lines/s"), ("messages_received_total", "messages/s"))
    )
    return [
        timeseries(
            "Ingest rate",
            "short",
            InfluxQL(
                f'SELECT {rates} FROM "internal_ingest" WHERE $timeFilter '
                'GROUP BY time($__interval), "worker" fill(none)'
            ).alias("$tag_worker $col"),
            ds=INTERNAL_DS,
        ),
        timeseries(
            "Ack lag (oldest unsettled message)",
            "s",
            InfluxQL(
                'SELECT max("ack_lag_seconds") AS "ack lag" FROM "internal_ingest" '
                'WHERE $timeFilter GROUP BY time($__interval), "worker" fill(none)'
            ).alias("$tag_worker $col"),
            ds=INTERNAL_DS,
            thresholds=steps("green", (10, "yellow"), (60, "red")),
        ),
        timeseries(
            "Dead letters by reason",
            "short",
            InfluxQL(
                'SELECT count("topic") FROM "dead_letter" WHERE $timeFilter '
                'GROUP BY time($__interval), "reason" fill(none)'
            ).alias("$tag_reason"),
            ds=INTERNAL_DS,
            span=16,
        ),
        bar_gauge(
            "Dead letters in the range",
            "short",
            InfluxQL(
                'SELECT count("topic") FROM "dead_letter" WHERE $timeFilter GROUP BY "reason"'
            ).alias("$tag_reason"),
            ds=INTERNAL_DS,
            span=8,
        ),
    ]


def _gateways() -> list[PanelBuilder]:
    gw = where("factory")
    return [
        stat(
            "Gateways online",
            "none",
            InfluxQL(
                f'SELECT last("connected") FROM "internal_gateway" WHERE {gw} '
                'GROUP BY "factory", "gateway"'
            ).alias("$tag_factory/$tag_gateway"),
            ds=INTERNAL_DS,
            thresholds=steps("red", (1, "green")),
            span=8,
            height=8,
        ).mappings(_ONLINE),  # type: ignore[attr-defined]
        timeseries(
            "Gateway outbox depth, and messages held in memory while its disk is full",
            "short",
            InfluxQL(
                f'SELECT max("outbox_depth") FROM "internal_gateway" WHERE {gw} '
                'GROUP BY time($__interval), "factory", "gateway" fill(none)'
            ).alias("$tag_factory/$tag_gateway"),
            InfluxQL(
                f'SELECT max("outbox_held") FROM "internal_gateway" WHERE {gw} '
                'GROUP BY time($__interval), "factory", "gateway" fill(none)'
            ).alias("$tag_factory/$tag_gateway held (disk full)"),
            ds=INTERNAL_DS,
            span=16,
            description="Held messages mean the gateway cannot write its outbox "
            "(disk full): they are kept in memory up to outbox_hold_max_bytes.",
        ),
    ]


def _analytics() -> list[PanelBuilder]:
    return [
        timeseries(
            "Analytics pass time per factory",
            "s",
            InfluxQL(
                'SELECT max("pass_s") FROM "internal_analytics" WHERE $timeFilter '
                'GROUP BY time($__interval), "factory" fill(none)'
            ).alias("$tag_factory"),
            ds=INTERNAL_DS,
        ),
        timeseries(
            "Analytics errors and scoring lag",
            "short",
            InfluxQL(
                f"SELECT {_RATE.format(f='errors_total', a='errors/s')}, "
                'max("lag_s") AS "lag s" FROM "internal_analytics" WHERE $timeFilter '
                'GROUP BY time($__interval), "factory" fill(none)'
            ).alias("$tag_factory $col"),
            ds=INTERNAL_DS,
        ),
    ]


def build() -> dash.Dashboard:
    """The platform health dashboard builder."""
    board = dashboard("Platform health", UID, ["platform"], "now-6h").with_variable(
        tag_variable(
            "factory",
            'SHOW TAG VALUES FROM "internal_gateway" WITH KEY = "factory"',
            datasource=INTERNAL_DS,
        )
    )
    return add_rows(
        board, ("Ingest", _ingest()), ("Gateways", _gateways()), ("Analytics", _analytics())
    )
