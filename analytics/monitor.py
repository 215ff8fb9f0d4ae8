"""The anomaly monitor: every detector of ``analytics.detectors`` composed per machine type.

What the analytics service and ``millwatch eval`` run. Per machine type the panel's
60-s buckets become *signals* (:func:`type_signals`), chosen generically from the fields
the panel holds, not from the fault catalogue:

- every analog field ``f``: its bucket mean ``f`` and its within-bucket fluctuation
  ``f:sd`` (a cavitating pump's flow, a stuck sensor's sd of 0);
- a measured value against its setpoint (``liquor_temp_c`` vs ``temp_sp_c``,
  ``width_act_cm`` vs ``width_set_cm``): the tracking error ``f:err``;
- every counter ``c_total``: its increase per running hour over a trailing window
  (``c_total:rate``; stop counters become stops per hour), and energy per unit of the
  type's first production counter, one that grows whenever the machine runs
  (``energy_kwh_total:per:picks_total``);
- the share of the trailing window spent in ``STOP_PROCESS`` (``state:stop_share``) and
  the stops begun per running hour (``state:stops_per_h``).
- with the type's events (optional): per stop reason and alarm code seen in training,
  how surprising the trailing window's count is for the machine's training rate
  (``stop:LINT_CLEAN:surprise``, :mod:`analytics.event_signals`): a machine stopping
  ten times as often for one reason, or raising its own alarm again and again.
- with step events (optional): each tracking error judged within the programme step
  the machine is in (``liquor_temp_c:err@step``, :mod:`analytics.step_signals`): a
  ramp lagging its setpoint more than the class's ramps of that step do;
- every member of a numbered field family (``zone1_temp_c`` ... ``zone8_temp_c``,
  :func:`sibling_groups`) against the median of its siblings, in units of their spread
  (``zone3_temp_c:sib``): one zone going cold while its neighbours hold stands out in
  any state, while a recipe, a start or a stop moves the family together. Scored in
  every state, not only while running.

Context conditions the baselines, all learned from the training span without labels:

- analog signals count only while the machine runs steadily (``state_code`` RUN now,
  before, and over most of the last minutes; types without a state always) and outside
  *transition* buckets, where a fluctuation that normally only reports starts and stops
  (a loom's speed sd; found by its heavy training tail) jumps; for a type with a
  drive only the drive's own fluctuation marks a transition (``drive_steady``), and the
  other fluctuations are judged against their own spread in the drive's steady buckets
  (``steady_fluctuations``: a pump that starts cavitating at a steady speed); a
  bucket holding a programme step event (fill, heat, dose) is a transition too
  (``step_transitions``);
- a *drive* (:func:`fit_drive`: the level most others follow, a jet's pump speed) turns
  its followers into residuals from per-machine lines (``nozzle_bar:vs:pump_speed_pct``;
  a tightly tied follower gets a quadratic curve, :func:`fit_curve`: a nozzle's
  pressure grows with the square of its pump's speed);
  a loosely tied follower's residual counts only while the drive stays within the span
  training saw (a recipe never run before is no fault), a tightly tied one's always;
- settings (fields frozen most of the time: a batch weight, an overfeed), integrators (a
  roll's length) and signals too heavy-tailed for a robust z are not monitored;
- a machine's baseline spread is floored at a share of its class's median spread
  (``peer_scale_floor``): one recipe all through training is no norm for later ones;
- each signal's deviation is scaled down when it reached more than ``calib_ref`` sds in
  training on the median machine (a daily cycle, a recipe's steps), so every signal
  alarms about equally rarely on normal data.

Detectors (the ``analytics.detectors`` library, composed here):
:class:`~analytics.detectors.robust.RobustZ` per machine and signal, fitted through
:class:`~analytics.detectors.filters.ThresholdFilter` (trimmed refits: a fault inside the
training span does not widen the baseline); a second protected RobustZ on causal
trailing medians/means of z over ``windows`` (minutes for steps, an hour for drifts);
:class:`~analytics.detectors.hall.HallDetector` on a hall's machines together
(correlated faults, over planned production); direct instrument evidence (a field
missing or frozen where training never saw it, a fluctuation jumping alone, a counter
going backwards: ``analytics.detectors.instrument.counter_resets``). Scores are made
by the one ``to_unit_score`` mapping.

Alarms are episodes (``analytics.detectors.alarms.episodes``) of a machine's score above
``threshold``, merged per machine over all signals (a field that starts deviating under
an open episode opens its own alarm), each naming the top signal, its z and baseline,
and a kind: ``process``, ``hall`` or ``instrument:<stuck|drift|spike|dropout|
counter_reset>`` from the signal's own behaviour during the episode.

Example
-------
>>> import numpy as np
>>> from analytics.frame import Panel
>>> rng = np.random.default_rng(0)
>>> ts = np.arange(600, dtype=np.int64) * 60_000
>>> x = rng.normal(20.0, 0.2, (4, 600))
>>> x[2, 450:] += 3.0                 # machine 2 warms up by 15 sds: alarmed a minute on
>>> panel = Panel(["a", "b", "c", "d"], ts, 60_000, {"temp_c": x})
>>> train = Panel(panel.machines, ts[:300], 60_000, {"temp_c": x[:, :300]})
>>> mon = Monitor().fit({"hall_env": train})
>>> scores = mon.score({"hall_env": panel})
>>> [(a.machine, a.signal, a.start_ms // 60_000) for a in mon.alarms(scores)]
[('c', 'temp_c', 451)]
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from analytics.counters import counter_increase
from analytics.detectors.alarms import Alarm, episodes
from analytics.detectors.base import to_unit_score
from analytics.detectors.filters import ThresholdFilter
from analytics.detectors.hall import HallDetector
from analytics.detectors.instrument import counter_resets
from analytics.detectors.robust import RobustZ
from analytics.drive import Drive, Signals, fit_drive, masked, with_drive
from analytics.event_signals import (
    event_baseline,
    event_counts,
    event_keys,
    event_marks,
    event_surprise,
)
from analytics.events import EventTable
from analytics.frame import Panel
from analytics.step_signals import (
    StepNorm,
    fit_step_norm,
    step_code_names,
    step_codes,
    step_standardised,
)

__all__ = [
    "MachineScores",
    "Monitor",
    "MonitorAlarm",
    "Signals",
    "sibling_groups",
    "type_signals",
]

RUN = 1
STOP_PROCESS = 2
#: States of a machine meant to produce: RUN, STOP_PROCESS, BREAKDOWN, WAIT.
PRODUCING = (1, 2, 3, 5)
_SETPOINT = re.compile(r"^(?P<q>[a-z]+)_(?:sp|set)_(?P<u>[a-z0-9]+)$")
_SUFFIXES = (":sd", ":first", ":max")
#: Buckets over which a spiking sensor's lone jumps are counted.
SPIKE_WINDOW = 10


@dataclass(frozen=True)
class MonitorAlarm(Alarm):
    """An :class:`~analytics.detectors.alarms.Alarm` with what the service publishes.

    ``end_ms`` is None while the episode is still open at the end of the scored data;
    ``kind`` is ``process``, ``hall`` or ``instrument:<stuck|drift|spike|dropout|
    counter_reset>``; ``machines`` lists every machine of a hall alarm.
    """

    machine_type: str = ""
    detector: str = ""
    kind: str = "process"
    machines: tuple[str, ...] = ()


@dataclass
class MachineScores:
    """Scores of one machine type, causal: bucket ``t`` uses data up to ``t`` only.

    ``score`` (M, T) in [0, 1]; ``signal`` (M, T) index into ``signals`` of the top
    contributor; ``z`` (M, T) its signed robust deviation (trailing mean, in sds);
    ``hall_score`` (T,) per hall in ``halls``; ``aux`` per-bucket evidence the alarm
    classifier reads (missing samples, counter resets, stuck sds); ``judged`` (M, T) is
    False in transition buckets, whose analog signals were blanked (no evidence).
    """

    machine_type: str
    machines: list[str]
    ts_ms: np.ndarray
    score: np.ndarray
    signal: np.ndarray
    z: np.ndarray
    signals: list[str]
    baseline: np.ndarray
    hall_score: dict[str, np.ndarray] = field(default_factory=dict)
    hall_machines: dict[str, np.ndarray] = field(default_factory=dict)
    hall_signal: dict[str, np.ndarray] = field(default_factory=dict)
    kinds: np.ndarray | None = None
    n_fields: np.ndarray | None = None
    field_score: dict[str, np.ndarray] = field(default_factory=dict)
    judged: np.ndarray | None = None


# -- signals ---------------------------------------------------------------------------------


#: Panel fields that are not measurements: the state, a programme step, the service's
#: per-bucket row count.
NOT_SIGNALS = frozenset({"state_code", "step_no", "rows"})


def _analog(panel: Panel) -> list[str]:
    return [
        f
        for f in panel.fields
        if ":" not in f and f not in NOT_SIGNALS and not f.endswith("_total")
    ]


def setpoint_pairs(fields: Sequence[str]) -> list[tuple[str, str]]:
    """(actual, setpoint) pairs found by name: ``<q>_sp_<unit>`` / ``<q>_set_<unit>``.

    >>> setpoint_pairs(["liquor_temp_c", "temp_sp_c", "width_set_cm", "width_act_cm"])
    [('liquor_temp_c', 'temp_sp_c'), ('width_act_cm', 'width_set_cm')]
    """
    pairs = []
    for sp in fields:
        m = _SETPOINT.match(sp)
        if not m:
            continue
        cands = [
            f
            for f in fields
            if f != sp and f.endswith(f"_{m['u']}") and m["q"] in f and not _SETPOINT.match(f)
        ]
        cands.sort(key=lambda f: ("act" not in f, len(f)))
        if cands:
            pairs.append((cands[0], sp))
    return pairs


def _trailing_sum(a: np.ndarray, w: int) -> np.ndarray:
    c = np.cumsum(a, axis=-1)
    out = c.copy()
    out[..., w:] -= c[..., :-w]
    return out


def trailing_mean(x: np.ndarray, window: int, min_count: int = 1) -> np.ndarray:
    """Causal mean of the last ``window`` samples along axis -1, NaN-aware.

    >>> trailing_mean(np.array([1.0, np.nan, 3.0, 5.0]), 2).tolist()
    [1.0, 1.0, 3.0, 4.0]
    """
    valid = np.isfinite(x)
    n = _trailing_sum(valid.astype(np.float64), window)
    s = _trailing_sum(np.where(valid, x, 0.0), window)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= min_count, s / n, np.nan)


def trailing_median(x: np.ndarray, window: int) -> np.ndarray:
    """Causal median of the last ``window`` samples along axis 1 of (M, T), NaN-aware.

    Needs more than half the window valid. A median needs most of the window to
    deviate, so one bucket disturbed by a stop inside it cannot raise it.

    >>> trailing_median(np.array([[1.0, 9.0, 2.0, 3.0]]), 3).tolist()
    [[nan, 5.0, 2.0, 3.0]]
    """
    pad = np.full((x.shape[0], window - 1), np.nan)
    view = np.lib.stride_tricks.sliding_window_view(np.hstack([pad, x]), window, axis=1)
    enough = _trailing_sum(np.isfinite(x).astype(np.int64), window) > window // 2
    # Sorting puts NaN last, so the median of the n values present sits at the middle of
    # the first n: what np.nanmedian computes, without its per-window masked arrays.
    ordered = np.sort(view, axis=2)
    n = _trailing_sum((~np.isnan(x)).astype(np.int64), window)[..., None]
    lower = np.take_along_axis(ordered, np.maximum(n - 1, 0) // 2, axis=2)[..., 0]
    upper = np.take_along_axis(ordered, n // 2 - (n == 0), axis=2)[..., 0]
    return np.where(enough, (lower + upper) / 2, np.nan)


#: Largest window smoothed by a median; longer ones average z clipped to +-CLIP_Z.
MEDIAN_MAX = 15
CLIP_Z = 6.0


def smooth_z(z: np.ndarray, window: int) -> np.ndarray:
    """Causal robust smoothing of z (M, T) over ``window`` buckets.

    A trailing median for short windows, else a trailing mean of z clipped to
    +-``CLIP_Z`` (a single wild bucket moves it little).
    """
    if window <= 1:
        return z
    if window <= MEDIAN_MAX:
        return trailing_median(z, window)
    return trailing_mean(np.clip(z, -CLIP_Z, CLIP_Z), window, window // 2)


#: A machine counts as running steadily once it ran SETTLE_SHARE of the last
#: SETTLE_BUCKETS buckets: temperatures need that long to come back after a long stop.
SETTLE_BUCKETS = 5
SETTLE_SHARE = 0.8


def _running(panel: Panel) -> np.ndarray:
    """Steady running: RUN now, before, and mostly over the last ``SETTLE_BUCKETS``.

    Types without a state (the hall climate) always count as running.
    """
    if "state_code" not in panel.values:
        return np.ones((len(panel.machines), len(panel.ts_ms)), dtype=bool)
    run = panel["state_code"] == RUN
    steady = run.copy()
    steady[:, 1:] &= run[:, :-1]
    share = trailing_mean(run.astype(np.float64), SETTLE_BUCKETS)
    return steady & (share >= SETTLE_SHARE)


def _continuous(increase: np.ndarray, running: np.ndarray) -> bool:
    """True for a production counter: it grows in 80 % of running buckets.

    Water or stops count in bursts; energy per such a unit means nothing.
    """
    n = int(running.sum())
    return n > 0 and float(np.sum((increase > 0) & running)) / n >= 0.8


def _counter_signals(panel: Panel, running: np.ndarray, window: int) -> dict[str, np.ndarray]:
    counters = [f for f in panel.fields if f.endswith("_total")]
    out: dict[str, np.ndarray] = {}
    run_h = _trailing_sum(running.astype(np.float64), window) * panel.step_ms / 3_600_000
    inc = {}
    for c in counters:
        inc[c] = counter_increase(panel[f"{c}:first"], panel[f"{c}:max"], panel[c])
        total = _trailing_sum(np.where(running, inc[c], 0.0), window)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{c}:rate"] = np.where(run_h >= 0.25 * window / 60, total / run_h, np.nan)
    energy = [c for c in counters if c.startswith("energy")]
    output = [c for c in counters if c not in energy and _continuous(inc[c], running)]
    if energy and output:
        e = _trailing_sum(np.where(running, inc[energy[0]], 0.0), window)
        o = _trailing_sum(np.where(running, inc[output[0]], 0.0), window)
        with np.errstate(invalid="ignore", divide="ignore"):
            # as for rates: a ratio over a few buckets (the first of a span) is noise
            full = (o > 0) & (run_h >= 0.25 * window / 60)
            out[f"{energy[0]}:per:{output[0]}"] = np.where(full, e / o, np.nan)
    if "state_code" in panel.values:
        planned = np.isin(panel["state_code"], (RUN, STOP_PROCESS))
        stops = _trailing_sum((panel["state_code"] == STOP_PROCESS).astype(np.float64), window)
        n = _trailing_sum(planned.astype(np.float64), window)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["state:stop_share"] = np.where(n >= window / 2, stops / n, np.nan)
        out["state:stops_per_h"] = _stop_entries(panel["state_code"], run_h, window)
    return out


def _stop_entries(state: np.ndarray, run_h: np.ndarray, window: int) -> np.ndarray:
    """Entries into ``STOP_PROCESS`` per running hour over the trailing ``window``.

    A machine stopping more often (lint, yarn breaks) shows in how many stops begin,
    also while each stop stays short; the stop share weighs them by duration instead.
    """
    enter = np.zeros(state.shape)
    enter[:, 1:] = (state[:, 1:] == STOP_PROCESS) & (state[:, :-1] != STOP_PROCESS)
    total = _trailing_sum(enter, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(run_h >= 0.25 * window / 60, total / run_h, np.nan)


_NUMBERED = re.compile(r"^(?P<a>[a-z_]*?)(?P<n>\d+)(?P<b>_[a-z0-9_]+)$")
#: A numbered field family (``zone1_temp_c`` ... ``zone8_temp_c``) needs this many members.
MIN_SIBLINGS = 4


def sibling_groups(fields: Sequence[str]) -> list[list[str]]:
    """Families of numbered fields that measure the same thing at several places.

    >>> sibling_groups(["zone1_temp_c", "zone2_temp_c", "zone3_temp_c", "zone4_temp_c", "ph"])
    [['zone1_temp_c', 'zone2_temp_c', 'zone3_temp_c', 'zone4_temp_c']]
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for f in fields:
        m = _NUMBERED.match(f)
        if m:
            groups.setdefault((m["a"], m["b"]), []).append(f)
    return [g for g in groups.values() if len(g) >= MIN_SIBLINGS]


def _sibling_signals(panel: Panel, analog: list[str]) -> dict[str, np.ndarray]:
    """Each member of a field family against its siblings, in units of their spread.

    ``(x_k - median_j x_j) / (MAD_j x_j + 1)`` over the other members ``j``: one zone of
    a stenter going cold while its neighbours hold (a burner) stands out in any state,
    while a recipe or a start moves the whole family together.
    """
    out = {}
    for group in sibling_groups(analog):
        x = np.stack([panel[f] for f in group])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for k, f in enumerate(group):
                others = np.delete(x, k, axis=0)
                med = np.nanmedian(others, axis=0)
                mad = np.nanmedian(np.abs(others - med), axis=0)
                out[f"{f}:sib"] = (x[k] - med) / (mad + 1.0)
    return out


def type_signals(
    panel: Panel,
    *,
    rate_window: int = 60,
    gate: bool = True,
    events: EventTable | None = None,
    keys: Sequence[str] = (),
    event_rate: np.ndarray | None = None,
) -> Signals:
    """The monitored signals of one machine type's panel (see the module docstring).

    Parameters
    ----------
    panel
        60-s buckets following the panel convention.
    rate_window
        Trailing buckets over which counter rates and the stop share are taken.
    gate
        Blank analog signals while a machine is not running steadily.
    events, keys, event_rate
        The type's events over the panel's span, the event keys
        (:func:`~analytics.event_signals.event_keys`) and each machine's expected
        events per running hour per key (M, K): each key becomes how surprising the
        trailing window's count is (``stop:<reason>:surprise``, in sds).
    """
    running = _running(panel)
    analog = _analog(panel)
    pairs = setpoint_pairs(analog)
    setpoints = {sp for _, sp in pairs}
    names, fields, columns = [], [], []
    mask = running if gate else np.ones_like(running)
    for f in analog:
        if f in setpoints:
            continue
        on = mask & (panel[f] != 0.0)  # an exact 0 reads "switched off" (a pump at rest)
        for name in (f, f"{f}:sd"):
            if name in panel.values:
                names.append(name)
                fields.append(f)
                columns.append(np.where(on, panel[name], np.nan))
    for actual, sp in pairs:
        names.append(f"{actual}:err")
        fields.append(actual)
        columns.append(np.where(mask, panel[actual] - panel[sp], np.nan))
    for name, values in _sibling_signals(panel, analog).items():
        names.append(name)
        fields.append(name.split(":")[0])
        columns.append(values)
    for name, values in _counter_signals(panel, running, rate_window).items():
        names.append(name)
        fields.append(name.split(":")[0])
        columns.append(np.where(mask, values, np.nan) if name != "state:stop_share" else values)
    if keys and event_rate is not None:
        counts = event_counts(events, panel.machines, panel.ts_ms, panel.step_ms, keys)
        values = event_surprise(counts, running, panel.step_ms, rate_window, event_rate)
        for j, key in enumerate(keys):
            names.append(f"{key}:surprise")
            fields.append(key)
            columns.append(np.where(mask, values[..., j], np.nan))
    shape = (len(panel.machines), len(panel.ts_ms), len(names))
    values = np.stack(columns, axis=2) if columns else np.zeros(shape)
    return Signals(names, fields, values, running)


# -- the monitor -----------------------------------------------------------------------------


def _protected(threshold: float = 0.9, **robust: float) -> ThresholdFilter:
    return ThresholdFilter(RobustZ(**robust), threshold=threshold, n_refits=2)


def _scale_floor(name: str, rate_window: int) -> dict[str, float]:
    """Noise floor of a signal's baseline sd: counted events are Poisson.

    A rate of rare events (stops per hour over ``rate_window`` buckets) is zero most of
    the time, so its MAD is 0; one event per window is the least change it can show.
    """
    hours = rate_window / 60
    if name.endswith(":surprise"):  # already in sds of its Poisson law
        return {"min_scale": 1.0, "rel_min_scale": 0.0}
    if name.endswith((":rate", "_per_h")):
        return {"min_scale": 2.0 / hours, "rel_min_scale": 0.05}
    if name.startswith("state:"):
        return {"min_scale": 2.0 / rate_window, "rel_min_scale": 0.05}
    return {"rel_min_scale": 0.002}


#: Floor of a drive residual's baseline sd, as a share of its follower's typical level.
RESIDUAL_FLOOR = 0.002


def _residual_floor(sig: Signals, k: int) -> dict[str, float]:
    """Scale floor of a drive residual (``f:vs:<drive>``): a share of its follower's level.

    The residual centres on 0, so a floor relative to its own centre is none; it takes
    ``RESIDUAL_FLOOR`` of the follower's typical level instead (a fit that is too good
    must not turn a 0.1 % wobble into a fault).
    """
    name = sig.names[k]
    if ":vs:" not in name or name.split(":")[0] not in sig.names:
        return {}
    level = sig.values[..., sig.names.index(name.split(":")[0])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        typical = float(np.nanmedian(np.abs(level)))
    return {"min_scale": RESIDUAL_FLOOR * typical} if np.isfinite(typical) else {}


def _calibration(dev: np.ndarray, q: float, ref: float, quiet: bool = False) -> float:
    """Gain that brings a signal's usual training extreme down to ``ref`` sds.

    The extreme is the ``q``-quantile over time per machine, then the median over
    machines: one machine with a fault in the training span does not move it. A signal
    that wanders more than a robust sd promises (daily cycles, a recipe's steps) is
    scaled down instead of crying wolf; a quiet one keeps gain 1.

    Only deviating buckets count, unless ``quiet``: a rare event's surprise is 0 in
    almost every bucket and positive only just after one of its (healthy) events, so
    the extreme of its positive buckets alone is that of "an event happened" and the
    gain would blunt the signal until even a burst of alarms could not reach the
    alarm threshold; counting the quiet buckets judges it by how rarely it moves.

    >>> dev = np.zeros((3, 1000)); dev[:, :5] = 6.0   # 0.5 % of buckets just after events
    >>> _calibration(dev, 0.99, 2.5), _calibration(dev, 0.99, 2.5, quiet=True)
    (0.4166666666666667, 1.0)
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        kept = (dev >= 0) if quiet else (dev > 0)
        extreme = float(np.nanmedian(np.nanquantile(np.where(kept, dev, np.nan), q, axis=1)))
    return 1.0 if not np.isfinite(extreme) or extreme <= ref else ref / extreme


def _hall_z(det: Any, name: str, source: str, panel: Panel, z: np.ndarray) -> np.ndarray | None:
    """Z-scores a hall detector sees: levels over every bucket of planned production.

    When the compressor sags, half the looms stop at once: the steady-run gate would
    hide exactly the buckets where the whole hall deviates. Fluctuations (``:sd``) are
    not compared across a hall; counted rates come as they are.
    """
    if name.endswith((":sd", STEP_SUFFIX)) or ":vs:" in name or ":err" in name:
        return None
    if name != source:
        return z
    x = panel[name]
    if "state_code" in panel.values:
        x = np.where(np.isin(panel["state_code"], PRODUCING), x, np.nan)
    return det.detector_.zscores(x[..., None])[..., 0]


def _steady(
    level: list[Any], values: np.ndarray, indicators: list[int], limit: float
) -> tuple[np.ndarray, np.ndarray]:
    """Steady buckets and lone jumps of the transition indicators.

    Returns ``steady`` (M, T): no indicator exceeds ``limit`` sds; and ``lone`` (M, T):
    the index of the only indicator that does, else -1. A start or stop moves several
    fluctuations at once (speed, power, current); a spiking sensor moves only its own.
    """
    shape = values.shape[:2]
    count, lone = np.zeros(shape, dtype=np.int32), np.full(shape, -1, dtype=np.int32)
    for k in indicators:
        z = level[k].detector_.zscores(values[..., k, None])[..., 0]
        with np.errstate(invalid="ignore"):
            high = z > limit
        count += high
        lone[high] = k
    return count == 0, np.where(count == 1, lone, -1)


def _spiky(lone: np.ndarray, k: int, window: int = SPIKE_WINDOW) -> np.ndarray:
    """(M, T) True where indicator ``k`` jumped alone in 3 of the last ``window`` buckets."""
    return _trailing_sum((lone == k).astype(np.float64), window) >= 3


def _monotone_share(x: np.ndarray) -> float:
    """Share of valid consecutive steps that move the dominant way (1 = an integrator)."""
    d = np.diff(x, axis=1)
    d = d[np.isfinite(d) & (d != 0)]
    if d.size < 10:
        return 0.0
    up = float(np.mean(d > 0))
    return max(up, 1.0 - up)


@dataclass
class _TypeModel:
    """What ``fit`` learned for one machine type."""

    machines: list[str]
    names: list[str]
    fields: list[str]
    keep: np.ndarray
    level: list[Any]
    smooth: list[list[Any]]
    hall: dict[str, list[Any]]
    hall_rows: dict[str, np.ndarray]
    habits: dict[str, tuple]
    indicators: list[int]
    drive: Drive | None
    spike_habits: dict[int, float]
    steady_by: list[int] | None = None
    event_keys: list[str] = field(default_factory=list)
    event_rate: np.ndarray | None = None
    step_names: list[str] = field(default_factory=list)
    step_norms: dict[str, StepNorm] = field(default_factory=dict)


class Monitor(BaseEstimator):
    """Anomaly pipeline per machine type: ``fit(panels)``, ``score(panels)``, ``alarms(scores)``.

    The defaults are the parameters tuned on seeds 1, 5 and 12 of the default scenario
    (7 days, 1-s ticks, fit on the first 1.5 days), checked on development seeds and
    frozen for the report seeds (``analytics.evaluation``).

    Parameters
    ----------
    windows : tuple of int
        Trailing windows (buckets) over which robust z is averaged: short ones catch
        steps of minutes, long ones slow drifts. Each window's mean is re-standardised
        by its own training spread, so every deviation is in robust sds.
    rate_window : int
        Trailing buckets for counter rates and the stop share.
    threshold : float
        Anomaly score in [0, 1] at or above which a bucket is alarmed.
    hall_threshold : float
        The same for a hall's correlated score.
    min_alarm_min, merge_gap_min : int
        Alarm episodes shorter than this are dropped; closer ones merged (minutes).
    monotone_max : float
        Signals whose training steps go one way more often than this are integrators
        (a roll's length, a beam's diameter) and are not monitored as levels.
    halls : mapping or None
        Machine id -> hall; machines of a type in one hall are scored together by the
        hall detector (default: all machines of a type form one hall).
    min_hall_machines : int
        Halls with fewer machines of a type get no hall detector.
    smooth_floor : float
        Floor (sds) of a smoothed z's own training spread: a signal that never moved in
        training is not alarmed for the first wobble.
    sd_gate : float
        A field's fluctuation ``f:sd`` is scored only while its mean is within this
        many sds of its baseline.
    tail_max, transition_z : float
        Fluctuation signals whose training tail spans more than ``tail_max`` sds are
        transition indicators (see ``_indicators``); a bucket where one exceeds
        ``transition_z`` sds holds a start or stop and its analog signals are not scored.
    drive_transitions : bool
        For a type with a drive (``fit_drive``), only the drive's fluctuation marks
        transition buckets; every other fluctuation is monitored.
    calib_q, calib_ref : float
        Self-calibration without labels: a signal whose training deviation reaches
        more than ``calib_ref`` sds at its ``calib_q`` quantile (median machine) is
        scaled down to it.
    calib_quiet_kinds : tuple of str
        Event kinds (``alarm``) whose surprise's calibration quantile counts its quiet
        (zero) buckets too: a machine's own alarm code, rare by design, is judged by
        how rarely it fires, not by how surprising each of its healthy firings was
        (``_calibration``). Stop reasons, logged as part of ordinary running, keep
        the plain calibration.
    drive_steady : bool
        For a type with a drive, a bucket is a transition only when the drive's own
        fluctuation jumps (the pump changes speed); the other fluctuations stay
        unmonitored but no longer blank the levels: a rope tangle shakes the reel
        while the pump holds, and the reel's slowing is the evidence.
    steady_fluctuations : bool
        With ``drive_steady``, a fluctuation that is heavy-tailed only because its
        bucket holds a change of the drive (a pump changing speed shakes the flow) is
        judged within the drive's steady buckets: when its tail there stays within
        ``tail_max`` it is monitored like any signal, against the machine's own steady
        fluctuation (a cavitating pump's flow and current start to shake while the pump
        holds its speed); only the drive's own fluctuation remains a mere indicator.
    drive_corr : float
        Pooled correlation with the drive a signal needs to be watched as a follower
        (through its residual from the drive line, ``fit_drive``).
    split_causes : bool
        A field that starts deviating while an alarm of its machine is open opens a
        new alarm naming it (one fault does not hide the next).
    peer_scale_floor, min_peer_machines : float, int
        Each machine's baseline spread of a signal is at least ``peer_scale_floor``
        times the median machine's (``_peer_floor``), in classes of at least
        ``min_peer_machines`` (two machines' median is no class norm): a training
        span that was unusually quiet on one machine (one recipe) does not make its
        ordinary variation a fault.
    step_transitions, step_settle : bool, int
        With events given, a bucket that holds a programme step event (``kind`` step)
        and the ``step_settle`` buckets after it are transitions, like a drive change.
    event_rates : bool
        With events given to ``fit``/``score``, monitor how surprising each stop
        reason's and alarm code's count per running hour is against the machine's
        training rate (``analytics.event_signals``).
    step_errors : bool
        With step events given, each tracking error (``f:err``) gets a twin judged
        within the current programme step (``f:err@step``, :mod:`analytics.step_signals`):
        a liquor lagging half a degree while ramping is normal, while holding it is
        not, so pooled over steps the error is too heavy-tailed to watch and a fouled
        heat exchanger's ramps falling behind go unseen.
    field_dev : float
        Deviation (sds) at which a field counts as involved in an episode: an episode
        involving one field only is an instrument fault (a sensor lies alone), several
        fields a process fault.
    """

    def __init__(
        self,
        *,
        windows: tuple[int, ...] = (2, 10, 60),
        rate_window: int = 240,
        threshold: float = 0.96,
        hall_threshold: float = 0.9,
        min_alarm_min: int = 3,
        merge_gap_min: int = 30,
        monotone_max: float = 0.9,
        halls: Mapping[str, str] | None = None,
        min_hall_machines: int = 4,
        field_dev: float = 4.0,
        smooth_floor: float = 0.5,
        sd_gate: float = 3.0,
        tail_max: float = 30.0,
        transition_z: float = 5.0,
        calib_q: float = 0.99,
        calib_ref: float = 2.5,
        drive_transitions: bool = False,
        split_causes: bool = True,
        drive_corr: float = 0.7,
        drive_steady: bool = True,
        event_rates: bool = True,
        step_transitions: bool = True,
        step_settle: int = 1,
        peer_scale_floor: float = 0.75,
        min_peer_machines: int = 4,
        steady_fluctuations: bool = True,
        step_errors: bool = True,
        calib_quiet_kinds: tuple[str, ...] = ("alarm",),
    ) -> None:
        self.windows = windows
        self.rate_window = rate_window
        self.threshold = threshold
        self.hall_threshold = hall_threshold
        self.min_alarm_min = min_alarm_min
        self.merge_gap_min = merge_gap_min
        self.monotone_max = monotone_max
        self.halls = halls
        self.min_hall_machines = min_hall_machines
        self.field_dev = field_dev
        self.smooth_floor = smooth_floor
        self.sd_gate = sd_gate
        self.tail_max = tail_max
        self.transition_z = transition_z
        self.calib_q = calib_q
        self.calib_ref = calib_ref
        self.drive_transitions = drive_transitions
        self.split_causes = split_causes
        self.drive_corr = drive_corr
        self.drive_steady = drive_steady
        self.event_rates = event_rates
        self.step_transitions = step_transitions
        self.step_settle = step_settle
        self.peer_scale_floor = peer_scale_floor
        self.min_peer_machines = min_peer_machines
        self.steady_fluctuations = steady_fluctuations
        self.step_errors = step_errors
        self.calib_quiet_kinds = calib_quiet_kinds

    # -- fit ---------------------------------------------------------------------------
    def fit(
        self, panels: Mapping[str, Panel], events: Mapping[str, EventTable] | None = None
    ) -> Monitor:
        """Learn per machine type, machine and signal baselines from a training span.

        Labels are never used; protected (trimmed) fits keep a fault that is active
        during training from becoming the new normal. ``events`` (per machine type,
        over the same span) add a rate signal per stop reason and alarm code seen.
        """
        self.models_: dict[str, _TypeModel] = {}
        for machine_type, panel in panels.items():
            if len(panel.machines) and len(panel.ts_ms):
                ev = (events or {}).get(machine_type)
                self.models_[machine_type] = self._fit_type(panel, ev)
        return self

    def _hall_groups(self, machines: list[str]) -> dict[str, np.ndarray]:
        halls = self.halls or {}
        names = np.array([halls.get(m, "*") for m in machines], dtype=object)
        return {str(h): np.flatnonzero(names == h) for h in dict.fromkeys(names.tolist())}

    def _fit_type(self, panel: Panel, events: EventTable | None = None) -> _TypeModel:
        keys, rate = self._event_baseline(panel, events)
        raw = type_signals(
            panel, rate_window=self.rate_window, events=events, keys=keys, event_rate=rate
        )
        level = self._level(raw, range(len(raw.names)))
        indicators = [k for k in self._heavy(level, raw, None) if raw.names[k].endswith(":sd")]
        steady, lone = _steady(level, raw.values, indicators, self.transition_z)
        spike_habits = {k: float(_spiky(lone, k).mean()) for k in indicators}
        drive = fit_drive(masked(raw, steady), min_corr=self.drive_corr)
        by_drive = self.drive_transitions and drive is not None
        if by_drive and f"{drive.field}:sd" in raw.names:
            # A machine with a drive changes regime when the drive moves: only the
            # drive's own fluctuation marks a transition, the others stay monitored.
            indicators = [raw.names.index(f"{drive.field}:sd")]
            steady, lone = _steady(level, raw.values, indicators, self.transition_z)
            spike_habits = {k: float(_spiky(lone, k).mean()) for k in indicators}
        steady_by = None
        if self.drive_steady and not by_drive and drive is not None:
            steady_by = [k for k in indicators if raw.names[k] == f"{drive.field}:sd"] or None
            if steady_by:
                steady = _steady(level, raw.values, steady_by, self.transition_z)[0]
        steady &= ~self._step_marks(panel, events)
        sig = with_drive(raw, drive)
        sig, step_names, norms = self._fit_steps(sig, panel, events, steady)
        d = len(sig.names)
        level += self._level(sig, range(len(raw.names), d))
        keep = np.ones(d, dtype=bool)
        within = by_drive or (self.steady_fluctuations and steady_by is not None)
        keep[self._heavy(level, sig, steady, gate_all=within)] = False
        keep[steady_by if within and steady_by else indicators] = False
        keep &= self._not_integrators(sig)
        habits = instrument_habits(panel, sig.running, sig.names)
        keep &= np.array([habits.get(f, (0.0, 0.0))[1] < SETTING_SHARE for f in sig.fields])
        if drive is not None:  # a follower is watched through its residual only
            keep &= np.array([n not in drive.coef for n in sig.names], dtype=bool)
        groups = {
            h: rows
            for h, rows in self._hall_groups(panel.machines).items()
            if len(rows) >= self.min_hall_machines
        }
        smooth, mean_z = [], {}
        hall: dict[str, list[Any]] = {h: [] for h in groups}
        for k in range(d):
            x = sig.values[..., k]
            z = self._gated_z(level[k], sig.names[k], sig.fields[k], x, mean_z, steady)
            smooth.append(self._fit_smooth(sig.names[k], z))
            zh_all = _hall_z(level[k], sig.names[k], sig.fields[k], panel, z)
            for h, rows in groups.items():
                if zh_all is None:
                    hall[h].append(None)
                    continue
                zh = zh_all[rows][..., None]
                det = HallDetector(input_kind="z", min_machines=max(3, (len(rows) + 1) // 2))
                det.fit(zh)
                gain = _calibration(det.deviation(zh)[None], self.calib_q, self.calib_ref)
                hall[h].append((det, gain))
        return _TypeModel(
            list(panel.machines),
            sig.names,
            sig.fields,
            keep,
            level,
            smooth,
            hall,
            groups,
            habits,
            indicators,
            drive,
            spike_habits,
            steady_by,
            keys,
            rate,
            step_names,
            norms,
        )

    def _fit_smooth(self, name: str, z: np.ndarray) -> list[tuple[Any, float]]:
        """Per window, a protected baseline of the smoothed z and its calibration gain.

        An event surprise is zero while nothing happens: for the kinds in
        ``calib_quiet_kinds`` its training extreme counts those quiet buckets too
        (see :func:`_calibration`).
        """
        quiet = name.endswith(":surprise") and name.split(":", 1)[0] in self.calib_quiet_kinds
        fitted = []
        for w in self.windows:
            zf = smooth_z(z, w)[..., None]
            det = _protected(min_scale=self.smooth_floor).fit(zf)
            fitted.append(
                (det, _calibration(det.deviation(zf), self.calib_q, self.calib_ref, quiet))
            )
        return fitted

    def _event_baseline(
        self, panel: Panel, events: EventTable | None
    ) -> tuple[list[str], np.ndarray | None]:
        """The event keys seen in training and each machine's expected rate of each."""
        if not self.event_rates or events is None:
            return [], None
        keys = event_keys(events)
        counts = event_counts(events, panel.machines, panel.ts_ms, panel.step_ms, keys)
        return keys, event_baseline(counts, _running(panel), panel.step_ms)

    def _fit_steps(
        self, sig: Signals, panel: Panel, events: EventTable | None, steady: np.ndarray
    ) -> tuple[Signals, list[str], dict[str, StepNorm]]:
        """``sig`` with its step-judged twins, the step codes and each twin's norms.

        A signal whose meaning changes with the programme step (a tracking error while
        ramping or holding) is standardised by its class's steady training buckets
        of the same step code (``analytics.step_signals``).
        """
        names = step_code_names(events) if self.step_errors else []
        codes = step_codes(events, panel.machines, panel.ts_ms, panel.step_ms, names)
        if not names or not (codes >= 0).any():
            return sig, [], {}
        out = {}
        for k, name in enumerate(sig.names):
            if name.endswith(":err"):  # levels per step were tried: recipes move them
                norm = fit_step_norm(
                    np.where(steady, sig.values[..., k], np.nan), codes, len(names)
                )
                if np.isfinite(norm.scale).any():
                    out[name] = norm
        return _with_steps(sig, codes, out), (names if out else []), out

    def _step_marks(self, panel: Panel, events: EventTable | None) -> np.ndarray:
        """(M, T) True in buckets a programme step change falls in (and ``step_settle`` after).

        A step change (fill, heat, dose) moves a machine to another regime inside the
        bucket: its fluctuations there say nothing about the machine's health.
        """
        if not self.step_transitions:
            return np.zeros((len(panel.machines), len(panel.ts_ms)), dtype=bool)
        return event_marks(
            events, panel.machines, panel.ts_ms, panel.step_ms, after=self.step_settle
        )

    def _level(self, sig: Signals, ks: Any) -> list[Any]:
        """Protected per-machine baselines of the signals ``ks``, floored by their peers'."""
        share = self.peer_scale_floor if sig.values.shape[0] >= self.min_peer_machines else 0.0
        out = []
        for k in ks:
            det = _protected(
                **_scale_floor(sig.names[k], self.rate_window), **_residual_floor(sig, k)
            ).fit(sig.values[..., k, None])
            _peer_floor(det.detector_, share)
            out.append(det)
        return out

    def _not_integrators(self, sig: Signals) -> np.ndarray:
        """False for every signal of a field whose level only moves one way."""
        integrators = {
            sig.fields[k]
            for k, name in enumerate(sig.names)
            if name == sig.fields[k] and _monotone_share(sig.values[..., k]) > self.monotone_max
        }
        return np.array([f not in integrators for f in sig.fields], dtype=bool)

    def _heavy(
        self, level: list[Any], sig: Signals, steady: np.ndarray | None, gate_all: bool = False
    ) -> list[int]:
        """Signals too heavy-tailed for a robust z: not monitored.

        A speed's within-bucket sd is tiny while a loom runs and huge in a bucket that
        holds a stop: its training tail ``q99 - q50`` spans more than ``tail_max``
        robust sds. Such fluctuation signals mark transition buckets instead; the
        other signals are judged within steady buckets (``steady``).
        """
        out = []
        for k in range(len(sig.names)):
            z = level[k].detector_.zscores(sig.values[..., k, None])[..., 0]
            if steady is not None and (gate_all or not sig.names[k].endswith(":sd")):
                z = np.where(steady, z, np.nan)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                q = np.nanquantile(z, [0.5, 0.99], axis=1)
                tail = float(np.nanmedian(q[1] - q[0]))
            if tail > self.tail_max:
                out.append(k)
        return out

    def _gated_z(
        self,
        det: Any,
        name: str,
        source: str,
        x: np.ndarray,
        mean_z: dict[str, np.ndarray],
        steady: np.ndarray,
    ) -> np.ndarray:
        """Signed z of one signal, blank outside steady running.

        A fluctuation (``f:sd``) only counts while ``f`` itself is within ``sd_gate``
        sds: a bucket whose mean moved holds a start or a stop (or a level fault, which
        the mean signal reports), and its sd says nothing more.
        """
        z = det.detector_.zscores(x[..., None])[..., 0]
        if ":" not in name or name.endswith((":sd", ":err", STEP_SUFFIX)):
            z = np.where(steady, z, np.nan)
        if name == source:
            mean_z[source] = z
        elif name.endswith(":sd") and source in mean_z:
            with np.errstate(invalid="ignore"):
                z = np.where(np.abs(mean_z[source]) <= self.sd_gate, z, np.nan)
        return z

    # -- score -------------------------------------------------------------------------
    def score(
        self, panels: Mapping[str, Panel], events: Mapping[str, EventTable] | None = None
    ) -> dict[str, MachineScores]:
        """Score every machine type the monitor was fitted on (causal, per bucket).

        ``events`` per machine type over the panels' spans; without them the event
        rates learned in ``fit`` score nothing (missing, not normal).
        """
        if not hasattr(self, "models_"):
            raise RuntimeError("Monitor is not fitted; call fit(panels) first")
        out = {}
        for machine_type, panel in panels.items():
            model = self.models_.get(machine_type)
            if model is not None and len(panel.ts_ms):
                ev = (events or {}).get(machine_type)
                aligned = _align(panel, model)
                out[machine_type] = self._score_type(machine_type, model, aligned, ev)
        return out

    def _score_type(
        self,
        machine_type: str,
        model: _TypeModel,
        panel: Panel,
        events: EventTable | None = None,
    ) -> MachineScores:
        keys = model.event_keys if events is not None else []
        raw = type_signals(
            panel,
            rate_window=self.rate_window,
            events=events,
            keys=keys,
            event_rate=model.event_rate,
        )
        sig = with_drive(raw, model.drive)
        if model.step_norms:
            codes = step_codes(events, panel.machines, panel.ts_ms, panel.step_ms, model.step_names)
            sig = _with_steps(sig, codes, model.step_norms)
        m, t = len(panel.machines), len(panel.ts_ms)
        best = np.zeros((m, t))
        top = np.zeros((m, t), dtype=np.int32)
        top_z = np.zeros((m, t))
        field_dev: dict[str, np.ndarray] = {}
        mean_z: dict[str, np.ndarray] = {}
        hall_dev = {h: np.zeros(t) for h in model.hall}
        hall_top = {h: np.zeros(t, dtype=np.int32) for h in model.hall}
        aligned = np.stack(
            [
                sig.values[..., sig.names.index(n)] if n in sig.names else np.full((m, t), np.nan)
                for n in model.names
            ],
            axis=2,
        )
        steady, lone = _steady(model.level, aligned, model.indicators, self.transition_z)
        if model.steady_by:
            steady = _steady(model.level, aligned, model.steady_by, self.transition_z)[0]
        steady &= ~self._step_marks(panel, events)
        for k, name in enumerate(model.names):
            if not model.keep[k]:
                continue
            x = aligned[..., k]
            z = self._gated_z(model.level[k], name, model.fields[k], x, mean_z, steady)
            zh_all = _hall_z(model.level[k], name, model.fields[k], panel, z)
            for h, rows in model.hall_rows.items():
                if model.hall[h][k] is None or zh_all is None:
                    continue
                det, gain = model.hall[h][k]
                dev_h = det.deviation(zh_all[rows][..., None]) * gain
                better = dev_h > hall_dev[h]
                hall_dev[h][better], hall_top[h][better] = dev_h[better], k
            for w, (det, gain) in zip(self.windows, model.smooth[k], strict=True):
                zf = smooth_z(z, w)
                dev = det.deviation(zf[..., None]) * gain
                source = model.fields[k]
                field_dev[source] = np.fmax(field_dev.get(source, dev), dev)
                better = dev > best
                best[better], top[better], top_z[better] = dev[better], k, zf[better]
        n_fields = sum((v >= self.field_dev).astype(np.int8) for v in field_dev.values())
        extra, kinds = _instrument_evidence(panel, sig, model)
        for k, share in model.spike_habits.items():
            if share < RARE:
                _mark(extra, kinds[0], kinds[1], _spiky(lone, k), 3, k)
        hit = extra > best
        best[hit], top[hit] = extra[hit], kinds[1][hit]
        return MachineScores(
            machine_type,
            list(panel.machines),
            panel.ts_ms.copy(),
            to_unit_score(best),
            top,
            np.where(hit, np.nan, top_z),
            list(model.names),
            np.array([det.detector_.center_[:, 0] for det in model.level]).T,
            {h: to_unit_score(v) for h, v in hall_dev.items()},
            dict(model.hall_rows),
            hall_top,
            np.where(hit, kinds[0], 0).astype(np.int8),
            np.asarray(n_fields, dtype=np.int8),
            {f: to_unit_score(v) for f, v in field_dev.items()} if self.split_causes else {},
            steady,
        )

    # -- alarms ------------------------------------------------------------------------
    def alarms(self, scores: Mapping[str, MachineScores]) -> list[MonitorAlarm]:
        """Alarm episodes of every machine type: which signal, how far, since when.

        A hall alarm lists the machines it involves; their own episodes that overlap it
        are folded into it (one cause, one alarm).
        """
        out: list[MonitorAlarm] = []
        for sc in scores.values():
            halls = self._hall_alarms(sc)
            out += halls
            out += [a for a in self._machine_alarms(sc) if not _explained(a, halls)]
        return sorted(out, key=lambda a: (a.start_ms, a.machine or ""))

    def _episodes(self, mask: np.ndarray, ts: np.ndarray, instant: np.ndarray | None = None):
        step = int(ts[1] - ts[0]) if len(ts) > 1 else 60_000
        long = episodes(mask, ts, min_duration_ms=(self.min_alarm_min - 1) * step)
        keep = np.zeros_like(np.atleast_2d(mask))
        for r, a, b in zip(long.row, long.start, long.end, strict=True):
            keep[r, a : b + 1] = True
        if instant is not None:
            keep |= np.atleast_2d(instant)
        return episodes(keep, ts, merge_gap_ms=self.merge_gap_min * 60_000)

    def _machine_alarms(self, sc: MachineScores) -> list[MonitorAlarm]:
        mask = sc.score >= self.threshold
        kinds = sc.kinds if sc.kinds is not None else np.zeros(mask.shape, np.int8)
        ep = self._episodes(mask, sc.ts_ms, mask & np.isin(kinds, (1, 4, 5)))
        out = []
        last = len(sc.ts_ms) - 1
        for r, a0, b0 in zip(ep.row.tolist(), ep.start.tolist(), ep.end.tolist(), strict=True):
            for a, b, k_new in self._causes(sc, r, a0, b0):
                seg = sc.score[r, a : b + 1]
                p = a + int(np.argmax(seg))
                k = int(sc.signal[r, p]) if k_new is None else k_new
                out.append(
                    MonitorAlarm(
                        signal=sc.signals[k],
                        start_ms=int(sc.ts_ms[a]),
                        end_ms=None if b == last else int(sc.ts_ms[b]),  # type: ignore[arg-type]
                        peak_score=float(seg.max()),
                        z=float(np.nan_to_num(sc.z[r, p], nan=INSTRUMENT_DEV)),
                        baseline=float(sc.baseline[r, k]),
                        machine=sc.machines[r],
                        machine_type=sc.machine_type,
                        detector="robust",
                        kind=self._kind(sc, r, a, b, k, mask[r]),
                    )
                )
        return out

    def _causes(self, sc: MachineScores, r: int, a: int, b: int) -> list[tuple]:
        """Split episode ``[a, b]`` of row ``r`` where a field not yet involved starts.

        An alarm already open (a sensor gone silent) must not swallow a second fault
        that begins under it: a field whose own score first holds above ``threshold``
        for ``min_alarm_min`` buckets after the episode began, and did not reach it
        before, opens a new alarm naming that field. Returns ``(start, end, signal)``
        segments, ``signal`` None for the episode's own top signal.
        """
        starts: dict[int, int] = {}
        n = self.min_alarm_min
        for name, fs in sc.field_score.items():
            hot = fs[r, a : b + 1] >= self.threshold
            held = _trailing_sum(hot.astype(np.float64), n) >= n
            first = int(np.argmax(held)) - n + 1 if held.any() else -1
            if first > 0 and not hot[:first].any() and name in sc.signals:
                starts.setdefault(a + first, sc.signals.index(name))
        cuts = sorted(starts)
        bounds = [a, *cuts, b + 1]
        ks = [None, *(starts[c] for c in cuts)]
        return [(bounds[i], bounds[i + 1] - 1, ks[i]) for i in range(len(ks))]

    def _kind(self, sc: MachineScores, r: int, a: int, b: int, k: int, mask: np.ndarray) -> str:
        """Instrument or process: direct evidence first, then how many fields deviate."""
        codes = sc.kinds[r, a : b + 1] if sc.kinds is not None else np.zeros(0, np.int8)
        codes = codes[codes > 0]
        if codes.size:
            return "instrument:" + KINDS[int(np.bincount(codes).argmax())]
        if sc.n_fields is None:
            return "process"
        alarmed = mask[a : b + 1]
        involved = (
            sc.n_fields[r, a : b + 1][alarmed] if alarmed.any() else sc.n_fields[r, a : b + 1]
        )
        if float(np.median(involved)) > 1:
            return "process"
        name = sc.signals[k]
        if name.endswith(":sd"):
            return "instrument:spike"
        return "instrument:drift" if ":" not in name else "process"

    def _hall_alarms(self, sc: MachineScores) -> list[MonitorAlarm]:
        out = []
        last = len(sc.ts_ms) - 1
        for hall, score in sc.hall_score.items():
            rows = sc.hall_machines[hall]
            ep = self._episodes(score >= self.hall_threshold, sc.ts_ms)
            for a, b in zip(ep.start.tolist(), ep.end.tolist(), strict=True):
                p = a + int(np.argmax(score[a : b + 1]))
                k = int(sc.hall_signal[hall][p])
                hot = rows[sc.score[rows, a : b + 1].max(axis=1) >= 0.5]
                members = tuple(sc.machines[i] for i in (hot if hot.size else rows))
                out.append(
                    MonitorAlarm(
                        signal=sc.signals[k],
                        start_ms=int(sc.ts_ms[a]),
                        end_ms=None if b == last else int(sc.ts_ms[b]),  # type: ignore[arg-type]
                        peak_score=float(score[a : b + 1].max()),
                        z=float(np.nanmedian(sc.z[rows, p])) if rows.size else 0.0,
                        baseline=float(np.median(sc.baseline[rows, k])),
                        machine=hall,
                        machine_type=sc.machine_type,
                        detector="hall",
                        kind="hall",
                        machines=members,
                    )
                )
        return out


#: Suffix of a signal standardised within the current programme step.
STEP_SUFFIX = "@step"


def _with_steps(sig: Signals, codes: np.ndarray, norms: Mapping[str, StepNorm]) -> Signals:
    """``sig`` plus each normed signal standardised within its step (``f@step``)."""
    extra = [(n, sig.names.index(n)) for n in norms if n in sig.names]
    if not extra:
        return sig
    cols = [step_standardised(sig.values[..., k], codes, norms[n]) for n, k in extra]
    return Signals(
        [*sig.names, *(n + STEP_SUFFIX for n, _ in extra)],
        [*sig.fields, *(sig.fields[k] for _, k in extra)],
        np.concatenate([sig.values, np.stack(cols, axis=2)], axis=2),
        sig.running,
    )


def _peer_floor(det: RobustZ, share: float) -> None:
    """Raise each machine's baseline spread to ``share`` x the median machine's.

    A machine whose training span happened to be unusually quiet (one recipe, a
    temperature held for hours) gets a spread far below its peers' for the same
    signal, and its first ordinary batch then reads as tens of sds. The class knows
    better: ``scale_m = max(scale_m, share * median_j scale_j)`` (per signal).
    """
    if share <= 0:
        return
    scale = det.scale_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        typical = np.nanmedian(scale, axis=0, keepdims=True)
    floor = np.where(np.isfinite(typical), share * typical, 0.0)
    det.scale_ = np.where(np.isfinite(scale), np.maximum(scale, floor), scale)


def _explained(alarm: MonitorAlarm, halls: Sequence[MonitorAlarm]) -> bool:
    """True when a hall alarm listing the machine was open when ``alarm`` started."""
    for hall in halls:
        end = np.inf if hall.end_ms is None else hall.end_ms
        if alarm.machine in hall.machines and hall.start_ms <= alarm.start_ms <= end:
            return True
    return False


#: Kind codes of :attr:`MachineScores.kinds` (0 = process).
KINDS = ("process", "stuck", "drift", "spike", "dropout", "counter_reset")
#: Deviation (sds) given to direct instrument evidence (a gap, a reset, a frozen sd).
INSTRUMENT_DEV = 20.0


def _align(panel: Panel, model: _TypeModel) -> Panel:
    """The panel with its rows in the fitted machine order (unknown machines dropped)."""
    if list(panel.machines) == model.machines:
        return panel
    index = {m: i for i, m in enumerate(panel.machines)}
    rows = np.array([index.get(m, -1) for m in model.machines])
    values = {}
    for name, matrix in panel.values.items():
        full = np.full((len(rows), matrix.shape[1]), np.nan)
        full[rows >= 0] = matrix[rows[rows >= 0]]
        values[name] = full
    return Panel(list(model.machines), panel.ts_ms, panel.step_ms, values)


def _mark(extra, kind, index, where, code, k) -> None:
    extra[where] = INSTRUMENT_DEV
    kind[where] = code
    index[where] = k


#: A field frozen in more than this share of running buckets is a setting (a batch
#: weight, an overfeed), changed by people, not a measurement: it is not monitored.
SETTING_SHARE = 0.5
#: A pattern seen in less than this share of training buckets is never normal.
RARE = 1e-3


def _silences(panel: Panel, running: np.ndarray, analog: list[str]) -> dict[str, tuple]:
    """Per analog field: (missing while the machine reports, frozen) masks (M, T).

    *Missing*: NaN while most other fields report. *Frozen*: the
    same bucket mean as the bucket before, while running (a live sensor always has
    noise).
    """
    present = np.stack([np.isfinite(panel[f]) for f in analog])
    reporting = present.sum(axis=0) >= max(2, len(analog) // 2)
    out = {}
    for f in analog:
        x = panel[f]
        frozen = np.zeros(x.shape, dtype=bool)
        frozen[:, 1:] = x[:, 1:] == x[:, :-1]
        out[f] = (reporting & ~np.isfinite(x), frozen & running)
    return out


def instrument_habits(panel: Panel, running: np.ndarray, names: list[str]) -> dict[str, tuple]:
    """Training share of running buckets with each field missing / frozen (pooled)."""
    analog = [f for f in _analog(panel) if f in names]
    n = max(int(running.sum()), 1)
    return {
        f: (float(missing.sum()) / n, float(frozen.sum()) / n)
        for f, (missing, frozen) in (_silences(panel, running, analog).items() if analog else ())
    }


def _resets(panel: Panel, counter: str) -> np.ndarray:
    """(M, T) True where a counter went backwards (also inside a bucket)."""
    seq = np.stack([panel[f"{counter}:first"], panel[f"{counter}:max"], panel[counter]], axis=2)
    m, t, _ = seq.shape
    return counter_resets(seq.reshape(m, 3 * t)).reshape(m, t, 3).any(axis=2)


def _instrument_evidence(
    panel: Panel, sig: Signals, model: _TypeModel
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Direct instrument evidence: a sensor gone silent or frozen, a counter reset.

    Silence and freezing count only for fields that never did so in training (a dyeing
    machine's pressure sensor may legitimately read nothing below 100 C). Returns a
    deviation (M, T) (``INSTRUMENT_DEV`` where evidence holds), and the kind code and
    signal index per bucket.
    """
    shape = (len(panel.machines), len(panel.ts_ms))
    extra, kind, index = np.zeros(shape), np.zeros(shape, np.int8), np.zeros(shape, np.int32)
    analog = [f for f in _analog(panel) if f in model.habits]
    for f, (missing, frozen) in (_silences(panel, sig.running, analog) if analog else {}).items():
        k = model.names.index(f)
        miss_share, frozen_share = model.habits[f]
        if miss_share < RARE:
            _mark(extra, kind, index, missing, 4, k)
        if frozen_share < RARE:
            _mark(extra, kind, index, frozen, 1, k)
    for c in (f for f in panel.fields if f.endswith("_total")):
        name = f"{c}:rate"
        if name in model.names:
            _mark(extra, kind, index, _resets(panel, c), 5, model.names.index(name))
    return extra, (kind, index)
