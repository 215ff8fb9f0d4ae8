"""Shift KPIs of one machine type: the one call the analytics service makes.

:func:`shift_kpis` takes a minute panel (the PANEL CONVENTION: 60-s buckets, counters
as ``f`` = last, ``f:first``, ``f:max``; ``state_code`` = bucket mode), the machine
type's events and the shift windows, and returns a :class:`KpiTable` with one row per
(machine, window). State times come from events, exact to the ms; production from
counter increases per bucket (a bucket belongs to the window its start lies in);
the state before a machine's first event is the panel's first ``state_code``.

Columns (all types; NaN where undefined, e.g. no planned time):

============================  ======  ==============================================
column                        unit    formula
============================  ======  ==============================================
planned_s                     s       time in states other than OFF_NOPLAN,
                                      PLANNED_MAINT, IDLE_READY (up to ``now_ms``)
run_s                         s       time in RUN
availability                  1       run_s / planned_s
performance                   1       min(actual rate / target rate, 1) (per type)
quality                       1       1 (no quality data yet)
oee                           1       availability x performance x quality
stops                         n       stop events of code STOP_PROCESS started in window
============================  ======  ==============================================

Looms (``loom_*``), target = nominal rpm (picks/min):

============================  ======  ==============================================
picks                         n       picks_total increase
nominal_rpm                   1/min   given, else p95 of speed_rpm in RUN buckets
efficiency                    1       run_s / (run_s + STOP_PROCESS s)
efficiency_picks              1       picks / (nominal_rpm x (run_s + stop s) / 60)
stops_<c>, c in warp/weft/    n       STOP_PROCESS stops of class c
other
stops_per_1e5_picks[_<c>]     1/1e5   1e5 x stops / picks
mttr_s_<c>                    s       summed repair time / stops of class c
breakdowns, mtbf_s,           n, s,   BREAKDOWN stop events; run_s / breakdowns;
mttr_breakdown_s              s       repair time / breakdowns
performance                   1       min(picks / (run_s / 60) / nominal_rpm, 1)
============================  ======  ==============================================

Knitting (``knit_*``): ``revs``, ``kg`` (fabric_kg_total increase), ``nominal_rpm``,
``efficiency`` = revs / (nominal_rpm x planned_s / 60), ``kg_per_h`` = kg /
(planned_s / 3600), stops and MTTR per class yarn/needle/other, breakdowns/MTBF as
for looms, performance = min(revs / (run_s / 60) / nominal_rpm, 1).

Dyeing (``dye_*``): ``batches`` finished (ended) in the window, ``rft_pct`` (100 x
batches without ADD / batches), ``cycle_ratio`` = sum standard / sum actual cycle
time of those batches (standard: given, else the median cycle of the batches in the
events), ``water_l_per_kg``, ``steam_kg_per_kg``, ``kwh_per_kg`` = summed meter
increases over the batches' spans / summed batch kg, ``ramp_rmse_c`` / ``ramp_mae_c``
= tracking error of liquor_temp_c against temp_sp_c in the window's HEAT/COOL minutes;
performance = min(cycle_ratio, 1) (NaN without a finished batch).

Stenter: ``humidity_compliance_pct`` = 100 x RUN minutes with exhaust humidity in
[0.10, 0.15] kg/kg / RUN minutes with a value; ``nominal_speed`` (m/min, p95 of
speed_m_min in RUN buckets when not given); performance = min(mean speed in RUN
minutes / nominal, 1).

The target (nominal) speed defaults to the 95th percentile of the machine's running
speed over the panel: the speed it reaches when running well, robust to the odd spike.
Pass ``nominal`` for the asset registry's nominal speed.

Example
-------
>>> from analytics.events import EventTable
>>> from analytics.frame import Panel
>>> from analytics.shifts import ShiftWindows
>>> ts = np.arange(4) * 60_000
>>> panel = Panel(["k1"], ts, 60_000, {
...     "speed_rpm": np.array([[30.0, 30.0, 0.0, 30.0]]),
...     "revs_total": np.array([[30.0, 60.0, 60.0, 90.0]]),
...     "state_code": np.array([[1.0, 1.0, 2.0, 1.0]])})
>>> ev = EventTable.from_records([
...     {"machine": "k1", "ts": 0, "kind": "state", "code": "RUN"},
...     {"machine": "k1", "ts": 120_000, "kind": "state", "code": "STOP_PROCESS"},
...     {"machine": "k1", "ts": 120_000, "kind": "stop", "code": "STOP_PROCESS",
...      "reason": "YARN_IN"},
...     {"machine": "k1", "ts": 180_000, "kind": "state", "code": "RUN"}])
>>> windows = ShiftWindows(np.array([0]), np.array([240_000]), ["1970-01-01/A"])
>>> t = shift_kpis("knit_circular", panel, ev, windows)
>>> t["availability"].tolist(), t["stops_yarn"].tolist(), t["revs"].tolist()
([0.75], [1.0], [60.0])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analytics.counters import counter_delta, counter_increase
from analytics.events import EventTable
from analytics.frame import Panel
from analytics.intervals import (
    FAMILY_CLASSES,
    StopTable,
    family_of,
    machine_index,
    state_seconds_spans,
    state_seconds_windows,
    stop_table,
)
from analytics.kpi import dye, knit, loom, stenter
from analytics.kpi.oee import availability, oee, performance, planned_seconds, ratio, run_seconds
from analytics.shifts import ShiftWindows, window_of, window_sums
from millwatch.contract import STATES

__all__ = ["KpiTable", "dye_batch_kpis", "increase", "nominal_speed", "shift_kpis"]

RUN, STOP = STATES["RUN"], STATES["STOP_PROCESS"]
NOMINAL_QUANTILE = 0.95
SPEED_FIELD = {"loom": "speed_rpm", "knit": "speed_rpm", "stenter": "speed_m_min"}


@dataclass
class KpiTable:
    """KPI rows of one machine type: ``machine``, window bounds and label, KPI columns.

    Every array has one entry per row; ``columns`` maps a KPI name to its values
    (float, NaN = undefined). See the module docstring for names and units.
    """

    machine_type: str
    machine: np.ndarray
    start_ms: np.ndarray
    end_ms: np.ndarray
    label: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.machine)

    def __getitem__(self, name: str) -> np.ndarray:
        """The column ``name``."""
        return self.columns[name]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per row, NaN KPIs left out (InfluxDB stores no NaN).

        Keys: ``machine``, ``machine_type``, ``window`` (label), ``start_ms``,
        ``end_ms`` and each defined KPI as a float.
        """
        names = list(self.columns)
        matrix = np.column_stack([self.columns[n] for n in names]) if names else None
        out = []
        for i in range(len(self)):
            row: dict[str, Any] = {
                "machine": str(self.machine[i]),
                "machine_type": self.machine_type,
                "window": str(self.label[i]),
                "start_ms": int(self.start_ms[i]),
                "end_ms": int(self.end_ms[i]),
            }
            if matrix is not None:
                values = matrix[i].tolist()
                row.update((n, v) for n, v in zip(names, values, strict=True) if not math.isnan(v))
            out.append(row)
        return out


def increase(panel: Panel, name: str) -> np.ndarray:
    """Per-bucket increase (M, T) of counter ``name`` in ``panel``.

    Uses ``name:first``/``name:max`` with ``name`` (= last) when the panel has them
    (:func:`analytics.counters.counter_increase`), else differences ``name`` itself.
    All NaN when the panel lacks the counter (window sums of it are then NaN too).
    """
    if name not in panel.values:
        return np.full((len(panel.machines), len(panel.ts_ms)), np.nan)
    if f"{name}:first" in panel.values and f"{name}:max" in panel.values:
        return counter_increase(panel[f"{name}:first"], panel[f"{name}:max"], panel[name])
    return counter_delta(panel[name])


def nominal_speed(panel: Panel, name: str, nominal: float | np.ndarray | None = None) -> np.ndarray:
    """Target speed per machine (M,): ``nominal`` when given, else a running-speed p95.

    The default is the 95th percentile (linear interpolation) of ``panel[name]`` over
    the buckets whose ``state_code`` is RUN (when the panel has it) and speed > 0; NaN
    for a machine that never ran.

    >>> p = Panel(["a"], np.arange(3), 1, {"speed_rpm": np.array([[700.0, 800.0, 0.0]]),
    ...                                    "state_code": np.array([[1.0, 1.0, 2.0]])})
    >>> nominal_speed(p, "speed_rpm").tolist()
    [795.0]
    """
    m = len(panel.machines)
    if nominal is not None:
        return np.broadcast_to(np.asarray(nominal, dtype=np.float64), (m,)).copy()
    speed = panel[name]
    with np.errstate(invalid="ignore"):
        use = speed > 0
    if "state_code" in panel.values:
        use &= panel["state_code"] == RUN
    ordered = np.sort(np.where(use, speed, np.nan), axis=1)  # NaN sort last
    n = use.sum(axis=1)
    pos = NOMINAL_QUANTILE * np.maximum(n - 1, 0)
    lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
    rows = np.arange(m)
    value = ordered[rows, lo] + (pos - lo) * (ordered[rows, hi] - ordered[rows, lo])
    return np.where(n > 0, value, np.nan)


@dataclass
class _Context:
    """What every type's KPIs share: the grid, windows, state seconds and stops."""

    panel: Panel
    events: EventTable
    starts: np.ndarray
    ends: np.ndarray
    now_ms: int
    state_s: np.ndarray  # (M, W, 8)
    stops: StopTable

    def sums(self, values: np.ndarray) -> np.ndarray:
        return window_sums(values, self.panel.ts_ms, self.starts, self.ends)

    def counter(self, name: str) -> np.ndarray:
        """Window sums (M, W) of a counter's increase; NaN when the panel lacks it."""
        if name not in self.panel.values:
            return np.full((len(self.panel.machines), len(self.starts)), np.nan)
        return self.sums(increase(self.panel, name))

    def stop_cells(self, code: str) -> tuple[np.ndarray, np.ndarray]:
        """Count and repair seconds (M, W) of the stops of state ``code``, any class."""
        table = self.stops.take(self.stops.code == code)
        table.cls = np.full(len(table), "all", dtype=object)
        n, repair = loom.stop_counts(table, self.panel.machines, self.starts, self.ends, ("all",))
        return n[..., 0], repair[..., 0]


def _common(ctx: _Context) -> dict[str, np.ndarray]:
    planned, run = planned_seconds(ctx.state_s), run_seconds(ctx.state_s)
    count, _ = ctx.stop_cells("STOP_PROCESS")
    return {
        "planned_s": planned,
        "run_s": run,
        "availability": availability(run, planned),
        "stops": count,
    }


def _stops_by_class(ctx: _Context, family: str) -> dict[str, np.ndarray]:
    classes = FAMILY_CLASSES[family]
    stops = ctx.stops.take(ctx.stops.code == "STOP_PROCESS")
    count, repair = loom.stop_counts(stops, ctx.panel.machines, ctx.starts, ctx.ends, classes)
    out: dict[str, np.ndarray] = {}
    for k, c in enumerate(classes):
        out[f"stops_{c}"] = count[..., k]
        out[f"mttr_s_{c}"] = loom.mttr_s(repair[..., k], count[..., k])
    n_bd, rep_bd = ctx.stop_cells("BREAKDOWN")
    out["breakdowns"] = n_bd
    out["mtbf_s"] = loom.mtbf_s(run_seconds(ctx.state_s), n_bd)
    out["mttr_breakdown_s"] = loom.mttr_s(rep_bd, n_bd)
    return out


def _rate_performance(amount: np.ndarray, run_s: np.ndarray, target: np.ndarray) -> np.ndarray:
    """min(amount per run minute / target per minute, 1)."""
    return performance(ratio(amount, run_s / 60.0), target[:, None])


def _loom(ctx: _Context, nominal: np.ndarray) -> dict[str, np.ndarray]:
    run, stop = run_seconds(ctx.state_s), ctx.state_s[..., STOP]
    picks = ctx.counter("picks_total")
    out = {"picks": picks, "nominal_rpm": np.broadcast_to(nominal[:, None], picks.shape).copy()}
    out["efficiency"] = loom.efficiency(run, stop)
    out["efficiency_picks"] = loom.efficiency_picks(picks, nominal[:, None], (run + stop) / 60)
    out.update(_stops_by_class(ctx, "loom"))
    total = sum(out[f"stops_{c}"] for c in FAMILY_CLASSES["loom"])
    out["stops_per_1e5_picks"] = loom.stops_per_1e5(total, picks)
    for c in FAMILY_CLASSES["loom"]:
        out[f"stops_per_1e5_picks_{c}"] = loom.stops_per_1e5(out[f"stops_{c}"], picks)
    out["performance"] = _rate_performance(picks, run, nominal)
    return out


def _knit(ctx: _Context, nominal: np.ndarray) -> dict[str, np.ndarray]:
    run, planned = run_seconds(ctx.state_s), planned_seconds(ctx.state_s)
    revs = ctx.counter("revs_total")
    kg = ctx.counter("fabric_kg_total")
    out = {"revs": revs, "kg": kg}
    out["nominal_rpm"] = np.broadcast_to(nominal[:, None], revs.shape).copy()
    out["efficiency"] = knit.efficiency(revs, nominal[:, None], planned / 60)
    out["kg_per_h"] = knit.kg_per_h(kg, planned)
    out.update(_stops_by_class(ctx, "knit"))
    out["performance"] = _rate_performance(revs, run, nominal)
    return out


def _stenter(ctx: _Context, nominal: np.ndarray) -> dict[str, np.ndarray]:
    running = ctx.panel["state_code"] == RUN
    humidity = ctx.panel["exhaust_humidity_kg_kg"]
    counted = running & ~np.isnan(humidity)
    inside = counted & stenter.humidity_in_band(humidity)
    speed = ctx.panel["speed_m_min"]
    moving = running & ~np.isnan(speed)
    mean_speed = ratio(ctx.sums(np.where(moving, speed, 0.0)), ctx.sums(moving))
    return {
        "humidity_compliance_pct": 100.0 * ratio(ctx.sums(inside), ctx.sums(counted)),
        "nominal_speed": np.broadcast_to(nominal[:, None], mean_speed.shape).copy(),
        "performance": performance(mean_speed, nominal[:, None]),
    }


def _batch_values(
    panel: Panel, batches: dye.Batches, rows: np.ndarray, mask: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-batch kg, meter increases and ramp error sums over each batch's span.

    Meter increases are NaN for a batch the panel does not cover from start to end
    (a part of the batch's water would be missing from its L/kg).
    """
    ts, lo, hi = panel.ts_ms, batches.start_ms, batches.end_ms
    end_of_panel = ts[-1] + panel.step_ms if len(ts) else 0
    with np.errstate(invalid="ignore"):
        covered = (lo >= ts[0]) & (hi <= end_of_panel) if len(ts) else np.zeros(len(lo), bool)
    kg_field = panel["batch_kg"]
    kg_sum = dye.span_sums(kg_field, ts, rows, lo, hi)
    kg_n = dye.span_sums(~np.isnan(kg_field), ts, rows, lo, hi)
    err = panel["liquor_temp_c"] - panel["temp_sp_c"]
    use = mask & ~np.isnan(err)
    out = {"kg": ratio(kg_sum, kg_n)}
    meters = (("water_l", "water_l_total"), ("steam_kg", "steam_kg_total"))
    for name, meter in (*meters, ("kwh", "energy_kwh_total")):
        total = dye.span_sums(increase(panel, meter), ts, rows, lo, hi)
        out[name] = np.where(covered, total, np.nan) if meter in panel.values else np.nan + total
    out["err2"] = dye.span_sums(np.where(use, err * err, 0.0), ts, rows, lo, hi)
    out["err_n"] = dye.span_sums(use, ts, rows, lo, hi)
    return out


def _ramp_mask(panel: Panel, events: EventTable) -> np.ndarray:
    """HEAT/COOL minutes: the step running at each bucket's midpoint."""
    return dye.step_mask(events, panel.machines, panel.ts_ms + panel.step_ms // 2)


def _dye(ctx: _Context, standard: Any) -> dict[str, np.ndarray]:
    panel = ctx.panel
    batches = dye.batch_table(ctx.events)
    rows = machine_index(batches.machine, panel.machines)
    batches = _take_batches(batches, rows >= 0)
    rows = rows[rows >= 0]
    std, cycle = dye.standard_cycle_s(batches, standard), batches.cycle_s
    mask = _ramp_mask(panel, ctx.events)
    values = _batch_values(panel, batches, rows, mask)
    end = np.where(np.isnan(batches.end_ms), -1, batches.end_ms).astype(np.int64)
    w = window_of(end, ctx.starts, ctx.ends)
    done = (w >= 0) & ~np.isnan(cycle)
    shape = (len(panel.machines), len(ctx.starts))
    flat = np.ravel_multi_index((rows[done], w[done]), shape)

    def cell(x: np.ndarray) -> np.ndarray:
        return np.bincount(flat, np.nan_to_num(x[done]), minlength=shape[0] * shape[1]).reshape(
            shape
        )

    timed = ~np.isnan(std)
    has_kg = ~np.isnan(values["kg"])
    n = cell(np.ones(len(batches)))
    out = {"batches": n, "rft_pct": 100.0 * ratio(cell(batches.rft.astype(float)), n)}
    out["cycle_ratio"] = dye.cycle_ratio(cell(np.where(timed, std, 0)), cell(cycle * timed))
    for name in ("water_l", "steam_kg", "kwh"):
        valid = has_kg & ~np.isnan(values[name])
        kg = cell(np.where(valid, values["kg"], 0.0))
        out[f"{name}_per_kg"] = dye.per_kg(cell(np.where(valid, values[name], 0.0)), kg)
    rms, mae = _window_ramp(ctx, mask)
    out["ramp_rmse_c"], out["ramp_mae_c"] = rms, mae
    out["performance"] = np.minimum(out["cycle_ratio"], 1.0)
    return out


def _window_ramp(ctx: _Context, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    err = ctx.panel["liquor_temp_c"] - ctx.panel["temp_sp_c"]
    use = mask & ~np.isnan(err)
    e = np.where(use, err, 0.0)
    n = ctx.sums(use)
    return np.sqrt(ratio(ctx.sums(e * e), n)), ratio(ctx.sums(np.abs(e)), n)


def _take_batches(b: dye.Batches, index: np.ndarray) -> dye.Batches:
    return dye.Batches(
        b.machine[index],
        b.batch_id[index],
        b.start_ms[index],
        b.end_ms[index],
        b.steps[index],
        b.adds[index],
    )


def _now(panel: Panel, now_ms: int | None) -> int:
    if now_ms is not None:
        return int(now_ms)
    return int(panel.ts_ms[-1]) + panel.step_ms if len(panel.ts_ms) else 0


def _initial(panel: Panel) -> np.ndarray | None:
    return panel["state_code"][:, 0] if len(panel.ts_ms) else None


def shift_kpis(
    machine_type: str,
    panel: Panel,
    events: EventTable,
    windows: ShiftWindows,
    *,
    nominal: float | np.ndarray | None = None,
    standard_s: float | np.ndarray | Mapping[str, float] | None = None,
    now_ms: int | None = None,
) -> KpiTable:
    """KPIs per machine and shift window for machines of one type.

    Parameters
    ----------
    machine_type
        Contract machine type (``loom_airjet``, ``knit_circular``, ``dye_jet``, ...).
    panel
        Minute panel of those machines (PANEL CONVENTION).
    events
        Their events (state, stop, step), reaching back to before the first window
        for dyeing batches to have a known start.
    windows
        Shift (or day) windows, sorted, not overlapping.
    nominal
        Target speed per machine (M,) or for all; default: p95 of running speed.
    standard_s
        Dyeing standard cycle time(s), see :func:`analytics.kpi.dye.standard_cycle_s`.
    now_ms
        End of the data (default: end of the panel's last bucket); time after it is
        neither planned nor run.

    Returns
    -------
    KpiTable
        M x W rows, machine-major.
    """
    m, w = len(panel.machines), len(windows)
    now = _now(panel, now_ms)
    starts = np.asarray(windows.start_ms, dtype=np.int64)
    ends = np.asarray(windows.end_ms, dtype=np.int64)
    initial_ms = int(panel.ts_ms[0]) if len(panel.ts_ms) else None
    state_s = state_seconds_windows(
        events,
        panel.machines,
        starts,
        ends,
        now_ms=now,
        initial=_initial(panel),
        initial_ms=initial_ms,
    )
    stops = stop_table(events, machine_type, now_ms=now)
    ctx = _Context(panel, events, starts, ends, now, state_s, stops)
    columns = _common(ctx)
    family = family_of(machine_type)
    if family == "dye":
        columns.update(_dye(ctx, standard_s))
    elif family in SPEED_FIELD:
        speed = nominal_speed(panel, SPEED_FIELD[family], nominal)
        columns.update({"loom": _loom, "knit": _knit, "stenter": _stenter}[family](ctx, speed))
    else:
        columns["performance"] = np.full((m, w), np.nan)
    columns["quality"] = np.ones((m, w))
    columns["oee"] = oee(columns["availability"], columns["performance"], columns["quality"])
    return KpiTable(
        machine_type,
        np.repeat(np.array(panel.machines, dtype=str), w),
        np.tile(starts, m),
        np.tile(ends, m),
        np.tile(np.array(windows.labels, dtype=str), m),
        {k: np.asarray(v, dtype=np.float64).reshape(m * w) for k, v in columns.items()},
    )


def dye_batch_kpis(
    panel: Panel,
    events: EventTable,
    *,
    standard_s: float | np.ndarray | Mapping[str, float] | None = None,
    now_ms: int | None = None,
    machine_type: str = "dye_jet",
) -> KpiTable:
    """OEE and utilities per dyeing batch with a known start and end.

    Per batch: ``availability`` = run / planned time within the batch,
    ``performance`` = min(standard / actual cycle time, 1), ``quality`` = 1,
    ``oee`` = A x P x Q; ``cycle_s``, ``standard_s``, ``rft`` (1/0), ``adds``, ``kg``
    (mean batch_kg), ``water_l_per_kg``, ``steam_kg_per_kg``, ``kwh_per_kg``,
    ``ramp_rmse_c``. Rows are labelled with the batch id.
    """
    batches = dye.batch_table(events)
    rows = machine_index(batches.machine, panel.machines)
    keep = (rows >= 0) & ~np.isnan(batches.cycle_s)
    batches, rows = _take_batches(batches, keep), rows[keep]
    std = dye.standard_cycle_s(batches, standard_s)
    values = _batch_values(panel, batches, rows, _ramp_mask(panel, events))
    start = batches.start_ms.astype(np.int64)
    end = batches.end_ms.astype(np.int64)
    initial_ms = int(panel.ts_ms[0]) if len(panel.ts_ms) else None
    state_s = state_seconds_spans(
        events,
        panel.machines,
        rows,
        start,
        end,
        now_ms=_now(panel, now_ms),
        initial=_initial(panel),
        initial_ms=initial_ms,
    )
    a = availability(run_seconds(state_s), planned_seconds(state_s))
    p = performance(std, batches.cycle_s)
    cols = {
        "cycle_s": batches.cycle_s,
        "standard_s": std,
        "rft": batches.rft.astype(np.float64),
        "adds": batches.adds.astype(np.float64),
        "kg": values["kg"],
        "water_l_per_kg": dye.per_kg(values["water_l"], values["kg"]),
        "steam_kg_per_kg": dye.per_kg(values["steam_kg"], values["kg"]),
        "kwh_per_kg": dye.per_kg(values["kwh"], values["kg"]),
        "ramp_rmse_c": np.sqrt(ratio(values["err2"], values["err_n"])),
        "availability": a,
        "performance": p,
        "quality": np.ones(len(batches)),
        "oee": oee(a, p),
    }
    return KpiTable(machine_type, batches.machine, start, end, batches.batch_id, cols)
