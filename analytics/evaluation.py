"""Event-level evaluation of the anomaly monitor against the simulator's fault labels.

``millwatch eval`` answers "would the alarms have caught the injected faults, how early,
and how often do they cry wolf?" A run of the scenario (``analytics.simdata``) gives
panels and ground truth; the :class:`~analytics.monitor.Monitor` is fitted on the leading
``train_days`` of the run WITHOUT labels (faults may be active then: its baselines are
robust) and scores the rest. Matching rules (:func:`match`):

- a fault is *detected* when an alarm on one of its machines starts inside
  ``[onset, repaired + grace]``; a hall fault also by an alarm on any machine of its hall
  or a hall alarm listing one of its machines;
- an alarm that starts inside no fault window of its machine(s) (faults of the training
  span included) is a *false alarm*;
- only faults with onset inside the scored span that become *detectable* (the signature
  passes 3 baseline sds, as labelled by the simulator) before its end are counted;
  the others are listed separately and their alarms are not false alarms either;
- *correct kind*: a matching alarm says ``instrument:<kind>`` for an instrument fault of
  that kind (``sensor_stuck`` -> ``stuck``...), ``process``/``hall`` for a process fault;
- *lead time* = failure - first detection, for faults whose failure lies in the span.

Precision = alarms matching a fault / all alarms; recall = detected / counted faults;
F1 = 2PR / (P + R). False alarms cannot be attributed to a fault type, so a fault
type's precision charges it every false alarm on the machine types it can hit (a
conservative figure); the overall row is the plain one.

Tune on some seeds, report on others: :func:`run_eval` fits the monitor with frozen
parameters on every report seed and prints which seeds the parameters were tuned on.

Example
-------
>>> from types import SimpleNamespace as A
>>> fault = Fault("F1", "bearing_wear", ("l1",), "h1", False, False, 100, 150, 300, 400)
>>> alarms = [A(machine="l1", start_ms=200, end_ms=250, kind="process"),
...           A(machine="l2", start_ms=200, end_ms=None, kind="process")]
>>> m = match(alarms, [fault], {"l1": "h1", "l2": "h1"}, grace_ms=0)
>>> m.detected["F1"], m.false_alarms
(200, 1)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from analytics import simdata
from analytics.events import EventTable
from analytics.frame import Panel
from analytics.monitor import Monitor
from simulators.signatures import KINDS

__all__ = [
    "EvalReport",
    "Fault",
    "Match",
    "TypeRow",
    "faults_from_records",
    "main",
    "match",
    "run_eval",
    "summarise",
]

H_MS = 3_600_000
DAY_MS = 24 * H_MS
#: Instrument fault type -> the kind an alarm must name to be classified correctly.
INSTRUMENT_KIND = {
    "sensor_stuck": "instrument:stuck",
    "sensor_drift": "instrument:drift",
    "sensor_spike": "instrument:spike",
    "sensor_dropout": "instrument:dropout",
    "counter_reset": "instrument:counter_reset",
}


@dataclass(frozen=True)
class Fault:
    """One fault occurrence (all machines of a hall fault together); times in epoch ms."""

    fault_id: str
    fault_type: str
    machines: tuple[str, ...]
    hall: str
    instrument: bool
    hall_scope: bool
    onset_ms: int
    detectable_ms: int | None
    failure_ms: int | None
    repaired_ms: int


def faults_from_records(records: Iterable[Any]) -> list[Fault]:
    """Group per-machine fault records (``simdata.FaultRecord``) by ``fault_id``."""
    groups: dict[str, list[Any]] = defaultdict(list)
    for r in records:
        groups[r.fault_id].append(r)
    out = []
    for fault_id, rows in groups.items():
        r = rows[0]
        out.append(
            Fault(
                fault_id,
                r.fault_type,
                tuple(x.machine for x in rows),
                r.hall,
                r.instrument,
                r.hall_scope,
                r.onset_ms,
                r.detectable_ms,
                r.failure_ms,
                r.repaired_ms,
            )
        )
    return sorted(out, key=lambda f: (f.onset_ms, f.fault_id))


@dataclass
class Match:
    """Result of :func:`match` for one factory.

    ``detected`` maps fault id -> start of its first matching alarm; ``kind_ok`` holds
    the fault ids with a correctly classified matching alarm; ``alarm_fault`` maps each
    alarm index to the fault id it matched (None: a false alarm).
    """

    detected: dict[str, int] = field(default_factory=dict)
    kind_ok: set[str] = field(default_factory=set)
    alarm_fault: list[str | None] = field(default_factory=list)
    alarm_types: list[str] = field(default_factory=list)

    @property
    def false_alarms(self) -> int:
        """Alarms that matched no fault window."""
        return sum(f is None for f in self.alarm_fault)


def _alarm_machines(alarm: Any) -> tuple[str, ...]:
    listed = getattr(alarm, "machines", None)
    return tuple(listed) if listed else (alarm.machine,)


def _kind_ok(fault: Fault, kind: str) -> bool:
    if fault.instrument:
        return kind == INSTRUMENT_KIND.get(fault.fault_type)
    return not kind.startswith("instrument")


def _reach(fault: Fault, halls: Mapping[str, str]) -> set[str]:
    """Machines whose alarms may detect ``fault``: its own, or its hall's for hall faults."""
    if not fault.hall_scope:
        return set(fault.machines)
    return {m for m, h in halls.items() if h == fault.hall} | set(fault.machines)


def match(
    alarms: Sequence[Any],
    faults: Sequence[Fault],
    halls: Mapping[str, str],
    *,
    grace_ms: int = H_MS,
    bucket_ms: int = 60_000,
) -> Match:
    """Match alarms (``machine``, ``start_ms``, ``kind``, optional ``machines``) to faults.

    An alarm matches a fault when one of its machines is in the fault's reach and it
    starts in ``[onset, repaired + grace]`` (an alarm stamped with the start of the
    ``bucket_ms`` bucket that holds the onset counts); each alarm is credited to the matching
    fault with the latest onset (the most recent cause), every matching fault counts as
    detected. ``halls`` maps machine -> hall (hall-scope faults reach the whole hall).
    """
    reach = [_reach(f, halls) for f in faults]
    result = Match()
    for alarm in alarms:
        machines = set(_alarm_machines(alarm))
        kind = str(getattr(alarm, "kind", "process"))
        credited: Fault | None = None
        for fault, near in zip(faults, reach, strict=True):
            if not machines & near:
                continue
            if not fault.onset_ms - bucket_ms < alarm.start_ms <= fault.repaired_ms + grace_ms:
                continue
            first = result.detected.get(fault.fault_id)
            if first is None or alarm.start_ms < first:
                result.detected[fault.fault_id] = alarm.start_ms
            if _kind_ok(fault, kind):
                result.kind_ok.add(fault.fault_id)
            if credited is None or fault.onset_ms > credited.onset_ms:
                credited = fault
        result.alarm_fault.append(credited.fault_id if credited else None)
        result.alarm_types.append(str(getattr(alarm, "machine_type", "")))
    return result


@dataclass
class TypeRow:
    """One line of the table: a fault type, a machine type or the overall figures."""

    name: str
    faults: int = 0
    detected: int = 0
    kind_ok: int = 0
    alarms: int = 0
    true_alarms: int = 0
    precision: float = float("nan")
    recall: float = float("nan")
    f1: float = float("nan")
    lead_h_median: float = float("nan")
    degradations: int = 0
    before_failure: int = 0
    false_alarms: int = 0


@dataclass
class EvalReport:
    """Everything ``millwatch eval`` prints, per report seed and pooled over them."""

    scenario: str
    days: float
    train_days: float
    step_s: float
    tune_seed: tuple[int, ...]
    seeds: list[int]
    params: dict[str, Any]
    by_type: list[TypeRow]
    overall: TypeRow
    machine_days: float
    false_per_machine_day: float
    excluded: dict[str, int]
    per_seed: dict[int, dict[str, float]]
    runtime_s: dict[str, float]
    missed_idle: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        return asdict(self)

    def table(self) -> str:
        """The plain-text table ``millwatch eval`` prints."""
        return format_report(self)


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _f1(p: float, r: float) -> float:
    if np.isnan(p) or np.isnan(r):
        return float("nan")
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _finish(row: TypeRow, leads: list[float]) -> TypeRow:
    row.precision = _ratio(row.true_alarms, row.alarms)
    row.recall = _ratio(row.detected, row.faults)
    row.f1 = _f1(row.precision, row.recall)
    row.lead_h_median = float(np.median(leads)) if leads else float("nan")
    return row


@dataclass
class _Pool:
    """Counted faults and alarms pooled over factories and seeds."""

    faults: list[tuple[Fault, str]] = field(default_factory=list)  # (fault, machine type)
    detected: dict[str, int] = field(default_factory=dict)
    kind_ok: set[str] = field(default_factory=set)
    alarm_fault: list[str | None] = field(default_factory=list)
    alarm_types: list[str] = field(default_factory=list)
    fault_type_of: dict[str, str] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    span_end: dict[str, int] = field(default_factory=dict)
    idle: set[str] = field(default_factory=set)


def summarise(pool: _Pool, machine_types: Mapping[str, Sequence[str]]) -> list[TypeRow]:
    """Rows per fault type, then the overall row (last).

    ``machine_types`` maps a fault type to the machine types it can hit: a fault type's
    precision charges it every false alarm on those types (conservative).
    """
    false_by_type: dict[str, int] = defaultdict(int)
    for fid, mt in zip(pool.alarm_fault, pool.alarm_types, strict=True):
        if fid is None:
            false_by_type[mt] += 1
    true = [fid for fid in pool.alarm_fault if fid is not None]
    rows = []
    for name in sorted({f.fault_type for f, _ in pool.faults}):
        row = TypeRow(name)
        leads = _count(row, [f for f, _ in pool.faults if f.fault_type == name], pool)
        row.true_alarms = sum(pool.fault_type_of.get(fid) == name for fid in true)
        row.false_alarms = sum(false_by_type[mt] for mt in machine_types.get(name, ()))
        row.alarms = row.true_alarms + row.false_alarms
        rows.append(_finish(row, leads))
    overall = TypeRow("OVERALL")
    leads = _count(overall, [f for f, _ in pool.faults], pool)
    overall.true_alarms, overall.false_alarms = len(true), sum(false_by_type.values())
    overall.alarms = len(pool.alarm_fault)
    rows.append(_finish(overall, leads))
    return rows


def _count(row: TypeRow, chosen: Sequence[Fault], pool: _Pool) -> list[float]:
    leads = []
    for fault in chosen:
        row.faults += 1
        first = pool.detected.get(fault.fault_id)
        row.detected += first is not None
        row.kind_ok += fault.fault_id in pool.kind_ok
        end = pool.span_end.get(fault.fault_id, 0)
        if fault.failure_ms is not None and fault.failure_ms < end:
            row.degradations += 1
            if first is not None and first < fault.failure_ms:
                row.before_failure += 1
                leads.append((fault.failure_ms - first) / H_MS)
    return leads


def _share(x: float) -> str:
    return "-" if np.isnan(x) else f"{100 * x:.1f} %"


def _pct(x: float) -> str:
    return "   -" if np.isnan(x) else f"{100 * x:4.0f}"


def format_report(report: EvalReport) -> str:
    """The report as a plain-text table with its header and footnotes."""
    head = (
        f"millwatch eval: scenario {report.scenario}, {report.days:g} days per run at "
        f"{report.step_s:g} s ticks; monitor fit on the first {report.train_days:g} days "
        f"(no labels), scored on the rest.\nParameters tuned on seed(s) "
        f"{', '.join(map(str, report.tune_seed))}; "
        f"figures below pool report seeds {', '.join(map(str, report.seeds))} "
        "with the parameters frozen."
    )
    if set(report.tune_seed) & set(report.seeds):
        head += " The tune seed is among them: these figures are in-sample."
    cols = (
        f"{'fault type':26s} {'faults':>6s} {'det':>4s} {'kind':>4s} {'recall%':>7s} "
        f"{'prec%':>5s} {'F1%':>4s} {'alarms':>6s} {'lead_h':>6s} {'pre-fail':>8s}"
    )
    lines = [head, "", cols, "-" * len(cols)]
    for row in [*report.by_type, report.overall]:
        if row.name == "OVERALL":
            lines.append("-" * len(cols))
        lead = "     -" if np.isnan(row.lead_h_median) else f"{row.lead_h_median:6.1f}"
        pre = f"{row.before_failure}/{row.degradations}" if row.degradations else "-"
        lines.append(
            f"{row.name:26s} {row.faults:6d} {row.detected:4d} {row.kind_ok:4d} "
            f"{_pct(row.recall):>7s} {_pct(row.precision):>5s} {_pct(row.f1):>4s} "
            f"{row.alarms:6d} {lead:>6s} {pre:>8s}"
        )
    o = report.overall
    pre_share = _ratio(o.before_failure, o.degradations)
    lines += [
        "",
        f"false alarms: {o.false_alarms} over {report.machine_days:.0f} machine-days scored = "
        f"{report.false_per_machine_day:.3f} per machine-day "
        f"({7 * report.false_per_machine_day:.2f} per machine-week; target <= 1)",
        f"overall event F1 {100 * o.f1:.1f} % (target >= 80); detected before failure "
        f"{o.before_failure}/{o.degradations} = {_share(pre_share)} of degradation "
        "faults whose failure lies in the scored span (target >= 70)",
        "det = detected (an alarm on its machine/hall started in [onset, repaired + grace]);"
        " kind = a matching alarm named the right kind (instrument:<kind> / process);"
        " lead_h = median hours from first alarm to failure.",
        "Not counted: " + ", ".join(f"{k} {v}" for k, v in sorted(report.excluded.items())),
        f"Of the {o.faults - o.detected} missed faults, {report.missed_idle} struck while their "
        "machine did not run at all (a shift off, a weekend): no process signal moved.",
    ]
    for seed, figures in sorted(report.per_seed.items()):
        lines.append(
            f"seed {seed}: F1 {100 * figures['f1']:.1f} %, recall "
            f"{_pct(figures['recall']).strip()} %, precision {_pct(figures['precision']).strip()}"
            f" %, false alarms/machine-week {7 * figures['fa_per_machine_day']:.2f}, "
            f"before failure {figures['before_failure']:.0f}/{figures['degradations']:.0f}"
        )
    runtime = ", ".join(f"{k} {v:.0f} s" for k, v in report.runtime_s.items())
    lines.append(f"runtime: {runtime}")
    return "\n".join(lines)


# -- running it ----------------------------------------------------------------------------

#: Frozen monitor parameters, tuned on ``TUNE_SEED`` only: the ``Monitor`` defaults, which
#: are where they are set (one place), without the per-factory hall map.
PARAMS: dict[str, Any] = {k: v for k, v in Monitor().get_params().items() if k != "halls"}
#: Seeds used for what. Seed 1 tuned the first monitor; seeds 1 and 5, and from the event
#: signals on also seed 12 (a run generated for tuning), every change since. Seeds 2, 3,
#: 4, 6 and 7 were the development set; seeds 8-11 were held out for one report (F1
#: 80.2 %) and, that report made, joined the development set: the nine seeds 2-4 and 6-11
#: are checked, a few times per change, for not regressing (so figures on them are
#: optimistic). Seeds 13-16 are generated fresh and held out for one final report with
#: the frozen parameters.
TUNE_SEED: tuple[int, ...] = (1, 5, 12)
DEV_SEEDS = (2, 3, 4, 6, 7, 8, 9, 10, 11)
REPORT_SEEDS = (13, 14, 15, 16)


def _split(panel: Any, cut_ms: int) -> tuple[Any, Any]:
    n = int(np.searchsorted(panel.ts_ms, cut_ms))
    train = Panel(panel.machines, panel.ts_ms[:n], panel.step_ms, {})
    test = Panel(panel.machines, panel.ts_ms[n:], panel.step_ms, {})
    for name, matrix in panel.values.items():
        train.values[name], test.values[name] = matrix[:, :n], matrix[:, n:]
    return train, test


def _split_events(events: EventTable, cut_ms: int) -> tuple[EventTable, EventTable]:
    """Events before ``cut_ms`` (training) and from it on (scored), as for the panels."""
    before = events.ts_ms < cut_ms
    return events.take(before), events.take(~before)


def evaluate_run(run: Any, train_days: float, params: Mapping[str, Any], pool: _Pool) -> dict:
    """Fit and score the monitor on one simulated run per factory; add to ``pool``."""
    cut = run.start_ms + int(train_days * DAY_MS)
    faults = faults_from_records(run.faults)
    seen: dict[str, float] = defaultdict(float)
    t_fit = t_score = 0.0
    for factory, types in run.data.items():
        halls = {m: h for d in types.values() for m, h in d.halls.items()}
        split = {mt: _split(d.panel, cut) for mt, d in types.items()}
        events = {mt: _split_events(d.events, cut) for mt, d in types.items()}
        t0 = time.monotonic()
        monitor = Monitor(**params, halls=halls).fit(
            {mt: s[0] for mt, s in split.items()}, {mt: e[0] for mt, e in events.items()}
        )
        t1 = time.monotonic()
        scores = monitor.score(
            {mt: s[1] for mt, s in split.items()}, {mt: e[1] for mt, e in events.items()}
        )
        alarms = monitor.alarms(scores)
        t_fit, t_score = t_fit + t1 - t0, t_score + time.monotonic() - t1
        mine = [f for f in faults if set(f.machines) & set(halls)]
        result = match(alarms, mine, halls, grace_ms=int(params.get("grace_h", 1) * H_MS))
        _add(pool, run, factory, mine, result, cut, types)
        for fid in result.alarm_fault:
            seen["alarms"] += 1
            seen["false"] += fid is None
    seen["fit_s"], seen["score_s"] = t_fit, t_score
    return seen


def _add(pool: _Pool, run: Any, factory: str, faults, result: Match, cut: int, types) -> None:
    mtype = {m: mt for mt, d in types.items() for m in d.panel.machines}
    for fault in faults:
        key = f"{run.seed}:{fault.fault_id}"
        pool.fault_type_of[key] = fault.fault_type
        if not cut <= fault.onset_ms < run.end_ms:
            pool.excluded["onset in training span" if fault.onset_ms < cut else "after end"] += 1
            continue
        if fault.detectable_ms is None or fault.detectable_ms >= run.end_ms:
            pool.excluded["never detectable (signature < 3 sd)"] += 1
            continue
        pool.faults.append((_renamed(fault, key), mtype.get(fault.machines[0], "")))
        if _idle(fault, types, run.end_ms):
            pool.idle.add(key)
        pool.span_end[key] = run.end_ms
        if fault.fault_id in result.detected:
            pool.detected[key] = result.detected[fault.fault_id]
        if fault.fault_id in result.kind_ok:
            pool.kind_ok.add(key)
    for fid, mt in zip(result.alarm_fault, result.alarm_types, strict=True):
        pool.alarm_fault.append(None if fid is None else f"{run.seed}:{fid}")
        pool.alarm_types.append(mt)


def _idle(fault: Fault, types: Mapping[str, Any], end_ms: int) -> bool:
    """True when none of the fault's machines ran (state RUN) between onset and repair."""
    for data in types.values():
        panel = data.panel
        rows = [i for i, m in enumerate(panel.machines) if m in fault.machines]
        if not rows:
            continue
        if "state_code" not in panel.values:
            return False
        a, b = np.searchsorted(panel.ts_ms, [fault.onset_ms, min(fault.repaired_ms, end_ms) + 1])
        if np.any(panel["state_code"][rows, a : max(b, a + 1)] == 1):
            return False
    return True


def _renamed(fault: Fault, key: str) -> Fault:
    return Fault(key, *[getattr(fault, f) for f in Fault.__dataclass_fields__][1:])


def _reach_types() -> dict[str, tuple[str, ...]]:
    return {name: k.machine_types + k.companions for name, k in KINDS.items()}


def _seed_figures(pool: _Pool, machine_days: float) -> dict[str, float]:
    overall = summarise(pool, _reach_types())[-1]
    return {
        "f1": overall.f1,
        "recall": overall.recall,
        "precision": overall.precision,
        "fa_per_machine_day": _ratio(overall.false_alarms, machine_days),
        "before_failure": overall.before_failure,
        "degradations": overall.degradations,
        "faults": overall.faults,
        "false_alarms": overall.false_alarms,
    }


def run_eval(
    scenario: str = "default",
    days: float = 7.0,
    seeds: Sequence[int] = REPORT_SEEDS,
    tune_seed: int | Sequence[int] = TUNE_SEED,
    step_s: float = 1.0,
    *,
    train_days: float = 1.5,
    params: Mapping[str, Any] | None = None,
    runs: Mapping[int, Any] | None = None,
    progress: Any = None,
) -> EvalReport:
    """Simulate ``seeds``, fit the monitor on each run's first ``train_days``, score the rest.

    Parameters
    ----------
    scenario, days, step_s
        What to simulate (``analytics.simdata.simulate``).
    seeds
        Report seeds; the figures pool them. Never the tune seed in an honest report.
    tune_seed
        The seed(s) the frozen ``params`` were tuned on (printed, not run).
    train_days
        Leading span each monitor learns from (labels unused); faults with onset inside
        it are not counted.
    params
        Monitor parameters; default the frozen :data:`PARAMS`.
    runs
        Pre-computed ``simdata.SimRun`` per seed (tests, tuning); others are simulated.
    """
    params = dict(PARAMS if params is None else params)
    pool, per_seed, machine_days = _Pool(), {}, 0.0
    runtime: dict[str, float] = defaultdict(float)
    for seed in seeds:
        t0 = time.monotonic()
        run = (runs or {}).get(seed)
        if run is None:
            kwargs = {"progress": progress} if progress is not None else {}
            run = simdata.simulate(scenario, days=days, seed=seed, step_s=step_s, **kwargs)
        runtime["simulate"] += time.monotonic() - t0
        seed_pool = _Pool()
        seen = evaluate_run(run, train_days, params, seed_pool)
        runtime["fit"] += seen["fit_s"]
        runtime["score+alarms"] += seen["score_s"]
        scored = run.machine_days * (1 - train_days / days)
        machine_days += scored
        per_seed[seed] = _seed_figures(seed_pool, scored)
        _merge(pool, seed_pool)
    rows = summarise(pool, _reach_types())
    overall = rows.pop()
    return EvalReport(
        str(scenario),
        days,
        train_days,
        step_s,
        (tune_seed,) if isinstance(tune_seed, int) else tuple(tune_seed),
        list(seeds),
        params,
        rows,
        overall,
        machine_days,
        _ratio(overall.false_alarms, machine_days),
        dict(pool.excluded),
        per_seed,
        dict(runtime),
        sum(
            1 for f, _ in pool.faults if f.fault_id in pool.idle and f.fault_id not in pool.detected
        ),
    )


def _merge(pool: _Pool, other: _Pool) -> None:
    pool.faults += other.faults
    pool.detected.update(other.detected)
    pool.kind_ok |= other.kind_ok
    pool.alarm_fault += other.alarm_fault
    pool.alarm_types += other.alarm_types
    pool.fault_type_of.update(other.fault_type_of)
    pool.span_end.update(other.span_end)
    pool.idle |= other.idle
    for k, v in other.excluded.items():
        pool.excluded[k] += v


def main(argv: Sequence[str] | None = None) -> int:
    """``millwatch eval``: simulate, fit, score, match and print the table; 0 on success."""
    parser = argparse.ArgumentParser(prog="millwatch eval", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--train-days", type=float, default=1.5)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(REPORT_SEEDS))
    parser.add_argument("--tune-seed", type=int, nargs="+", default=list(TUNE_SEED))
    parser.add_argument("--step-s", type=float, default=1.0)
    parser.add_argument("--json", dest="json_out", default=None, help="also write the report")
    args = parser.parse_args(argv)
    if set(args.tune_seed) & set(args.seeds):
        print(f"warning: report seeds include a tune seed {args.tune_seed}", file=sys.stderr)
    report = run_eval(
        args.scenario,
        args.days,
        args.seeds,
        args.tune_seed,
        args.step_s,
        train_days=args.train_days,
    )
    print(report.table())
    if args.json_out:
        with open(args.json_out, "w") as out:
            json.dump(report.to_json(), out, indent=2, default=float)
    return 0
