"""Per-bucket signals from machine events: how often each stop reason or alarm code occurs.

A 60-s panel says *that* a machine stopped, not *why*. A knitting machine whose lint
builds up stops for ``LINT_CLEAN`` ten times as often while its overall stop share stays
within what busy fault-free machines reach; a dyeing machine whose dosing fails raises
its own ``DOSING_FAULT`` alarms. Counting events per key (the stop's ``reason``, an
alarm's ``code``) over a trailing window and asking how surprising that count is for a
Poisson law at the machine's training rate (:func:`event_surprise`) turns each key into
a signal in sds that weighs exposure: one stop in a barely running hour is nothing,
seven lint stops where one is usual are. Keys are whatever the training span's events
hold: nothing here knows a simulator's reasons. Step events (a dyeing programme's
``FILL``, ``HEAT``) mark regime changes instead (:func:`event_marks`).

Example
-------
>>> from analytics.events import EventTable
>>> ev = EventTable.from_records([
...     {"machine": "k1", "ts": 60_000, "kind": "stop", "reason": "LINT"},
...     {"machine": "k1", "ts": 130_000, "kind": "stop", "reason": "LINT"},
...     {"machine": "k2", "ts": 0, "kind": "alarm", "code": "HOT"},
... ])
>>> event_keys(ev)
['alarm:(other)', 'alarm:HOT', 'stop:(other)', 'stop:LINT']
>>> counts = event_counts(ev, ["k1", "k2"], np.arange(3) * 60_000, 60_000, event_keys(ev))
>>> counts[..., 3].tolist()
[[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import ndtri, pdtr, pdtrc

from analytics.events import EventTable

__all__ = [
    "COUNTED_KINDS",
    "event_baseline",
    "event_counts",
    "event_keys",
    "event_marks",
    "event_surprise",
]

#: Event kinds counted per key: a stop by its ``reason`` (else its code), an alarm by
#: its ``code``. State changes mirror the panel's ``state_code``; steps follow a recipe.
COUNTED_KINDS = ("stop", "alarm")
#: The key that gathers a kind's events whose reason or code training never saw.
OTHER = "(other)"


def _keys_of(events: EventTable) -> np.ndarray:
    """``<kind>:<reason or code>`` per event (object array)."""
    what = np.where(events.reason.astype(str) != "", events.reason, events.code).astype(str)
    return np.char.add(np.char.add(events.kind.astype(str), ":"), what).astype(object)


def event_keys(
    events: EventTable | None, kinds: Sequence[str] = COUNTED_KINDS, min_count: int = 1
) -> list[str]:
    """The keys seen at least ``min_count`` times among ``kinds``, sorted.

    Fitted on the training span. A reason or code training never saw has no baseline
    of its own: it counts under ``<kind>:(other)``, a key every kind gets, so a new
    alarm code showing up again and again is still evidence.
    """
    other = [f"{k}:{OTHER}" for k in kinds]
    if events is None or not len(events):
        return sorted(other)
    chosen = events.take(np.isin(events.kind.astype(str), list(kinds)))
    keys, n = np.unique(_keys_of(chosen).astype(str), return_counts=True)
    return sorted({*(str(k) for k in keys[n >= min_count]), *other})


def event_counts(
    events: EventTable | None,
    machines: Sequence[str],
    ts_ms: np.ndarray,
    step_ms: int,
    keys: Sequence[str],
) -> np.ndarray:
    """Events per machine, bucket and key: an (M, T, K) float array.

    An event counts in the bucket ``[ts, ts + step_ms)`` that holds it; events of other
    machines, keys or outside the grid are ignored.
    """
    out = np.zeros((len(machines), len(ts_ms), len(keys)))
    if events is None or not len(events) or not len(keys) or not len(ts_ms):
        return out
    key_of = {k: i for i, k in enumerate(keys)}
    cols = np.array(
        [
            key_of.get(k, key_of.get(k.split(":", 1)[0] + ":" + OTHER, -1))
            for k in _keys_of(events).tolist()
        ],
        dtype=np.int64,
    )
    rows, bucket, ok = _cells(events, machines, ts_ms, step_ms)
    ok &= cols >= 0
    np.add.at(out, (rows[ok], bucket[ok], cols[ok]), 1.0)
    return out


def _cells(
    events: EventTable, machines: Sequence[str], ts_ms: np.ndarray, step_ms: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and bucket of every event, and whether it falls on the grid."""
    row_of = {m: i for i, m in enumerate(machines)}
    rows = np.array([row_of.get(m, -1) for m in events.machine.tolist()], dtype=np.int64)
    bucket = (events.ts_ms - int(ts_ms[0])) // step_ms
    return rows, bucket, (rows >= 0) & (bucket >= 0) & (bucket < len(ts_ms))


def _trailing_sum(a: np.ndarray, w: int, axis: int) -> np.ndarray:
    c = np.cumsum(a, axis=axis)
    out = c.copy()
    head = [slice(None)] * a.ndim
    tail = [slice(None)] * a.ndim
    head[axis], tail[axis] = slice(w, None), slice(None, -w)
    out[tuple(head)] -= c[tuple(tail)]
    return out


def event_marks(
    events: EventTable | None,
    machines: Sequence[str],
    ts_ms: np.ndarray,
    step_ms: int,
    kind: str = "step",
    after: int = 1,
) -> np.ndarray:
    """(M, T) True in every bucket holding an event of ``kind``, and ``after`` buckets on.

    A programme step change (fill, heat, dose) switches a machine's regime inside the
    bucket; the bucket's fluctuation and the next one's settling are no evidence.

    >>> ev = EventTable.from_records([{"machine": "d1", "ts": 61_000, "kind": "step"}])
    >>> event_marks(ev, ["d1"], np.arange(4) * 60_000, 60_000).tolist()
    [[False, True, True, False]]
    """
    shape = (len(machines), len(ts_ms))
    if events is None or not len(events) or not len(ts_ms):
        return np.zeros(shape, dtype=bool)
    rows, bucket, ok = _cells(events, machines, ts_ms, step_ms)
    ok &= events.kind == kind
    hits = np.zeros(shape, dtype=bool)
    hits[rows[ok], bucket[ok]] = True
    out = hits.copy()
    for lag in range(1, after + 1):
        out[:, lag:] |= hits[:, :-lag]
    return out


def _running_hours(running: np.ndarray, step_ms: int, window: int) -> np.ndarray:
    return _trailing_sum(running.astype(np.float64), window, 1) * step_ms / 3_600_000


def event_baseline(counts: np.ndarray, running: np.ndarray, step_ms: int) -> np.ndarray:
    """Each machine's expected events per running hour per key, (M, K).

    ``max(own rate, class rate)`` with the class rate ``(events + 1) / hours`` pooled
    over the machines: a machine quiet in training (or a key seen once) is judged
    against what its class does, and a machine busy in training keeps its own rate.
    """
    hours = running.sum(axis=1) * step_ms / 3_600_000  # (M,)
    n = counts.sum(axis=1)  # (M, K)
    with np.errstate(invalid="ignore", divide="ignore"):
        own = np.where(hours[:, None] > 0, n / hours[:, None], 0.0)
    pooled = (n.sum(axis=0) + 1.0) / max(float(hours.sum()), 1.0)
    return np.maximum(own, pooled[None, :])


def event_surprise(
    counts: np.ndarray, running: np.ndarray, step_ms: int, window: int, rate: np.ndarray
) -> np.ndarray:
    """How surprising each trailing window's event count is, in normal sds, (M, T, K).

    The count ``n`` of the last ``window`` buckets is Poisson with mean ``mu = rate x
    running hours`` on a healthy machine; its mid-p upper tail ``P(N > n) + P(N = n) / 2``
    becomes a one-sided z (``-Phi^-1(p)``, clipped to ``[0, 10]``). Unlike a rate's z it
    weighs exposure: one stop in a barely running hour is no evidence, seven lint stops
    where one is expected are. NaN until a quarter of the window's hours ran.

    >>> c = np.zeros((1, 240, 1)); c[0, -7:, 0] = 1.0   # 7 events in 4 h, 0.17/h expected
    >>> z = event_surprise(c, np.ones((1, 240), bool), 60_000, 240, np.array([[0.17]]))
    >>> round(float(z[0, -1, 0]), 1), float(z[0, -8, 0])
    (4.5, 0.0)
    """
    run_h = _running_hours(running, step_ms, window)
    n = np.round(_trailing_sum(counts, window, 1))
    mu = np.maximum(rate[:, None, :] * run_h[..., None], 1e-12)
    below = np.where(n > 0, pdtr(np.maximum(n - 1, 0), mu), 0.0)  # P(N < n)
    p = pdtrc(n, mu) + 0.5 * (pdtr(n, mu) - below)
    z = np.clip(-ndtri(np.clip(p, 1e-300, 1.0)), 0.0, 10.0)
    enough = (run_h >= 0.25 * window * step_ms / 3_600_000)[..., None]
    return np.where(enough, z, np.nan)
