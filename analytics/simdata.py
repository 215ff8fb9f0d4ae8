"""Simulator runs as analytics inputs: 60-s panels, events and ground-truth faults.

The evaluation (``analytics.evaluation``) and the tests need what the analytics service
reads from InfluxDB, without InfluxDB: :func:`simulate` steps a scenario's fleets in
memory and aggregates every tick into 60-s buckets following the panel convention
(``analytics.frame``): per numeric field ``f`` the bucket mean ``f`` and sample sd
``f:sd``; per counter (``*_total``) the last value ``f``, the first ``f:first`` and the
max ``f:max``; ``state_code`` the bucket's mode (ties: the code seen first, as InfluxQL's
``MODE()``). Samples are buffered for an hour and reduced block by block (``reduceat``
over time, vectorised across machines), so a week of 86 machines at 1 s stays small.

:func:`bucket_panel` is the same reduction on a given sample matrix; the analytics
service's tests compare it with what InfluxQL returns.

Example
-------
>>> import numpy as np
>>> panel = bucket_panel(
...     ["m1"],
...     np.array([0, 20_000, 40_000, 60_000]),
...     {"speed_rpm": np.array([[10.0, 20.0, 30.0, 5.0]]),
...      "picks_total": np.array([[1.0, 4.0, 9.0, 12.0]])},
... )
>>> panel.ts_ms.tolist(), panel["speed_rpm"].tolist(), panel["speed_rpm:sd"].tolist()
([0, 60000], [[20.0, 5.0]], [[10.0, nan]])
>>> panel["picks_total"].tolist(), panel["picks_total:first"].tolist()
([[9.0, 12.0]], [[1.0, 12.0]])
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analytics.events import EventTable
from analytics.frame import Panel
from gateway.inputs.base import Reading
from simulators.fleet import Fleet
from simulators.scenario import load_scenario
from simulators.signatures import KINDS

__all__ = [
    "DAY_MS",
    "FaultRecord",
    "SimRun",
    "TypeData",
    "bucket_panel",
    "simulate",
]

DAY_MS = 86_400_000
BUCKET_MS = 60_000
#: Default start of a simulated run: Monday 2026-01-05 00:00 UTC.
START_MS = 1_767_571_200_000
N_STATES = 8
_FLUSH_BUCKETS = 60


@dataclass(frozen=True)
class FaultRecord:
    """One ground-truth fault occurrence on one machine (hall faults: one per machine).

    Times are UTC epoch ms; ``detectable_ms`` is None for a fault too mild to ever pass
    3 baseline sds, ``failure_ms`` None for faults without a functional stop.
    """

    fault_id: str
    fault_type: str
    machine: str
    machine_type: str
    hall: str
    factory: str
    instrument: bool
    hall_scope: bool
    severity: float
    onset_ms: int
    detectable_ms: int | None
    failure_ms: int | None
    repaired_ms: int
    field: str | None = None


@dataclass
class TypeData:
    """One factory's machines of one type: panel, events and each machine's hall."""

    panel: Panel
    events: EventTable
    halls: dict[str, str]


@dataclass
class SimRun:
    """A simulated run: ``data[factory][machine_type]``, faults and raw label rows."""

    scenario: str
    seed: int
    start_ms: int
    end_ms: int
    step_s: float
    data: dict[str, dict[str, TypeData]]
    faults: list[FaultRecord]
    labels: list[dict[str, Any]] = field(default_factory=list)

    def panels(self, factory: str) -> dict[str, Panel]:
        """The panels of one factory keyed by machine type (what ``Monitor`` takes)."""
        return {mt: d.panel for mt, d in self.data[factory].items()}

    @property
    def machine_days(self) -> float:
        """Machines x simulated days over all factories."""
        n = sum(len(d.panel.machines) for f in self.data.values() for d in f.values())
        return n * (self.end_ms - self.start_ms) / DAY_MS


# -- bucket reduction --------------------------------------------------------------------


def _is_counter(name: str) -> bool:
    return name.endswith("_total")


def _segments(ts_ms: np.ndarray, step_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Bucket starts of time-sorted samples and the index where each bucket begins."""
    bucket = ts_ms - ts_ms % step_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    return bucket[starts], starts


def _mean_sd(x: np.ndarray, starts: np.ndarray, n_per: np.ndarray) -> tuple[np.ndarray, ...]:
    """Bucket mean and sample sd (ddof 1) of ``x`` (M, S), ignoring NaN."""
    valid = np.isfinite(x)
    filled = np.where(valid, x, 0.0)
    count = np.add.reduceat(valid, starts, axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.add.reduceat(filled, starts, axis=1) / count
        dev = np.where(valid, x - np.repeat(mean, n_per, axis=1), 0.0)
        var = np.add.reduceat(dev * dev, starts, axis=1) / (count - 1)
    mean[count == 0] = np.nan
    var[count < 2] = np.nan
    return mean, np.sqrt(var)


def _counter(x: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Last, first and max non-NaN value per bucket of a counter (M, S)."""
    valid = np.isfinite(x)
    idx = np.broadcast_to(np.arange(x.shape[1]), x.shape)
    last = np.maximum.reduceat(np.where(valid, idx, -1), starts, axis=1)
    first = np.minimum.reduceat(np.where(valid, idx, x.shape[1]), starts, axis=1)
    rows = np.arange(x.shape[0])[:, None]
    ok = last >= 0
    pick_last = x[rows, np.where(ok, last, 0)]
    pick_first = x[rows, np.where(ok, first, 0)]
    with np.errstate(invalid="ignore"):
        top = np.fmax.reduceat(x, starts, axis=1)
    nan = np.nan
    return np.where(ok, pick_last, nan), np.where(ok, pick_first, nan), np.where(ok, top, nan)


def _mode(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Most frequent integer code per bucket; a tie goes to the code seen first."""
    s = x.shape[1]
    idx = np.broadcast_to(np.arange(s), x.shape)
    best = np.full((x.shape[0], len(starts)), -np.inf)
    out = np.full(best.shape, np.nan)
    for code in range(N_STATES):
        hit = x == code
        count = np.add.reduceat(hit, starts, axis=1)
        first = np.minimum.reduceat(np.where(hit, idx, s), starts, axis=1)
        key = np.where(count > 0, count * (s + 1.0) - first, -np.inf)
        better = key > best
        out[better], best[better] = code, key[better]
    return out


def _reduce(
    ts_ms: np.ndarray, fields: Mapping[str, np.ndarray], step_ms: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Reduce time-sorted samples (M, S) per field into buckets (M, B)."""
    buckets, starts = _segments(np.asarray(ts_ms, dtype=np.int64), step_ms)
    n_per = np.diff(np.r_[starts, len(ts_ms)])
    out: dict[str, np.ndarray] = {}
    for name, raw in fields.items():
        x = np.asarray(raw, dtype=np.float64)
        if name == "state_code":
            out[name] = _mode(x, starts)
        elif _is_counter(name):
            out[name], out[f"{name}:first"], out[f"{name}:max"] = _counter(x, starts)
        else:
            out[name], out[f"{name}:sd"] = _mean_sd(x, starts, n_per)
    return buckets, out


def _grid(buckets: np.ndarray, values: dict[str, np.ndarray], start: int, stop: int, step: int):
    n_t = max(0, (stop - start) // step)
    col = (buckets - start) // step
    keep = (col >= 0) & (col < n_t)
    grid = {}
    for name, matrix in values.items():
        full = np.full((matrix.shape[0], n_t), np.nan)
        full[:, col[keep]] = matrix[:, keep]
        grid[name] = full
    return start + step * np.arange(n_t, dtype=np.int64), grid


def bucket_panel(
    machines: Sequence[str],
    ts_ms: np.ndarray,
    fields: Mapping[str, np.ndarray],
    *,
    step_ms: int = BUCKET_MS,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Panel:
    """Aggregate raw samples into a panel of ``step_ms`` buckets (the panel convention).

    Why: the evaluation must see exactly what the analytics service reads from
    InfluxDB (``GROUP BY time(60s)``), so both go through this one reduction.

    Parameters
    ----------
    machines
        Row names of the sample matrices.
    ts_ms
        (S,) sample times, UTC epoch ms, non-decreasing.
    fields
        Field name -> (M, S) samples, NaN where a machine has no value. Counters are
        the fields named ``*_total``; ``state_code`` holds integer state codes.
    step_ms, start_ms, end_ms
        Bucket width and the grid ``[start_ms, end_ms)``; by default the buckets
        spanned by ``ts_ms`` (starts aligned to multiples of ``step_ms``).

    Returns
    -------
    Panel
        ``f`` = mean and ``f:sd`` = sample sd (ddof 1, NaN below 2 samples) for numeric
        fields; ``f``/``f:first``/``f:max`` = last/first/max for counters;
        ``state_code`` = mode. Buckets without samples are NaN.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    if len(ts) == 0:
        return Panel(list(machines), np.zeros(0, dtype=np.int64), step_ms, {})
    start = int(ts[0] - ts[0] % step_ms) if start_ms is None else int(start_ms)
    stop = int(ts[-1] - ts[-1] % step_ms + step_ms) if end_ms is None else int(end_ms)
    buckets, values = _reduce(ts, fields, step_ms)
    grid, full = _grid(buckets, values, start, stop, step_ms)
    return Panel(list(machines), grid, step_ms, full)


class _GroupBuffer:
    """One machine group's samples, reduced into buckets an hour at a time."""

    def __init__(self, machines: list[str], start_ms: int, end_ms: int) -> None:
        self.machines = machines
        self.start, self.end = start_ms, end_ms
        n_t = (end_ms - start_ms) // BUCKET_MS
        self.n_t = n_t
        self.ts: list[int] = []
        self.rows: list[dict[str, np.ndarray]] = []
        self.values: dict[str, np.ndarray] = {}
        self.events: list[dict[str, Any]] = []
        self.shape = (len(machines), n_t)

    def add(self, reading: Reading) -> None:
        numeric = {k: v for k, v in reading.fields.items() if v.dtype.kind in "fiub"}
        self.ts.append(reading.ts_ms)
        self.rows.append(numeric)
        for i, record in reading.events:
            self.events.append({**record, "machine": self.machines[i]})

    def flush(self) -> None:
        if not self.ts:
            return
        ts = np.asarray(self.ts, dtype=np.int64)
        names = list(self.rows[0])
        fields = {n: np.stack([r[n] for r in self.rows], axis=1) for n in names}
        buckets, reduced = _reduce(ts, fields, BUCKET_MS)
        col = (buckets - self.start) // BUCKET_MS
        keep = (col >= 0) & (col < self.n_t)
        for name, matrix in reduced.items():
            target = self.values.setdefault(name, np.full(self.shape, np.nan))
            target[:, col[keep]] = matrix[:, keep]
        self.ts, self.rows = [], []

    def result(self, machine_type: str, halls: dict[str, str]) -> TypeData:
        self.flush()
        grid = self.start + BUCKET_MS * np.arange(self.n_t, dtype=np.int64)
        panel = Panel(list(self.machines), grid, BUCKET_MS, self.values)
        return TypeData(panel, EventTable.from_records(self.events), halls)


# -- running the fleets ----------------------------------------------------------------------


def _records(fleet: Fleet) -> list[FaultRecord]:
    injector = fleet.injector
    if injector is None:
        return []
    out = []
    for fault in injector.scheduled():
        kind = KINDS[fault.fault_type]
        for gi, idx in fault.targets:
            machine_type, machines = injector.groups[gi]
            for i in idx.tolist():
                a = machines[i]
                out.append(
                    FaultRecord(
                        fault.fault_id,
                        fault.fault_type,
                        a.machine,
                        machine_type,
                        a.hall,
                        a.factory,
                        kind.instrument,
                        kind.scope == "hall",
                        fault.severity,
                        fault.onset_ms,
                        fault.detectable_ms,
                        fault.failure_ms,
                        fault.repaired_ms,
                        fault.field,
                    )
                )
    return out


def _run_factory(
    fleet: Fleet,
    start_ms: int,
    end_ms: int,
    step_ms: int,
    progress: Callable[[str], None] | None,
) -> dict[str, TypeData]:
    buffers = [
        _GroupBuffer([m.machine for m in g.machines], start_ms, end_ms) for g in fleet.groups
    ]
    flush_every = max(1, _FLUSH_BUCKETS * BUCKET_MS // step_ms)
    total = (end_ms - start_ms) // step_ms
    t0, next_day = time.monotonic(), start_ms + DAY_MS
    for n, ts in enumerate(range(start_ms, end_ms, step_ms), start=1):
        for buffer, reading in zip(buffers, fleet.step(ts), strict=True):
            buffer.add(reading)
        if n % flush_every == 0:
            for buffer in buffers:
                buffer.flush()
        if progress is not None and ts + step_ms >= next_day:
            rate = n * len(fleet.machines) / max(time.monotonic() - t0, 1e-9)
            day = (ts + step_ms - start_ms) / DAY_MS
            progress(
                f"{fleet.factory}: simulated day {day:.0f} of {(end_ms - start_ms) / DAY_MS:.0f}"
                f" ({n}/{total} ticks, {rate:,.0f} machine-samples/s)"
            )
            next_day += DAY_MS
    return {
        g.machine_type: b.result(g.machine_type, {m.machine: m.hall for m in g.machines})
        for g, b in zip(fleet.groups, buffers, strict=True)
    }


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def simulate(
    scenario: str = "default",
    *,
    days: float = 7.0,
    seed: int = 1,
    step_s: float = 1.0,
    start_ms: int = START_MS,
    faults: bool = True,
    factories: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = _stderr,
) -> SimRun:
    """Run a scenario's fleets in memory and aggregate them into 60-s panels.

    Parameters
    ----------
    scenario
        Scenario name or path (``simulators.scenario.load_scenario``).
    days
        Length of the run in simulated days (rounded down to whole buckets).
    seed
        Fleet seed: the same seed gives the same machines, data and faults.
    step_s
        Simulator tick in seconds (1 = the gateway's rate). The models integrate over
        ``dt``, so 5-10 s runs are a quicker approximation (bucket sds then come from
        fewer, smoother samples).
    start_ms
        Run start, UTC epoch ms (a multiple of 60 000).
    faults
        False runs the control: the same fleet without any fault.
    factories
        Factory ids to run; default every factory of the scenario.
    progress
        Called with one line per simulated day (None: silent).
    """
    if start_ms % BUCKET_MS:
        raise ValueError("start_ms must be a multiple of 60 000")
    step_ms = round(step_s * 1000)
    if step_ms <= 0 or BUCKET_MS % step_ms:
        raise ValueError("step_s must divide 60 s")
    end_ms = start_ms + int(days * DAY_MS) // BUCKET_MS * BUCKET_MS
    config = load_scenario(scenario)
    ids = [f.id for f in config.factories] if factories is None else list(factories)
    data, records, labels = {}, [], []
    for factory in ids:
        fleet = Fleet(config, factory, seed=seed, end_ms=end_ms, faults=faults)
        data[factory] = _run_factory(fleet, start_ms, end_ms, step_ms, progress)
        records += _records(fleet)
        labels += fleet.labels()
    return SimRun(str(scenario), seed, start_ms, end_ms, step_s, data, records, labels)
