"""Batch dyeing KPIs (domain spec §1.3, §4): batches, RFT, cycle time, ramps, utilities.

Batches come from events: every event of a batch carries its ``batch_id`` (``step``
events name the step: FILL HEAT HOLD DOSE COOL SAMPLE ADD DRAIN RINSE UNLOAD CLEAN). A
batch starts at its first event and ends at the machine's next event that is not
part of it (the next batch's loading, a wait, the machine going off). A batch whose
first event is also the first event of its machine in the table started earlier, so
its start is unknown; one with no later event is still running. Neither has a cycle
time. A batch with an ``ADD`` step (shade correction) is not right first time.

Example
-------
>>> from analytics.events import EventTable
>>> m = 60_000
>>> ev = EventTable.from_records(
...     [{"machine": "d1", "ts": 0, "kind": "state", "code": "WAIT"}]
...     + [{"machine": "d1", "ts": t * m, "kind": "step", "code": c, "batch_id": "b1"}
...        for t, c in [(1, "FILL"), (10, "HEAT"), (40, "ADD"), (50, "UNLOAD")]]
...     + [{"machine": "d1", "ts": 61 * m, "kind": "state", "code": "WAIT"}])
>>> b = batch_table(ev)
>>> b.batch_id.tolist(), b.cycle_s.tolist(), b.rft.tolist()
(['b1'], [3600.0], [False])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from analytics.events import EventTable
from analytics.intervals import latest_index, machine_index
from analytics.kpi.oee import ratio

__all__ = [
    "Batches",
    "batch_table",
    "cycle_ratio",
    "per_kg",
    "ramp_error",
    "right_first_time_pct",
    "span_sums",
    "standard_cycle_s",
    "step_mask",
]

RAMP_STEPS = ("HEAT", "COOL")


@dataclass
class Batches:
    """One row per batch: machine, id, ``[start_ms, end_ms)`` (NaN: unknown), steps, adds."""

    machine: np.ndarray
    batch_id: np.ndarray
    start_ms: np.ndarray
    end_ms: np.ndarray
    steps: np.ndarray
    adds: np.ndarray

    def __len__(self) -> int:
        return len(self.batch_id)

    @property
    def rft(self) -> np.ndarray:
        """Right first time: no ``ADD`` (shade correction) step."""
        return self.adds == 0

    @property
    def cycle_s(self) -> np.ndarray:
        """Batch cycle time (s) = (end - start) / 1000; NaN when either is unknown."""
        return (self.end_ms - self.start_ms) / 1000.0


def batch_table(events: EventTable) -> Batches:
    """Batches of the table's events (see module docstring), ordered by machine, start.

    >>> from analytics.events import EventTable
    >>> ev = EventTable.from_records([
    ...     {"machine": "d", "ts": 0, "kind": "step", "code": "FILL", "batch_id": "x"},
    ...     {"machine": "d", "ts": 5, "kind": "step", "code": "FILL", "batch_id": "y"}])
    >>> batch_table(ev).end_ms.tolist()  # x: start unknown; y: still running
    [5.0, nan]
    """
    n = len(events)
    key = np.char.add(np.char.add(events.machine.astype(str), "\x00"), events.batch_id.astype(str))
    has = events.batch_id.astype(str) != ""
    uniq, first, inverse = np.unique(key[has], return_index=True, return_inverse=True)
    pos = np.flatnonzero(has)
    first = pos[first]
    last = np.zeros(len(uniq), dtype=np.int64)
    np.maximum.at(last, inverse, pos)
    step = events.kind[has] == "step"
    steps = np.bincount(inverse, step, minlength=len(uniq))
    adds = np.bincount(inverse, step & (events.code[has] == "ADD"), minlength=len(uniq))
    machine = events.machine.astype(str)
    ts = events.ts_ms.astype(np.float64)
    before = np.maximum(first - 1, 0)
    after = np.minimum(last + 1, max(n - 1, 0))
    known_start = (first > 0) & (machine[before] == machine[first])
    known_end = (last + 1 < n) & (machine[after] == machine[last])
    order = np.lexsort((ts[first], machine[first]))
    return Batches(
        machine[first][order],
        events.batch_id.astype(str)[first][order],
        np.where(known_start, ts[first], np.nan)[order],
        np.where(known_end, ts[after], np.nan)[order],
        steps[order],
        adds[order],
    )


def right_first_time_pct(rft: np.ndarray, axis: int = -1) -> np.ndarray:
    """RFT % = 100 x batches without an addition / all batches, along ``axis``.

    >>> right_first_time_pct(np.array([True, True, False, True])).tolist()
    75.0
    """
    r = np.asarray(rft, dtype=np.float64)
    return 100.0 * ratio(r.sum(axis=axis), np.asarray(r.shape[axis], dtype=np.float64))


def standard_cycle_s(
    batches: Batches, standard: float | np.ndarray | Mapping[str, float] | None = None
) -> np.ndarray:
    """Standard cycle time (s) per batch.

    ``standard`` is one time for all, an array per batch, or a mapping batch id -> s
    (e.g. filled from each batch's recipe). Without it the median cycle time of the
    given batches stands in: a batch is then rated against the machine group's own
    typical batch, so P says "slower than usual", not "slower than the recipe".

    >>> b = Batches(np.array(["d"] * 3), np.array(["a", "b", "c"]), np.array([0.0, 0, 0]),
    ...             np.array([3.6e6, 4.0e6, 5.4e6]), np.ones(3), np.zeros(3))
    >>> standard_cycle_s(b).tolist()
    [4000.0, 4000.0, 4000.0]
    """
    n = len(batches)
    if standard is None:
        cycles = batches.cycle_s[~np.isnan(batches.cycle_s)]
        return np.full(n, float(np.median(cycles)) if len(cycles) else np.nan)
    if isinstance(standard, Mapping):
        return np.array([float(standard.get(b, np.nan)) for b in batches.batch_id.tolist()])
    return np.broadcast_to(np.asarray(standard, dtype=np.float64), (n,)).copy()


def cycle_ratio(standard_s: np.ndarray, actual_s: np.ndarray) -> np.ndarray:
    """Dyeing performance before the cap: standard / actual cycle time (unitless).

    A 4-h standard batch that took 5 h runs at 0.8:

    >>> cycle_ratio(np.array([4 * 3600.0]), np.array([5 * 3600.0])).tolist()
    [0.8]
    """
    return ratio(standard_s, actual_s)


def per_kg(delta: np.ndarray, kg: np.ndarray) -> np.ndarray:
    """Specific use = meter delta / kg processed (L/kg, kg/kg or kWh/kg).

    >>> per_kg(np.array([48_000.0]), np.array([600.0])).tolist()  # water L/kg
    [80.0]
    """
    return ratio(delta, kg)


def ramp_error(
    temp_c: np.ndarray, setpoint_c: np.ndarray, mask: np.ndarray, axis: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """Ramp conformance: RMS and mean absolute tracking error (°C) where ``mask``.

    ``rms = sqrt(mean((T - SP)^2))``, ``mae = mean(|T - SP|)`` over the masked samples
    with both values (e.g. the HEAT and COOL minutes of a batch), along ``axis``.

    >>> t, sp = np.array([[80.0, 92.0, 100.0]]), np.array([[80.0, 90.0, 104.0]])
    >>> rms, mae = ramp_error(t, sp, np.array([[False, True, True]]))
    >>> rms.round(4).tolist(), mae.tolist()
    ([3.1623], [3.0])
    """
    err = np.asarray(temp_c, dtype=np.float64) - np.asarray(setpoint_c, dtype=np.float64)
    use = np.asarray(mask, dtype=bool) & ~np.isnan(err)
    e = np.where(use, err, 0.0)
    n = use.sum(axis=axis)
    return np.sqrt(ratio((e * e).sum(axis=axis), n)), ratio(np.abs(e).sum(axis=axis), n)


def step_mask(
    events: EventTable,
    machines: Sequence[str],
    ts_ms: np.ndarray,
    codes: Sequence[str] = RAMP_STEPS,
) -> np.ndarray:
    """(M, T) mask: the step running at each time (latest ``step`` event) is in ``codes``.

    >>> from analytics.events import EventTable
    >>> ev = EventTable.from_records([
    ...     {"machine": "d", "ts": 100, "kind": "step", "code": "HEAT"},
    ...     {"machine": "d", "ts": 300, "kind": "step", "code": "HOLD"}])
    >>> step_mask(ev, ["d"], np.array([0, 100, 200, 300])).tolist()
    [[False, True, True, False]]
    """
    steps = events.where(kind="step")
    m = machine_index(steps.machine, machines)
    steps, m = steps.take(m >= 0), m[m >= 0]
    n, t = len(machines), len(ts_ms)
    q_m = np.repeat(np.arange(n), t).reshape(n, t)
    k = latest_index(m, steps.ts_ms, q_m, np.broadcast_to(np.asarray(ts_ms), (n, t)))
    wanted = np.isin(steps.code.astype(str), list(codes))
    return (k >= 0) & wanted[np.maximum(k, 0)] if len(steps) else np.zeros((n, t), bool)


def span_sums(
    values: np.ndarray, ts_ms: np.ndarray, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Sum of ``values[row]`` over the buckets with time in ``[start, end)``, per span.

    ``values`` (M, T); ``rows``, ``starts``, ``ends`` shape (B,) (one span per batch);
    NaN values count as 0, a NaN start or end gives NaN.

    >>> span_sums(np.array([[1.0, 2.0, 4.0]]), np.array([0, 60, 120]), np.array([0]),
    ...           np.array([60.0]), np.array([180.0])).tolist()
    [6.0]
    """
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    cum = np.zeros((v.shape[0], v.shape[1] + 1))
    np.cumsum(v, axis=1, out=cum[:, 1:])
    s, e = np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)
    ok = ~(np.isnan(s) | np.isnan(e))
    lo = np.searchsorted(ts_ms, np.where(ok, s, 0), side="left")
    hi = np.searchsorted(ts_ms, np.where(ok, e, 0), side="left")
    return np.where(ok, cum[rows, hi] - cum[rows, lo], np.nan)
