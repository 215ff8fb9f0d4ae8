"""Pieces every millwatch dashboard shares: data sources, variables, panels, thresholds.

Data sources are referenced by uid. Factory dashboards use the template variable
``$factory`` (a data source variable over the per-factory InfluxDB data sources, named
``mw-factory-<id>``), so one dashboard serves every factory and a push can pin a copy to
one factory's folder. Platform health reads ``millwatch_internal`` (uid
:data:`INTERNAL_UID`), the cluster benchmark ``cluster_kpi`` (uid :data:`CLUSTER_UID`).

Every query is raw InfluxQL with Grafana's macros: ``$timeFilter`` becomes
``time >= …ms and time <= …ms``, ``$__interval`` the bucket width Grafana picks for the
panel's width and range. Tag filters are regexes (``"hall" =~ /^$hall$/``), so "All"
(:data:`ALL`, ``.*``) and multi-value selections work alike.

Example
-------
>>> var = tag_variable("hall", 'SHOW TAG VALUES WITH KEY = "hall"').build()
>>> var.name, var.include_all, var.all_value
('hall', True, '.*')
>>> where("hall", "type")
'"hall" =~ /^$hall$/ AND "type" =~ /^$type$/ AND $timeFilter'
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final, Protocol, Self

from grafana_foundation_sdk.builders import bargauge, statetimeline
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat as stat_panel
from grafana_foundation_sdk.builders import table as table_panel
from grafana_foundation_sdk.builders import timeseries as ts
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import TimeZoneUtc

from dashboards.influx_query import InfluxQL
from millwatch.contract import STATES

__all__ = [
    "ALL",
    "CLUSTER_DS",
    "CLUSTER_UID",
    "FACTORY_DS",
    "FACTORY_DS_PREFIX",
    "INTERNAL_DS",
    "INTERNAL_UID",
    "MACHINE_MEASUREMENTS",
    "STATE_COLORS",
    "Annotation",
    "PanelBuilder",
    "add_rows",
    "bar_gauge",
    "dashboard",
    "factory_variable",
    "join_tables",
    "stat",
    "state_mappings",
    "state_timeline",
    "steps",
    "table",
    "tag_variable",
    "targets",
    "timeseries",
    "to_dict",
    "where",
]

#: Data source names/uids of the factory databases start with this; the rest is the id.
FACTORY_DS_PREFIX: Final = "mw-factory-"
INTERNAL_UID: Final = "mw-internal"
CLUSTER_UID: Final = "mw-cluster"
FACTORY_DS: Final = model.DataSourceRef(type_val="influxdb", uid="${factory}")
INTERNAL_DS: Final = model.DataSourceRef(type_val="influxdb", uid=INTERNAL_UID)
CLUSTER_DS: Final = model.DataSourceRef(type_val="influxdb", uid=CLUSTER_UID)
#: The value "All" stands for in a regex filter.
ALL: Final = ".*"
#: Colour of each machine state (domain spec §2): green runs, red/orange lose time.
STATE_COLORS: Final = {
    "OFF_NOPLAN": "text",
    "RUN": "green",
    "STOP_PROCESS": "orange",
    "BREAKDOWN": "red",
    "SETUP": "blue",
    "WAIT": "yellow",
    "PLANNED_MAINT": "purple",
    "IDLE_READY": "transparent",
}
#: Raw machine measurements (hall climate sensors excluded): the machine lists.
MACHINE_MEASUREMENTS: Final = '"loom", "knit", "dye", "stenter"'


class PanelBuilder(Protocol):
    """What the SDK's panel builders have in common (the subset used here)."""

    def build(self) -> model.Panel: ...  # noqa: D102

    def with_target(self, target: Any) -> Self: ...  # noqa: D102


def where(*tags: str, extra: str = "") -> str:
    """WHERE clause body: a regex filter per tag variable, ``extra``, then ``$timeFilter``."""
    parts = [f'"{t}" =~ /^${t}$/' for t in tags]
    if extra:
        parts.append(extra)
    return " AND ".join([*parts, "$timeFilter"])


def targets(panel: PanelBuilder, *queries: InfluxQL) -> PanelBuilder:
    """Attach ``queries`` to ``panel`` with ref ids A, B, C…."""
    for i, query in enumerate(queries):
        panel = panel.with_target(query.ref_id(chr(ord("A") + i)))
    return panel


def steps(base: str, *levels: tuple[float, str]) -> dash.ThresholdsConfig:
    """Absolute thresholds: ``base`` colour below the first level, then each ``(value, colour)``.

    >>> [(s.value, s.color) for s in steps("green", (2.8, "yellow")).build().steps]
    [(None, 'green'), (2.8, 'yellow')]
    """
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(None, base), *(model.Threshold(v, c) for v, c in levels)])
    )


def state_mappings() -> list[model.ValueMapping]:
    """``state_code`` → state name and colour (codes from ``millwatch.contract.STATES``)."""
    options = {
        str(code): model.ValueMappingResult(text=name, color=STATE_COLORS[name], index=code)
        for name, code in STATES.items()
    }
    return [model.ValueMap(options)]


def dashboard(title: str, uid: str, tags: Sequence[str], time_from: str) -> dash.Dashboard:
    """A dashboard with the settings all of ours share (UTC, 1-min refresh, fixed uid)."""
    return (
        dash.Dashboard(title)
        .uid(uid)
        .tags(["millwatch", *tags])
        .editable()
        .timezone(TimeZoneUtc)
        .time(time_from, "now")
        .refresh("1m")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
    )


def factory_variable() -> dash.DatasourceVariable:
    """``$factory``: the InfluxDB data source of one factory database."""
    return (
        dash.DatasourceVariable("factory")
        .label("Factory")
        .type("influxdb")
        .regex(f"/^{FACTORY_DS_PREFIX}.*/")
    )


def tag_variable(
    name: str,
    query: str,
    *,
    label: str | None = None,
    datasource: model.DataSourceRef = FACTORY_DS,
    include_all: bool = True,
) -> dash.QueryVariable:
    """A variable listing one tag's values; with "All" as ``.*`` unless single-valued."""
    var = (
        dash.QueryVariable(name)
        .label(label or name.capitalize())
        .datasource(datasource)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )
    if include_all:
        var = var.multi(True).include_all(True).all_value(ALL)
    return var


def join_tables(field: str) -> list[model.DataTransformerConfig]:
    """Transformations that merge several table targets into one row per ``field``."""
    return [
        model.DataTransformerConfig(id_val="merge", options={}),
        model.DataTransformerConfig(
            id_val="sortBy", options={"sort": [{"field": field, "desc": False}]}
        ),
    ]


class _AnnotationModel:
    def __init__(self, doc: dict[str, object]) -> None:
        self.doc = doc

    def to_json(self) -> dict[str, object]:
        return self.doc


class Annotation(cogbuilder.Builder[_AnnotationModel]):
    """An annotation from an InfluxQL query (the SDK's annotation target is Grafana's own).

    ``end`` names the column holding the end time in epoch ms (a region), ``text`` and
    ``tags`` the columns shown on hover; Grafana's field mappings pick them out.
    """

    def __init__(
        self,
        name: str,
        query: str,
        colour: str,
        *,
        text: str,
        tags: Sequence[str] = (),
        end: str | None = None,
        datasource: model.DataSourceRef = FACTORY_DS,
    ) -> None:
        mappings: dict[str, object] = {"text": {"source": "field", "value": text}}
        if tags:
            mappings["tags"] = {"source": "field", "value": tags[0]}
        if end:
            mappings["timeEnd"] = {"source": "field", "value": end}
        target = InfluxQL(query).ref_id("Anno").table().build().to_json()
        self._doc: dict[str, object] = {
            "name": name,
            "datasource": datasource.to_json(),
            "enable": True,
            "iconColor": colour,
            "target": target,
            "mappings": mappings,
        }

    def build(self) -> _AnnotationModel:
        """Return the annotation (encoded as given)."""
        return _AnnotationModel(self._doc)


def _place(panel: Any, title: str, ds: model.DataSourceRef, span: int, height: int) -> Any:
    return panel.title(title).datasource(ds).span(span).height(height)


def timeseries(
    title: str,
    unit: str,
    *queries: InfluxQL,
    ds: model.DataSourceRef = FACTORY_DS,
    thresholds: dash.ThresholdsConfig | None = None,
    span: int = 12,
    height: int = 8,
    description: str = "",
) -> PanelBuilder:
    """A time series panel; ``thresholds`` are drawn as dashed lines over coloured areas."""
    panel = _place(ts.Panel(), title, ds, span, height).unit(unit).description(description)
    if thresholds is not None:
        panel = panel.thresholds(thresholds).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.DASHED_AND_AREA
            )
        )
    return targets(panel, *queries)


def stat(
    title: str,
    unit: str,
    *queries: InfluxQL,
    ds: model.DataSourceRef = FACTORY_DS,
    thresholds: dash.ThresholdsConfig | None = None,
    span: int = 6,
    height: int = 5,
    description: str = "",
) -> PanelBuilder:
    """A single-value panel showing each series' last value."""
    panel = _place(stat_panel.Panel(), title, ds, span, height).unit(unit).description(description)
    if thresholds is not None:
        panel = panel.thresholds(thresholds).color_mode(common.BigValueColorMode.BACKGROUND)
    return targets(panel, *queries)


def bar_gauge(
    title: str,
    unit: str,
    *queries: InfluxQL,
    ds: model.DataSourceRef = FACTORY_DS,
    thresholds: dash.ThresholdsConfig | None = None,
    span: int = 12,
    height: int = 8,
    limits: tuple[float, float] | None = None,
) -> PanelBuilder:
    """Horizontal bars, one per series (machine, hall…), coloured by ``thresholds``."""
    panel = (
        _place(bargauge.Panel(), title, ds, span, height)
        .unit(unit)
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
    )
    if limits is not None:
        panel = panel.min(limits[0]).max(limits[1])
    if thresholds is not None:
        panel = panel.thresholds(thresholds)
    return targets(panel, *queries)


def table(
    title: str,
    *queries: InfluxQL,
    ds: model.DataSourceRef = FACTORY_DS,
    span: int = 12,
    height: int = 8,
    transformations: Sequence[model.DataTransformerConfig] = (),
    description: str = "",
) -> PanelBuilder:
    """A table of the targets' rows (queries should use :meth:`InfluxQL.table`)."""
    panel = _place(table_panel.Panel(), title, ds, span, height).description(description)
    for t in transformations:
        panel = panel.with_transformation(t)
    return targets(panel, *(q.table() for q in queries))


def state_timeline(title: str, *queries: InfluxQL, span: int = 24, height: int = 8) -> PanelBuilder:
    """Machine states over time, one lane per series, coloured by :func:`state_mappings`."""
    panel = (
        _place(statetimeline.Panel(), title, FACTORY_DS, span, height)
        .mappings(state_mappings())
        .show_value(common.VisibilityMode.NEVER)
        .merge_values(True)
    )
    return targets(panel, *queries)


def add_rows(board: dash.Dashboard, *rows: tuple[str, Sequence[PanelBuilder]]) -> dash.Dashboard:
    """Append each ``(title, panels)`` as a row header followed by its panels."""
    for title, panels in rows:
        board = board.with_row(dash.Row(title))
        for panel in panels:
            board = board.with_panel(panel)  # type: ignore[arg-type]
    return board


def to_dict(board: dash.Dashboard) -> dict[str, Any]:
    """The dashboard as plain JSON data, panels numbered 1, 2… in layout order.

    Grafana needs a unique panel ``id`` per dashboard (links and "view panel" use it);
    the SDK leaves ids at 0, so they are assigned here, deterministically.
    """
    doc: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
    for number, panel in enumerate(doc.get("panels", []), start=1):
        panel["id"] = number
    return doc
