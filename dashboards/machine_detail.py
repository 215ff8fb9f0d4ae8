"""Machine detail, one dashboard per machine class: signals, states, stops, anomalies.

Each class (loom, knitting, dyeing, stenter) has its own signals, so each gets its own
dashboard with its units and the domain spec's ranges as thresholds (``E`` values of
the spec are engineering estimates, tune them per mill). Anomaly alarms and the
simulator's fault labels, where present, are annotations on every time series and
tables of their own.

Example
-------
>>> [c.uid for c in CLASSES]
['mw-machine-loom', 'mw-machine-knit', 'mw-machine-dye', 'mw-machine-stenter']
>>> build(CLASSES[0]).build().title
'Machine detail: loom'
"""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as dash

from dashboards.common import (
    Annotation,
    PanelBuilder,
    add_rows,
    dashboard,
    factory_variable,
    stat,
    state_timeline,
    steps,
    table,
    tag_variable,
    timeseries,
)
from dashboards.influx_query import InfluxQL

__all__ = ["CLASSES", "MachineClass", "Signal", "build"]

_MACHINE = '"machine" =~ /^$machine$/'
#: ISO 10816 zones for a medium machine on a rigid mount (spec §3: B ≤2.8, C ≤4.5 mm/s).
_VIBRATION = steps("green", (2.8, "yellow"), (4.5, "red"))


@dataclass(frozen=True)
class Signal:
    """One time series panel: fields of one unit, with thresholds from the spec."""

    title: str
    fields: tuple[str, ...]
    unit: str
    thresholds: dash.ThresholdsConfig | None = None


@dataclass(frozen=True)
class MachineClass:
    """A machine class: its raw measurement, machine types and signal panels."""

    name: str
    measurement: str
    signals: tuple[Signal, ...]

    @property
    def uid(self) -> str:
        """Stable dashboard uid."""
        return f"mw-machine-{self.measurement}"


LOOM = MachineClass(
    "loom",
    "loom",
    (
        Signal("Speed", ("speed_rpm",), "suffix: picks/min"),
        Signal("Warp tension", ("warp_tension_kn",), "suffix: kN"),
        Signal(
            "Vibration (ISO zones)", ("vib_rms_mm_s", "vib_peak_mm_s"), "velocitymms", _VIBRATION
        ),
        Signal(
            "Bearing and motor temperature",
            ("bearing_temp_c", "motor_temp_c"),
            "celsius",
            steps("green", (65, "yellow"), (75, "red")),  # ambient + 35 °C (spec §1.1, E)
        ),
        Signal(
            "Air supply at the loom",
            ("air_supply_bar",),
            "pressurebar",
            steps("red", (5.5, "green"), (7.0, "yellow")),  # 5.5-7 bar(g), spec §1.1 E
        ),
        Signal("Air flow", ("air_flow_nm3h",), "suffix: Nm³/h"),
        Signal("Weft arrival", ("weft_arrival_deg",), "suffix: °"),
        Signal("Motor power", ("motor_power_kw",), "kwatt"),
        Signal("Beam diameter", ("beam_diameter_mm",), "lengthmm", steps("red", (180, "green"))),
    ),
)
KNIT = MachineClass(
    "knitting",
    "knit",
    (
        Signal("Speed", ("speed_rpm",), "rotrpm"),
        Signal(
            "Yarn tension",
            ("yarn_tension_cn",),
            "suffix: cN",
            steps("yellow", (2, "green"), (8, "yellow"), (12, "red")),  # 2-8 cN, spec §1.2 E
        ),
        Signal("Yarn feed", ("yarn_feed_m_min",), "suffix: m/min"),
        Signal(
            "Cam temperature",
            ("cam_temp_c",),
            "celsius",
            steps("green", (50, "yellow"), (60, "red")),  # 30-50 °C, spec §1.2 E
        ),
        Signal("Vibration (ISO zones)", ("vib_rms_mm_s",), "velocitymms", _VIBRATION),
        Signal("Drive power", ("drive_power_kw",), "kwatt"),
    ),
)
DYE = MachineClass(
    "dyeing",
    "dye",
    (
        Signal(
            "Liquor temperature and setpoint",
            ("liquor_temp_c", "temp_sp_c"),
            "celsius",
            steps("green", (135, "yellow"), (140, "red")),  # design max 135-140 °C
        ),
        Signal(
            "Pressure",
            ("pressure_bar",),
            "pressurebar",
            steps("green", (1.7, "yellow"), (2.0, "red")),  # ~1.7 bar at 130-135 °C
        ),
        Signal("pH", ("ph",), "none"),
        Signal("Conductivity", ("conductivity_ms_cm",), "suffix: mS/cm"),
        Signal(
            "Nozzle pressure",
            ("nozzle_bar",),
            "pressurebar",
            steps("yellow", (0.3, "green"), (2.5, "red")),  # 0.3-2.5 bar, spec §1.3 E
        ),
        Signal("Flow", ("flow_m3h",), "suffix: m³/h"),
        Signal("Fabric cycle time", ("cycle_time_s",), "s"),
        Signal("Pump current", ("pump_current_a",), "amp"),
        Signal("Level", ("level_l",), "litre"),
    ),
)
STENTER = MachineClass(
    "stenter",
    "stenter",
    (
        Signal(
            "Zone temperatures",
            tuple(f"zone{n}_temp_c" for n in range(1, 13)),
            "celsius",
            steps("green", (210, "yellow"), (220, "red")),  # heat-set 160-220 °C
        ),
        Signal("Speed", ("speed_m_min",), "suffix: m/min"),
        Signal("Width set and actual", ("width_set_cm", "width_act_cm"), "lengthcm"),
        Signal(
            "Exhaust humidity",
            ("exhaust_humidity_kg_kg",),
            "suffix: kg/kg",
            steps("red", (0.07, "yellow"), (0.10, "green"), (0.15, "yellow"), (0.2, "red")),
        ),
        Signal(
            "Residual moisture",
            ("residual_moisture_pct",),
            "percent",
            steps("green", (8, "yellow"), (10, "red")),  # out 4-8 %, spec §1.4 E
        ),
        Signal("Gas", ("gas_nm3h",), "suffix: Nm³/h"),
        Signal("Burner and fans", ("burner_pct", "exhaust_fan_pct", "circ_fan_pct"), "percent"),
    ),
)
CLASSES = (LOOM, KNIT, DYE, STENTER)


def _signal_panel(mc: MachineClass, s: Signal) -> PanelBuilder:
    columns = ", ".join(f'mean("{f}") AS "{f}"' for f in s.fields)
    query = InfluxQL(
        f'SELECT {columns} FROM "{mc.measurement}" WHERE {_MACHINE} AND $timeFilter '
        "GROUP BY time($__interval) fill(null)"
    )
    return timeseries(s.title, s.unit, query, thresholds=s.thresholds, span=8)


def _overview(mc: MachineClass) -> list[PanelBuilder]:
    return [
        state_timeline(
            "State",
            InfluxQL(
                f'SELECT last("state_code") AS "state" FROM "{mc.measurement}" '
                f"WHERE {_MACHINE} AND $timeFilter GROUP BY time($__interval) fill(previous)"
            ),
            height=4,
        ),
        table(
            "Stops",
            InfluxQL(
                'SELECT "code", "reason", "feeder" FROM "machine_event" '
                f"WHERE {_MACHINE} AND \"kind\" = 'stop' AND $timeFilter"
            ),
            span=8,
        ),
        timeseries(
            "Anomaly score",
            "percentunit",
            InfluxQL(
                'SELECT max("score") AS "score" FROM "anomaly" '
                f"WHERE {_MACHINE} AND $timeFilter GROUP BY time($__interval) fill(null)"
            ),
            thresholds=steps("green", (0.9, "orange"), (0.99, "red")),
            span=8,
        ),
        stat(
            "OEE this shift",
            "percentunit",
            InfluxQL(
                f'SELECT last("oee") AS "OEE" FROM "kpi_shift" WHERE {_MACHINE} AND $timeFilter'
            ),
            thresholds=steps("red", (0.60, "orange"), (0.75, "yellow"), (0.85, "green")),
            span=8,
            height=8,
        ),
    ]


def _events() -> list[PanelBuilder]:
    return [
        table(
            "Anomaly alarms",
            InfluxQL(
                'SELECT "signal", "score", "z", "baseline", "end_ms" FROM "anomaly_alarm" '
                f'WHERE {_MACHINE} AND $timeFilter GROUP BY "kind"'
            ),
            description="An alarm without end_ms is still open.",
        ),
        table(
            "Fault labels (simulated ground truth)",
            InfluxQL(
                'SELECT "fault_id", "phase", "severity" FROM "fault_label" '
                f'WHERE {_MACHINE} AND $timeFilter GROUP BY "fault_type"'
            ),
            description="Only simulated machines have labels; real machines leave this empty.",
        ),
    ]


def annotations() -> list[Annotation]:
    """Alarms (spans until ``end_ms``) and fault label phases of ``$machine``."""
    return [
        Annotation(
            "Anomaly alarms",
            'SELECT "signal", "kind", "score", "end_ms" FROM "anomaly_alarm" '
            f"WHERE {_MACHINE} AND $timeFilter",
            "red",
            text="signal",
            tags=("kind",),
            end="end_ms",
        ),
        Annotation(
            "Fault labels",
            'SELECT "phase", "fault_type", "severity" FROM "fault_label" '
            f"WHERE {_MACHINE} AND $timeFilter",
            "purple",
            text="phase",
            tags=("fault_type",),
        ),
    ]


def build(mc: MachineClass) -> dash.Dashboard:
    """The detail dashboard of one machine class."""
    board = (
        dashboard(f"Machine detail: {mc.name}", mc.uid, ["machine", mc.name], "now-6h")
        .with_variable(factory_variable())
        .with_variable(
            tag_variable("hall", f'SHOW TAG VALUES FROM "{mc.measurement}" WITH KEY = "hall"')
        )
        .with_variable(
            tag_variable(
                "machine",
                f'SHOW TAG VALUES FROM "{mc.measurement}" WITH KEY = "machine" '
                'WHERE "hall" =~ /^$hall$/',
                include_all=False,
            )
        )
    )
    for annotation in annotations():
        board = board.annotation(annotation)  # type: ignore[arg-type]
    signals = [_signal_panel(mc, s) for s in mc.signals]
    return add_rows(board, ("Overview", _overview(mc)), ("Signals", signals), ("Alarms", _events()))
