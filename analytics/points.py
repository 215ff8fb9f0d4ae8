"""Line protocol for what analytics store: KPI rows, anomaly scores, alarms, roll-ups.

Every point's series (tags) and timestamp are fixed by what it describes (a machine's
shift, a bucket, an alarm's start), so a recomputation overwrites the same point.

Measurements (factory databases unless noted; tags first, then fields)::

    kpi_shift      cluster factory hall machine type shift | the KPI columns; ts = shift start
    kpi_batch      cluster factory hall machine type batch_id | batch KPIs; ts = batch end
    anomaly        cluster factory hall machine type | score (0-1), z, signal; ts = bucket
    anomaly_alarm  cluster factory hall machine type kind | signal, score, z, baseline,
                   end_ms (absent while open), detector, machines (hall alarms, which
                   have no machine tag); ts = alarm start
    factory_kpi    (database ``cluster_kpi``) cluster factory type shift | aggregates only
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import numpy as np

from ingest.lineproto import point_line

__all__ = ["NS_PER_MS", "alarm_line", "row_lines", "score_lines"]

NS_PER_MS: Final = 1_000_000


def row_lines(
    measurement: str,
    rows: Iterable[Mapping[str, Any]],
    tags: Mapping[str, str],
    tag_keys: Iterable[str],
    ts_key: str,
) -> list[str]:
    """One point per row: ``tag_keys`` become tags, numbers and strings fields.

    >>> row_lines("kpi_shift", [{"machine": "l1", "start_ms": 5, "oee": 0.7}],
    ...           {"factory": "f1"}, ["machine"], "start_ms")
    ['kpi_shift,factory=f1,machine=l1 oee=0.7 5000000']
    """
    keys = list(tag_keys)
    lines = []
    for row in rows:
        row_tags = {**tags, **{k: str(row[k]) for k in keys if row.get(k) not in (None, "")}}
        fields = {
            k: v
            for k, v in row.items()
            if k not in keys and k != ts_key and isinstance(v, int | float | str | np.number)
        }
        try:
            lines.append(point_line(measurement, row_tags, fields, int(row[ts_key]) * NS_PER_MS))
        except ValueError:  # every field NaN: nothing to store for this row
            continue
    return lines


def score_lines(
    scores: Any,
    machine_type: str,
    halls: Mapping[str, str],
    tags: Mapping[str, str],
    from_ms: int,
) -> list[str]:
    """``anomaly`` points of the buckets at or after ``from_ms`` that have a score."""
    ts = np.asarray(scores.ts_ms, dtype=np.int64)
    first = int(np.searchsorted(ts, from_ms))
    signals = list(scores.signals)
    lines = []
    for i, machine in enumerate(scores.machines):
        series = {**tags, "hall": halls.get(machine, ""), "machine": machine, "type": machine_type}
        series = {k: v for k, v in series.items() if v}
        score, z, top = scores.score[i, first:], scores.z[i, first:], scores.signal[i, first:]
        for j in np.flatnonzero(~np.isnan(score)).tolist():
            fields = {"score": float(score[j]), "z": float(z[j])}
            if top[j] >= 0:
                fields["signal"] = signals[int(top[j])]
            lines.append(point_line("anomaly", series, fields, int(ts[first + j]) * NS_PER_MS))
    return lines


def alarm_line(alarm: Any, halls: Mapping[str, str], tags: Mapping[str, str]) -> str:
    """One ``anomaly_alarm`` point at the alarm's start (an open alarm has no ``end_ms``)."""
    machine = alarm.machine or ""
    members = tuple(getattr(alarm, "machines", ()))
    series = {
        **tags,
        "hall": halls.get(machine or (members[0] if members else ""), ""),
        "machine": machine,
        "type": alarm.machine_type,
        "kind": alarm.kind,
    }
    fields: dict[str, float | str] = {
        "signal": alarm.signal,
        "score": float(alarm.peak_score),
        "z": float(alarm.z),
        "baseline": float(alarm.baseline),
        "detector": str(alarm.detector),
    }
    if alarm.end_ms is not None:
        fields["end_ms"] = float(alarm.end_ms)
    if members:  # a hall alarm: every machine deviating together
        fields["machines"] = ",".join(members)
    return point_line(
        "anomaly_alarm", {k: v for k, v in series.items() if v}, fields, alarm.start_ms * NS_PER_MS
    )
