"""Labelled fault injection: schedule §3 faults over a fleet, apply them, write ground truth.

A :class:`FaultInjector` turns a plan of :class:`FaultSpec` into fault occurrences
(Poisson onsets per machine-week, or an exact count over the run), each with a
``fault_id``, a severity and a lead time. Every tick the fleet asks it for one
:class:`~simulators.model.GroupEffects` per group *before* stepping the groups (process
faults bend the physics, ``simulators.signatures``) and hands it the readings *after*
(instrument faults falsify the readings, ``simulators.instruments``, and the tick's
``fault_label`` records are appended). Label timestamps are the scheduled phase times,
so they do not depend on the tick length.

Phases (domain spec §3): ``onset``; ``detectable`` when the signature first passes 3
baseline sds (``signatures.BASELINE``; instrument faults: at onset; a fault too mild to
ever pass gets none); ``failure`` for faults with a functional stop (bearing wear,
needle burst, rope tangle), which then hold the machine in ``BREAKDOWN``; ``repaired``.
A hall-scope fault labels every machine it hits with the same ``fault_id``.

Example
-------
>>> from millwatch.contract import MachineAddress
>>> looms = [MachineAddress("c1", "f01", "weave1", f"l{i:04d}") for i in range(4)]
>>> plan = [FaultSpec("compressor_low_pressure", count=1, duration_h=(0.2, 0.2))]
>>> inj = FaultInjector(plan, [("loom_airjet", looms)], np.random.default_rng(1), 0, 60_000)
>>> fault = inj.scheduled()[0]
>>> fault.fault_id, fault.repaired_ms - fault.onset_ms
('F-000001', 720000)
>>> sag = inj.effects(fault.onset_ms + 360_000, 1.0)[0].add["air_supply_bar"]
>>> bool((sag < -0.5).all())  # every air-jet of the hall at once
True
"""

from __future__ import annotations

import csv
import dataclasses
import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from gateway.inputs.base import Reading
from millwatch.contract import MachineAddress
from simulators import instruments
from simulators.model import GroupEffects
from simulators.signatures import KINDS, FaultKind, Scope

__all__ = ["LABEL_COLUMNS", "PHASES", "ActiveFault", "FaultInjector", "FaultSpec"]

H_MS = 3_600_000
WEEK_MS = 168 * H_MS
PHASES = ("onset", "detectable", "failure", "repaired")
LABEL_COLUMNS = (
    "ts",
    "fault_id",
    "fault_type",
    "phase",
    "severity",
    "cluster",
    "factory",
    "hall",
    "machine",
    "machine_type",
    "field",
)

Targets = tuple[tuple[int, np.ndarray], ...]


@dataclass(frozen=True)
class FaultSpec:
    """One line of a fault plan.

    Exactly one of ``per_machine_week`` (Poisson rate per eligible machine, or per
    hall for ``scope="hall"``) and ``count`` (exact occurrences over the run window)
    is set. Empty ``machine_types`` and ``scope=None`` take the fault type's defaults
    (``signatures.KINDS``); ``duration_h`` replaces the lead time (onset to failure, or
    to the end), ``down_h`` the breakdown after a failure, so tests can compress both.

    >>> FaultSpec("bearing_wear", count=2, duration_h=(1.0, 2.0)).kind.down_h
    (4.0, 24.0)
    """

    fault_type: str
    machine_types: tuple[str, ...] = ()
    per_machine_week: float | None = None
    count: int | None = None
    severity: tuple[float, float] = (0.2, 1.0)
    duration_h: tuple[float, float] | None = None
    scope: Scope | None = None
    down_h: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.fault_type not in KINDS:
            raise ValueError(f"unknown fault_type {self.fault_type!r}")
        if (self.per_machine_week is None) == (self.count is None):
            raise ValueError(f"{self.fault_type}: set exactly one of per_machine_week and count")
        if (self.per_machine_week or 0) < 0 or (self.count or 0) < 0:
            raise ValueError(f"{self.fault_type}: rates and counts must be >= 0")
        lo, hi = self.severity
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"{self.fault_type}: severity must satisfy 0 <= lo <= hi <= 1")
        for name in ("duration_h", "down_h"):
            span = getattr(self, name)
            if span is not None and not 0.0 <= span[0] <= span[1]:
                raise ValueError(f"{self.fault_type}: {name} must satisfy 0 <= lo <= hi")
        if self.scope not in (None, "machine", "hall"):
            raise ValueError(f"{self.fault_type}: scope must be 'machine' or 'hall'")
        if self.kind.instrument and self.scope == "hall":
            raise ValueError(f"{self.fault_type}: instrument faults hit one machine")
        wrong = set(self.machine_types) - set(self.kind.machine_types + self.kind.companions)
        if wrong:
            raise ValueError(f"{self.fault_type} cannot hit {sorted(wrong)}: no signature there")

    @property
    def kind(self) -> FaultKind:
        """The catalogue entry of this fault type."""
        return KINDS[self.fault_type]

    @property
    def types(self) -> tuple[str, ...]:
        """Machine types this spec may hit."""
        return self.machine_types or self.kind.machine_types

    @property
    def hall_scope(self) -> bool:
        """True when one occurrence hits every eligible machine of a hall."""
        return (self.scope or self.kind.scope) == "hall"


@dataclass
class ActiveFault:
    """One scheduled fault occurrence; ``targets`` holds (group index, machine indices).

    ``failure_ms`` is None for faults without a functional stop; ``detectable_ms`` is
    None for one too mild to pass 3 sds. ``field`` is the reading field an instrument
    fault hits (drawn at its first tick); ``memory`` what it captured then.
    """

    fault_id: str
    fault_type: str
    severity: float
    onset_ms: int
    detectable_ms: int | None
    failure_ms: int | None
    repaired_ms: int
    targets: Targets
    params: dict[str, float] = dataclasses.field(default_factory=dict)
    field: str | None = None
    memory: np.ndarray | None = None

    def progress(self, ts_ms: int) -> float:
        """Share of the lead time elapsed: 0 at onset, 1 at failure (or the end)."""
        end = self.failure_ms if self.failure_ms is not None else self.repaired_ms
        return min(max((ts_ms - self.onset_ms) / max(end - self.onset_ms, 1), 0.0), 1.0)

    def phases(self) -> list[tuple[str, int]]:
        """The label phases this fault will emit, with their timestamps, in order."""
        times = (self.onset_ms, self.detectable_ms, self.failure_ms, self.repaired_ms)
        return [(phase, ts) for phase, ts in zip(PHASES, times, strict=True) if ts is not None]


class FaultInjector:
    """Schedules a fault plan over machine groups and applies it tick by tick.

    ``groups`` lists ``(machine_type, machines)`` in the order the fleet steps them;
    ``effects`` returns and ``finish`` expects one entry per group in that order. With
    ``end_ms`` the whole window is scheduled up front (``count`` specs need it);
    without, Poisson onsets are drawn a week at a time as the clock advances. The same
    rng state and tick times give the same faults, values and labels.
    """

    def __init__(
        self,
        plan: Sequence[FaultSpec],
        groups: Sequence[tuple[str, Sequence[MachineAddress]]],
        rng: np.random.Generator,
        start_ms: int,
        end_ms: int | None = None,
        *,
        id_prefix: str = "F",
    ) -> None:
        if end_ms is not None and end_ms <= start_ms:
            raise ValueError("end_ms must be after start_ms")
        if end_ms is None and any(spec.count is not None for spec in plan):
            raise ValueError("count specs need an end_ms to spread their onsets over")
        self.plan = tuple(plan)
        self.groups = [(mt, tuple(machines)) for mt, machines in groups]
        self._rng = rng
        self._prefix = id_prefix
        self._halls = [np.array([m.hall for m in ms], dtype=object) for _, ms in self.groups]
        self._units = [self._units_for(spec) for spec in self.plan]
        self._faults: list[ActiveFault] = []
        self._pending: list[tuple[int, int]] = []  # heap of (onset, fault index)
        self._phases: list[tuple[int, int, int, str]] = []  # heap of (ts, rank, index, phase)
        self._live: list[ActiveFault] = []
        self._resets: list[ActiveFault] = []
        self._busy: dict[tuple[str, Any], int] = {}
        self._offsets: list[dict[str, np.ndarray]] = [{} for _ in self.groups]
        self._labels: list[dict[str, Any]] = []
        self._last_ts: int | None = None
        self._end = end_ms
        self._horizon = start_ms
        if end_ms is not None:
            self._schedule(start_ms, end_ms)
            self._horizon = end_ms

    # -- scheduling -----------------------------------------------------------------

    def _units_for(self, spec: FaultSpec) -> list[tuple[Any, Targets]]:
        """What one occurrence may hit: (busy key, targets) per machine or per hall."""
        types = spec.types
        eligible = [gi for gi, (mt, _) in enumerate(self.groups) if mt in types]
        if not spec.hall_scope:
            return [
                ((gi, mi), ((gi, np.array([mi])),))
                for gi in eligible
                for mi in range(len(self.groups[gi][1]))
            ]
        reach = types + spec.kind.companions
        halls = sorted({str(h) for gi in eligible for h in self._halls[gi]})
        units = []
        for hall in halls:
            targets = tuple(
                (gi, np.flatnonzero(self._halls[gi] == hall))
                for gi, (mt, _) in enumerate(self.groups)
                if mt in reach and (self._halls[gi] == hall).any()
            )
            units.append((hall, targets))
        return units

    def _schedule(self, lo: int, hi: int) -> None:
        """Draw every spec's onsets in [lo, hi) and create the faults in onset order."""
        rng, span = self._rng, hi - lo
        drafts: list[tuple[int, int, int]] = []  # (onset, spec index, unit index)
        for si, spec in enumerate(self.plan):
            units = self._units[si]
            if not units:
                continue
            if spec.count is not None:
                slot = span / max(spec.count, 1)
                onsets = lo + (np.arange(spec.count) + rng.random(spec.count)) * slot
                which = rng.choice(len(units), spec.count, replace=spec.count > len(units))
            else:
                rate = float(spec.per_machine_week or 0.0) * len(units) * span / WEEK_MS
                n = int(rng.poisson(rate))
                onsets, which = lo + rng.random(n) * span, rng.integers(len(units), size=n)
            drafts += [(int(t), si, int(u)) for t, u in zip(onsets, which, strict=True)]
        for onset, si, ui in sorted(drafts):
            spec, (key, targets) = self.plan[si], self._units[si][ui]
            busy_key = (spec.fault_type, key)
            if spec.count is None and self._busy.get(busy_key, onset) > onset:
                continue  # that bearing is already wearing: no second onset on top
            fault = self._create(spec, onset, targets)
            self._busy[busy_key] = fault.repaired_ms
            self._add(fault)

    def _create(self, spec: FaultSpec, onset: int, targets: Targets) -> ActiveFault:
        rng, kind = self._rng, spec.kind
        severity = float(rng.uniform(*spec.severity))
        lead_ms = round(float(rng.uniform(*(spec.duration_h or kind.lead_h))) * H_MS)
        params = {"sign": 1.0 if rng.random() < 0.5 else -1.0, "zone": float(rng.integers(2, 6))}
        failure, end = None, onset + lead_ms
        if kind.down_h is not None:
            failure = end
            end += round(float(rng.uniform(*(spec.down_h or kind.down_h))) * H_MS)
        types = tuple(dict.fromkeys(self.groups[gi][0] for gi, _ in targets))
        share = kind.detectable_at(severity, params, types)
        detectable = None if share is None else onset + round(share * lead_ms)
        fault_id = f"{self._prefix}-{len(self._faults) + 1:06d}"
        return ActiveFault(
            fault_id, spec.fault_type, severity, onset, detectable, failure, end, targets, params
        )

    def _add(self, fault: ActiveFault) -> None:
        index = len(self._faults)
        self._faults.append(fault)
        heapq.heappush(self._pending, (fault.onset_ms, index))
        for phase, ts in fault.phases():
            heapq.heappush(self._phases, (ts, PHASES.index(phase), index, phase))

    def _ensure_scheduled(self, ts_ms: int) -> None:
        while self._end is None and self._horizon <= ts_ms:
            self._schedule(self._horizon, self._horizon + WEEK_MS)
            self._horizon += WEEK_MS

    def _advance(self, ts_ms: int) -> None:
        self._ensure_scheduled(ts_ms)
        while self._pending and self._pending[0][0] <= ts_ms:
            fault = self._faults[heapq.heappop(self._pending)[1]]
            (self._resets if fault.fault_type == "counter_reset" else self._live).append(fault)
        self._live = [f for f in self._live if f.repaired_ms > ts_ms]

    # -- per tick -------------------------------------------------------------------

    def effects(self, ts_ms: int, dt: float) -> list[GroupEffects]:
        """Process-fault effects for the step ending at ``ts_ms``, one per group.

        Live faults of one type on one group are evaluated in one vectorised call;
        ``dt`` is the step length in seconds (the effects depend only on the time).
        """
        self._advance(ts_ms)
        out = [GroupEffects(len(machines)) for _, machines in self.groups]
        batches: dict[tuple[str, int, float], list[tuple[ActiveFault, np.ndarray]]] = {}
        for fault in self._live:
            if KINDS[fault.fault_type].instrument:
                continue
            failed = fault.failure_ms is not None and ts_ms >= fault.failure_ms
            for gi, idx in fault.targets:
                if failed:  # held in BREAKDOWN until repaired
                    if out[gi].breakdown is None:
                        out[gi].breakdown = np.zeros(out[gi].n, dtype=bool)
                    out[gi].breakdown[idx] = True
                else:
                    key = (fault.fault_type, gi, fault.params["zone"])
                    batches.setdefault(key, []).append((fault, idx))
        for (fault_type, gi, zone), members in batches.items():
            faults = [f for f, _ in members]
            p = np.array([f.progress(ts_ms) for f in faults])
            severity = np.array([f.severity for f in faults])
            params = {"sign": np.array([f.params["sign"] for f in faults]), "zone": zone}
            signature = KINDS[fault_type].effects(p, severity, params, self.groups[gi][0])
            counts = [len(idx) for _, idx in members]
            machines = np.concatenate([idx for _, idx in members])
            for (op, key), value in signature.items():
                per_machine = np.repeat(np.broadcast_to(value, p.shape), counts)
                _combine(out[gi], op, key, machines, per_machine)
        return out

    def finish(self, ts_ms: int, readings: Sequence[Reading]) -> None:
        """Apply instrument faults to this tick's readings and append its labels."""
        if len(readings) != len(self.groups):
            raise ValueError(f"expected {len(self.groups)} readings, one per group")
        self._advance(ts_ms)
        dt = 1.0 if self._last_ts is None else max((ts_ms - self._last_ts) / 1000, 0.0)
        self._last_ts = ts_ms
        for fault in self._resets:
            self._reset_counter(fault, readings)
        self._resets.clear()
        for gi, offsets in enumerate(self._offsets):
            fields = readings[gi].fields
            for name, offset in offsets.items():
                if name in fields:
                    fields[name] = fields[name] - offset
        for fault in self._live:
            if KINDS[fault.fault_type].instrument:
                self._falsify(fault, ts_ms, dt, readings)
        self._emit_labels(ts_ms, readings)

    def _pick_field(self, fault: ActiveFault, reading: Reading, i: int, counters: bool) -> None:
        names = instruments.counter_fields if counters else instruments.analog_fields
        fields = reading.fields
        usable = [
            n for n in names(reading.machine_type) if n in fields and np.isfinite(fields[n][i])
        ]
        if usable:
            fault.field = usable[int(self._rng.integers(len(usable)))]

    def _reset_counter(self, fault: ActiveFault, readings: Sequence[Reading]) -> None:
        (gi, idx), reading = fault.targets[0], readings[fault.targets[0][0]]
        i = int(idx[0])
        self._pick_field(fault, reading, i, counters=True)
        if fault.field is None:
            return
        offsets = self._offsets[gi].setdefault(fault.field, np.zeros(len(self.groups[gi][1])))
        offsets[i] = reading.fields[fault.field][i]  # the raw total becomes the new zero
        record = {"ts": fault.onset_ms, "kind": "counter_reset", "code": fault.field}
        reading.events.append((i, record))

    def _falsify(
        self, fault: ActiveFault, ts_ms: int, dt: float, readings: Sequence[Reading]
    ) -> None:
        gi, idx = fault.targets[0]
        reading, i = readings[gi], int(idx[0])
        if fault.field is None:
            self._pick_field(fault, reading, i, counters=False)
            if fault.field is None:
                return
            value = float(reading.fields[fault.field][i])
            scale = instruments.noise_scale(fault.field, value)
            fault.memory = np.array([value, scale])
        if fault.field not in reading.fields or fault.memory is None:
            return
        values = reading.fields[fault.field] = reading.fields[fault.field].astype(np.float64)
        kind, scale = fault.fault_type, float(fault.memory[1])
        if kind == "sensor_stuck":
            instruments.freeze(values, i, fault.memory)
        elif kind == "sensor_drift":
            p = fault.progress(ts_ms)
            instruments.drift(values, i, p, fault.severity, fault.params["sign"], scale)
        elif kind == "sensor_spike":
            instruments.spike(values, i, dt, fault.severity, scale, self._rng)
        elif kind == "sensor_dropout":
            instruments.dropout(values, i)

    def _emit_labels(self, ts_ms: int, readings: Sequence[Reading]) -> None:
        while self._phases and self._phases[0][0] <= ts_ms:
            ts, _, index, phase = heapq.heappop(self._phases)
            fault = self._faults[index]
            record = {
                "ts": ts,
                "fault_id": fault.fault_id,
                "fault_type": fault.fault_type,
                "phase": phase,
                "severity": round(fault.severity, 3),
            }
            for gi, idx in fault.targets:
                machine_type, machines = self.groups[gi]
                for i in idx.tolist():
                    readings[gi].labels.append((i, dict(record)))
                    a = machines[i]
                    self._labels.append(
                        {
                            **record,
                            "cluster": a.cluster,
                            "factory": a.factory,
                            "hall": a.hall,
                            "machine": a.machine,
                            "machine_type": machine_type,
                            "field": fault.field,
                        }
                    )

    # -- inspection and export ------------------------------------------------------

    def scheduled(self) -> list[ActiveFault]:
        """Every fault scheduled so far, in onset order within each scheduling window."""
        return list(self._faults)

    def active(self, ts_ms: int) -> list[ActiveFault]:
        """Faults between onset and repair at ``ts_ms``."""
        self._ensure_scheduled(ts_ms)
        return [f for f in self._faults if f.onset_ms <= ts_ms < f.repaired_ms]

    def labels_table(self) -> list[dict[str, Any]]:
        """Every label emitted so far, for evaluations: one row per machine.

        Rows carry the label record, the machine's address and type, and ``field``: the
        reading field an instrument fault hit (None for process faults).
        """
        return [dict(row) for row in self._labels]

    def export(self, path: str | Path) -> Path:
        """Write :meth:`labels_table` as CSV (``.csv``) or JSON lines (anything else)."""
        path = Path(path)
        rows = self.labels_table()
        if path.suffix == ".csv":
            with path.open("w", newline="") as out:
                writer = csv.DictWriter(out, LABEL_COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
        else:
            path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
        return path


def _combine(effects: GroupEffects, op: str, key: str, idx: np.ndarray, values: np.ndarray) -> None:
    """Stack faults' effects: multipliers multiply, offsets add (repeated machines too)."""
    if op == "add":
        np.add.at(effects.add.setdefault(key, np.zeros(effects.n)), idx, values)
    else:
        table = effects.mul if op == "mul" else effects.stop_rate_mul
        np.multiply.at(table.setdefault(key, np.ones(effects.n)), idx, values)
