"""Dyeing batch: one batch's curve against its programme, and every batch's resource use.

The batch is picked from the batch ids the machine's ``step`` events carry (so the
running batch is there too); its telemetry is the ``dye`` rows whose ``batch_id``
field matches. Programme steps are annotations (``machine_event`` of kind ``step``,
code = step type). Per-batch water L/kg, steam kg/kg, kWh/kg and right-first-time come
from ``kpi_batch`` (finished batches), coloured by the domain spec's benchmarks (§4).

Example
-------
>>> board = build().build()
>>> board.uid, [v.name for v in board.templating.list_val]
('mw-dyeing-batch', ['factory', 'machine', 'batch'])
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from dashboards.common import (
    Annotation,
    PanelBuilder,
    add_rows,
    dashboard,
    factory_variable,
    stat,
    steps,
    table,
    tag_variable,
    timeseries,
)
from dashboards.influx_query import InfluxQL

__all__ = ["UID", "build"]

UID = "mw-dyeing-batch"
_BATCH = '"machine" =~ /^$machine$/ AND "batch_id" = \'$batch\' AND $timeFilter'
#: Spec §4 benchmarks: water 30-60 good, 70-150 typical, >150 poor (L/kg, knit dyeing).
WATER = steps("green", (60, "yellow"), (150, "red"))
#: Steam < 2.5 good, 3-5 typical, > 6 poor (kg/kg).
STEAM = steps("green", (2.5, "yellow"), (6, "red"))
#: Thermal energy 2-4 good, 4-8 typical, > 8 poor (kWh/kg).
ENERGY = steps("green", (4, "yellow"), (8, "red"))
#: RFT ≥ 95 % good, 80-90 typical, < 75 poor.
RFT = steps("red", (0.75, "orange"), (0.80, "yellow"), (0.95, "green"))


def _curve(
    title: str, unit: str, *fields: str, thresholds: dash.ThresholdsConfig | None = None
) -> PanelBuilder:
    columns = ", ".join(f'mean("{f}") AS "{f}"' for f in fields)
    return timeseries(
        title,
        unit,
        InfluxQL(
            f'SELECT {columns} FROM "dye" WHERE {_BATCH} GROUP BY time($__interval) fill(null)'
        ),
        thresholds=thresholds,
    )


def _batch() -> list[PanelBuilder]:
    return [
        _curve("Liquor temperature against setpoint", "celsius", "liquor_temp_c", "temp_sp_c"),
        _curve("Programme step", "none", "step_no"),
        _curve("pH", "none", "ph"),
        _curve("Conductivity", "suffix: mS/cm", "conductivity_ms_cm"),
        _curve(
            "Pressure",
            "pressurebar",
            "pressure_bar",
            thresholds=steps("green", (1.7, "yellow"), (2.0, "red")),
        ),
        table(
            "Programme steps",
            InfluxQL(
                'SELECT "code" AS "step", "step_no" FROM "machine_event" '
                f"WHERE \"kind\" = 'step' AND {_BATCH}"
            ),
        ),
    ]


def _kpi(field: str, alias: str) -> InfluxQL:
    return InfluxQL(
        f'SELECT "{field}" AS "{alias}" FROM "kpi_batch" '
        'WHERE "machine" =~ /^$machine$/ AND $timeFilter GROUP BY "batch_id"'
    ).alias("$tag_batch_id")


def _resources() -> list[PanelBuilder]:
    per_kg = (
        ("Water per kg", "suffix: L/kg", "water_l_per_kg", WATER),
        ("Steam per kg", "suffix: kg/kg", "steam_kg_per_kg", STEAM),
        ("Energy per kg", "suffix: kWh/kg", "kwh_per_kg", ENERGY),
    )
    panels = [
        stat(
            title,
            unit,
            InfluxQL(
                f'SELECT last("{field}") FROM "kpi_batch" WHERE "machine" =~ /^$machine$/ '
                "AND \"batch_id\" = '$batch' AND $timeFilter"
            ),
            thresholds=th,
            description="Of the selected batch, once it has finished.",
        )
        for title, unit, field, th in per_kg
    ]
    panels.append(
        stat(
            "Right first time",
            "percentunit",
            InfluxQL(
                'SELECT mean("rft") AS "RFT" FROM "kpi_batch" '
                'WHERE "machine" =~ /^$machine$/ AND $timeFilter'
            ),
            thresholds=RFT,
            description="Share of the finished batches in the range without an addition.",
        )
    )
    panels.append(
        table(
            "Finished batches",
            InfluxQL(
                'SELECT "kg", "cycle_s", "standard_s", "water_l_per_kg", "steam_kg_per_kg", '
                '"kwh_per_kg", "rft", "adds", "ramp_rmse_c", "oee" FROM "kpi_batch" '
                'WHERE "machine" =~ /^$machine$/ AND $timeFilter GROUP BY "machine", "batch_id"'
            ),
            span=24,
        )
    )
    return panels


def annotations() -> list[Annotation]:
    """The selected batch's programme steps."""
    return [
        Annotation(
            "Programme steps",
            f'SELECT "code", "step_no" FROM "machine_event" WHERE "kind" = \'step\' AND {_BATCH}',
            "blue",
            text="code",
        )
    ]


def build() -> dash.Dashboard:
    """The dyeing batch dashboard builder."""
    board = (
        dashboard("Dyeing batch", UID, ["dyeing"], "now-24h")
        .with_variable(factory_variable())
        .with_variable(
            tag_variable(
                "machine", 'SHOW TAG VALUES FROM "dye" WITH KEY = "machine"', include_all=False
            )
        )
        .with_variable(
            tag_variable(
                "batch",
                'SELECT DISTINCT("batch_id") FROM "machine_event" '
                'WHERE "kind" = \'step\' AND "machine" =~ /^$machine$/ AND $timeFilter',
                include_all=False,
            )
        )
    )
    for annotation in annotations():
        board = board.annotation(annotation)  # type: ignore[arg-type]
    return add_rows(board, ("Batch", _batch()), ("Resources per kg", _resources()))
