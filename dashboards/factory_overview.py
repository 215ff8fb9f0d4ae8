"""Factory overview, the shop-floor board: what runs, what stopped and why, how the shift goes.

Every machine's state (``state_code``, the newest raw value) beside its last stop reason
(``machine_event`` rows of kind ``stop``), efficiency this shift and OEE per hall (from
``kpi_shift``: its newest point per machine is the running shift), stops by reason, and
the anomaly alarms still open (``anomaly_alarm`` points without ``end_ms``).

Example
-------
>>> board = build().build()
>>> board.uid, [v.name for v in board.templating.list_val]
('mw-factory-overview', ['factory', 'hall', 'type'])
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards.common import (
    MACHINE_MEASUREMENTS,
    PanelBuilder,
    add_rows,
    bar_gauge,
    dashboard,
    factory_variable,
    join_tables,
    stat,
    state_mappings,
    state_timeline,
    steps,
    table,
    tag_variable,
    timeseries,
    where,
)
from dashboards.influx_query import InfluxQL

__all__ = ["UID", "build"]

UID = "mw-factory-overview"
_EFFICIENCY = steps("red", (0.80, "orange"), (0.85, "yellow"), (0.92, "green"))  # spec §4
_OEE = steps("red", (0.60, "orange"), (0.75, "yellow"), (0.85, "green"))  # spec §4
_HALL_TYPE = where("hall", "type")
_STOPS = "\"kind\" = 'stop'"


def _machines() -> list[PanelBuilder]:
    state = (
        table(
            "Machines: state and last stop reason",
            InfluxQL(
                f'SELECT last("state_code") AS "state" FROM {MACHINE_MEASUREMENTS} '
                f'WHERE {_HALL_TYPE} GROUP BY "hall", "type", "machine"'
            ),
            InfluxQL(
                'SELECT last("reason") AS "last stop reason", last("code") AS "stop code" '
                f'FROM "machine_event" WHERE {where("hall", "type", extra=_STOPS)} '
                'GROUP BY "machine"'
            ),
            span=10,
            height=12,
            transformations=join_tables("machine"),
            description="State = newest state_code of the last 15 minutes. The stop reason "
            "is current while the machine is stopped; otherwise it is the last stop's.",
        )
        .time_from("15m")
        .override_by_name(
            "state",
            [
                model.DynamicConfigValue("mappings", state_mappings()),
                model.DynamicConfigValue(
                    "custom.cellOptions",
                    common.TableColoredBackgroundCellOptions(
                        common.TableCellBackgroundDisplayMode.BASIC
                    ),
                ),
            ],
        )
    )
    timeline = state_timeline(
        "Machine states",
        InfluxQL(
            f'SELECT last("state_code") FROM {MACHINE_MEASUREMENTS} WHERE {_HALL_TYPE} '
            'GROUP BY time($__interval), "machine" fill(previous)'
        ).alias("$tag_machine"),
        span=14,
        height=12,
    )
    return [state, timeline]


def _shift() -> list[PanelBuilder]:
    efficiency = bar_gauge(
        "Efficiency this shift",
        "percentunit",
        InfluxQL(
            f'SELECT last("efficiency") FROM "kpi_shift" WHERE {_HALL_TYPE} GROUP BY "machine"'
        ).alias("$tag_machine"),
        thresholds=_EFFICIENCY,
        limits=(0, 1),
        span=8,
        height=10,
    )
    oee_hall = bar_gauge(
        "OEE per hall (planned-time weighted)",
        "percentunit",
        InfluxQL(
            'SELECT sum("w") / sum("planned_s") FROM (SELECT "oee" * "planned_s" AS "w", '
            f'"planned_s" FROM "kpi_shift" WHERE {_HALL_TYPE} GROUP BY "hall") '
            'WHERE $timeFilter GROUP BY "hall"'
        ).alias("$tag_hall"),
        thresholds=_OEE,
        limits=(0, 1),
        span=8,
        height=10,
    )
    oee_shift = timeseries(
        "OEE per hall and shift",
        "percentunit",
        InfluxQL(
            'SELECT sum("w") / sum("planned_s") FROM (SELECT "oee" * "planned_s" AS "w", '
            f'"planned_s" FROM "kpi_shift" WHERE {_HALL_TYPE} GROUP BY "hall") '
            'WHERE $timeFilter GROUP BY time(1h), "hall" fill(none)'
        ).alias("$tag_hall"),
        thresholds=_OEE,
        span=8,
        height=10,
        description="Each point is a shift (KPIs are stamped at the shift start).",
    )
    return [efficiency, oee_hall, oee_shift]


def _stops_and_alarms() -> list[PanelBuilder]:
    by_reason = table(
        "Stops by reason",
        InfluxQL(
            'SELECT "reason", "code" FROM "machine_event" '
            f"WHERE {where('hall', 'type', extra=_STOPS)}"
        ),
        span=8,
        height=10,
        transformations=[
            model.DataTransformerConfig(
                id_val="groupBy",
                options={
                    "fields": {
                        "reason": {"operation": "groupby"},
                        "code": {"operation": "aggregate", "aggregations": ["count"]},
                    }
                },
            ),
            model.DataTransformerConfig(
                id_val="sortBy", options={"sort": [{"field": "code (count)", "desc": True}]}
            ),
        ],
        description="Stop episodes begun in the range, counted per reason code.",
    )
    active = stat(
        "Active alarms",
        "short",
        InfluxQL(
            'SELECT count("score") - count("end_ms") AS "open" FROM "anomaly_alarm" '
            "WHERE $timeFilter"
        ),
        thresholds=steps("green", (1, "red")),
        span=4,
        height=10,
        description="Alarms begun in the range that have no end_ms yet.",
    )
    alarms = table(
        "Active alarms",
        InfluxQL(
            'SELECT "signal", "score", "z", "end_ms", "machines" FROM "anomaly_alarm" '
            'WHERE $timeFilter GROUP BY "machine", "kind", "type"'
        ),
        span=12,
        height=10,
        transformations=[
            model.DataTransformerConfig(id_val="merge", options={}),
            model.DataTransformerConfig(
                id_val="filterByValue",
                options={
                    "type": "include",
                    "match": "all",
                    "filters": [{"fieldName": "end_ms", "config": {"id": "isNull"}}],
                },
            ),
        ],
        description="Open alarm episodes: anomaly_alarm points without end_ms.",
    )
    return [by_reason, active, alarms]


def _climate() -> list[PanelBuilder]:
    return [
        timeseries(
            "Hall climate: relative humidity",
            "percent",
            InfluxQL(
                'SELECT mean("rh_pct") FROM "hall_env" WHERE "hall" =~ /^$hall$/ AND $timeFilter '
                'GROUP BY time($__interval), "hall" fill(null)'
            ).alias("$tag_hall"),
            thresholds=steps("red", (70, "yellow"), (80, "green"), (86, "yellow")),
            description="Cotton weaving wants 80-85 % RH at warp level (spec §1.1).",
        ),
        timeseries(
            "Hall climate: temperature",
            "celsius",
            InfluxQL(
                'SELECT mean("temp_c") FROM "hall_env" WHERE "hall" =~ /^$hall$/ AND $timeFilter '
                'GROUP BY time($__interval), "hall" fill(null)'
            ).alias("$tag_hall"),
        ),
    ]


def build() -> dash.Dashboard:
    """The factory overview dashboard builder."""
    board = (
        dashboard("Factory overview", UID, ["factory"], "now-8h")
        .with_variable(factory_variable())
        .with_variable(tag_variable("hall", 'SHOW TAG VALUES WITH KEY = "hall"'))
        .with_variable(
            tag_variable(
                "type",
                f'SHOW TAG VALUES FROM {MACHINE_MEASUREMENTS} WITH KEY = "type" '
                'WHERE "hall" =~ /^$hall$/',
                label="Machine class",
            )
        )
    )
    return add_rows(
        board,
        ("Machines", _machines()),
        ("This shift", _shift()),
        ("Stops and alarms", _stops_and_alarms()),
        ("Hall climate", _climate()),
    )
