"""Signals judged within the programme step a machine is in (a dyeing recipe's HEAT, HOLD).

A batch machine's tracking error or level means different things in different steps:
a liquor lagging its setpoint by half a degree is normal while the recipe ramps
(``HEAT``) and far off while it holds (``HOLD``). Pooled over all steps, such a signal's
robust spread is the quiet steps' and every ramp reads as tens of sds, so the monitor
drops it as too heavy-tailed and a fouled heat exchanger, which only shows as a ramp
falling behind, goes unwatched. Standardising the signal by its class's centre and
spread *for the current step code* (:func:`fit_step_norm`, :func:`step_standardised`)
makes it a plain robust signal again (``liquor_temp_c:err@step``).

The step code of a bucket is the ``code`` of the machine's latest ``step`` event
(:func:`step_codes`); codes are whatever the training events hold, nothing here knows a
simulator's recipes.

Example
-------
>>> from analytics.events import EventTable
>>> ev = EventTable.from_records([
...     {"machine": "d1", "ts": 60_000, "kind": "step", "code": "HEAT"},
...     {"machine": "d1", "ts": 180_000, "kind": "step", "code": "HOLD"},
... ])
>>> codes = step_codes(ev, ["d1"], np.arange(5) * 60_000, 60_000, ["HEAT", "HOLD"])
>>> codes.tolist()
[[-1, 0, 0, 1, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analytics.events import EventTable

__all__ = ["StepNorm", "fit_step_norm", "step_code_names", "step_codes", "step_standardised"]

#: A step code needs this many judged training buckets (pooled over the class) to get a
#: norm of its own; rarer codes are not judged.
MIN_BUCKETS = 30
#: MAD -> sd for a normal law.
_MAD_SD = 1.4826


def step_code_names(events: EventTable | None, kind: str = "step") -> list[str]:
    """The distinct non-empty codes of ``kind`` events, sorted (fitted on training)."""
    if events is None or not len(events):
        return []
    codes = events.code[events.kind == kind].astype(str)
    return sorted({c for c in codes.tolist() if c})


def step_codes(
    events: EventTable | None,
    machines: Sequence[str],
    ts_ms: np.ndarray,
    step_ms: int,
    names: Sequence[str],
    kind: str = "step",
) -> np.ndarray:
    """(M, T) index into ``names`` of the step each bucket is in, -1 where unknown.

    The step is the latest ``kind`` event at or before the bucket's end (an event inside
    a bucket switches it); buckets before a machine's first step event, and steps whose
    code is not in ``names``, are -1.
    """
    shape = (len(machines), len(ts_ms))
    if events is None or not len(events) or not len(ts_ms) or not len(names):
        return np.full(shape, -1, dtype=np.int32)
    index = {c: i for i, c in enumerate(names)}
    chosen = events.take(events.kind == kind)
    row_of = {m: i for i, m in enumerate(machines)}
    rows = np.array([row_of.get(m, -1) for m in chosen.machine.tolist()], dtype=np.int64)
    cols = np.array([index.get(c, -1) for c in chosen.code.astype(str).tolist()], np.int32)
    bucket = (chosen.ts_ms - int(ts_ms[0])) // step_ms
    ok = (rows >= 0) & (bucket < len(ts_ms))
    bucket = np.maximum(bucket, 0)  # a step begun before the grid holds from its start
    mark = np.full(shape, -2, dtype=np.int32)  # -2: no event in the bucket
    mark[rows[ok], bucket[ok]] = cols[ok]  # events are time-sorted: the latest wins
    pos = np.where(mark != -2, np.arange(shape[1])[None, :], -1)
    pos = np.maximum.accumulate(pos, axis=1)
    filled = np.take_along_axis(mark, np.maximum(pos, 0), axis=1)
    return np.where(pos >= 0, filled, -1).astype(np.int32)


@dataclass
class StepNorm:
    """Per step code, a signal's class-pooled robust centre and spread, each (K,)."""

    center: np.ndarray
    scale: np.ndarray


def fit_step_norm(x: np.ndarray, codes: np.ndarray, n_codes: int) -> StepNorm:
    """Median and MAD sd of ``x`` (M, T) per step code, pooled over the machines.

    Each code's spread is floored at the spread of all codes together: a step in
    which the signal is pinned (an error of exactly 0 while holding) must not turn a
    wobble into a fault. Codes with fewer than ``MIN_BUCKETS`` finite values get NaN.

    >>> x = np.array([[0.0, 0.1, -0.1] * 20 + [-2.0, -1.0, -3.0] * 20])
    >>> codes = np.array([[0] * 60 + [1] * 60])
    >>> norm = fit_step_norm(x, codes, 2)
    >>> norm.center.tolist()
    [0.0, -2.0]
    """
    ok = np.isfinite(x) & (codes >= 0)
    center, scale = np.full(n_codes, np.nan), np.full(n_codes, np.nan)
    if not ok.any():
        return StepNorm(center, scale)
    values, which = x[ok], codes[ok]
    overall = _MAD_SD * float(np.median(np.abs(values - np.median(values))))
    for k in range(n_codes):  # a handful of step codes
        v = values[which == k]
        if v.size < MIN_BUCKETS:
            continue
        center[k] = np.median(v)
        scale[k] = max(_MAD_SD * float(np.median(np.abs(v - center[k]))), overall, 1e-9)
    return StepNorm(center, scale)


def step_standardised(x: np.ndarray, codes: np.ndarray, norm: StepNorm) -> np.ndarray:
    """``(x - centre[code]) / scale[code]`` (M, T); NaN where the code is unknown.

    >>> norm = StepNorm(np.array([0.0, -2.0]), np.array([0.1, 1.0]))
    >>> step_standardised(np.array([[0.2, -2.5, 1.0]]), np.array([[0, 1, -1]]), norm).tolist()
    [[2.0, -0.5, nan]]
    """
    if not len(norm.center):
        return np.full(x.shape, np.nan)
    k = np.clip(codes, 0, len(norm.center) - 1)
    c = np.where(codes >= 0, norm.center[k], np.nan)
    s = np.where(codes >= 0, norm.scale[k], np.nan)
    with np.errstate(invalid="ignore"):
        return (x - c) / s
