"""State intervals and stop episodes from machine events, clipped to windows without loops.

Each ``state`` event starts a new interval in the state it names (contract ``STATES``);
the interval runs to the machine's next state event, or to ``now_ms`` for the last
one. Time in state ``s`` up to instant ``t`` is a piecewise-linear cumulative function
``F_s(t)``: the durations of the machine's earlier intervals in ``s`` (a cumulative
sum) plus the elapsed part of the interval holding ``t`` (found with
``np.searchsorted``). Seconds in state ``s`` in a window ``[a, b)`` are then
``F_s(b) - F_s(a)``, for every machine and window at once.

The state before a machine's first event is unknown (nothing is counted) unless an
``initial`` state is given, e.g. from the first bucket of a panel.

Stop episodes come from ``stop`` events (one per episode, with a ``reason``); an
episode lasts until the machine's next ``state`` event after it (the state change back
to running, or whatever ended it).

Example
-------
>>> from analytics.events import EventTable
>>> ev = EventTable.from_records([
...     {"machine": "l1", "ts": 0, "kind": "state", "code": "RUN"},
...     {"machine": "l1", "ts": 60_000, "kind": "state", "code": "STOP_PROCESS"},
...     {"machine": "l1", "ts": 60_000, "kind": "stop", "code": "STOP_PROCESS", "reason": "WARP"},
...     {"machine": "l1", "ts": 90_000, "kind": "state", "code": "RUN"},
... ])
>>> state_seconds(ev, ["l1"], 0, 120_000)[0, :3].tolist()  # OFF_NOPLAN, RUN, STOP_PROCESS
[0.0, 90.0, 30.0]
>>> t = stop_table(ev, "loom_airjet")
>>> t.cls.tolist(), t.duration_s.tolist()
(['warp'], [30.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from analytics.events import EventTable
from millwatch.contract import STATES

__all__ = [
    "N_STATES",
    "STOP_CLASSES",
    "StopTable",
    "family_of",
    "latest_index",
    "machine_index",
    "state_codes",
    "state_seconds",
    "state_seconds_spans",
    "state_seconds_windows",
    "stop_class",
    "stop_table",
]

N_STATES: Final = len(STATES)
#: Stop classes per machine family: (reason prefix, class) rules, first match wins;
#: reasons that match no rule are ``"other"``.
STOP_CLASSES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "loom": (("WARP", "warp"), ("WEFT_", "weft")),
    "knit": (("YARN_IN", "yarn"), ("YARN_OUT", "yarn"), ("LYCRA", "yarn"), ("NEEDLE", "needle")),
    "dye": (),
    "stenter": (),
}
#: Class names per family, in column order.
FAMILY_CLASSES: Final[dict[str, tuple[str, ...]]] = {
    "loom": ("warp", "weft", "other"),
    "knit": ("yarn", "needle", "other"),
    "dye": ("other",),
    "stenter": ("other",),
}


def family_of(machine_type: str) -> str:
    """Machine family of a contract machine type (``loom_airjet`` -> ``loom``).

    >>> family_of("loom_rapier"), family_of("knit_circular"), family_of("dye_jet")
    ('loom', 'knit', 'dye')
    """
    for family in STOP_CLASSES:
        if machine_type.startswith(family):
            return family
    return machine_type


def stop_class(reasons: np.ndarray, family: str) -> np.ndarray:
    """Class name of each stop reason for ``family`` (see :data:`STOP_CLASSES`).

    >>> stop_class(np.array(["WARP", "WEFT_SHORT", "DOFF"]), "loom").tolist()
    ['warp', 'weft', 'other']
    """
    reasons = np.asarray(reasons).astype(str)
    unique, inverse = np.unique(reasons, return_inverse=True)
    rules = STOP_CLASSES.get(family, ())
    names = [next((c for p, c in rules if r.startswith(p)), "other") for r in unique.tolist()]
    return np.array(names, dtype=object)[inverse] if len(reasons) else np.array([], dtype=object)


def state_codes(names: np.ndarray) -> np.ndarray:
    """Contract state code of each state name; -1 for names that are not states.

    >>> state_codes(np.array(["RUN", "IDLE_READY", "?"])).tolist()
    [1, 7, -1]
    """
    names = np.asarray(names).astype(str)
    unique, inverse = np.unique(names, return_inverse=True)
    codes = np.array([STATES.get(n, -1) for n in unique.tolist()], dtype=np.int64)
    return codes[inverse] if len(names) else np.array([], dtype=np.int64)


def machine_index(column: np.ndarray, machines: Sequence[str]) -> np.ndarray:
    """Position of each row's machine in ``machines``; -1 for machines not listed.

    >>> machine_index(np.array(["b", "x", "a"]), ["a", "b"]).tolist()
    [1, -1, 0]
    """
    column = np.asarray(column).astype(str)
    lookup = {m: i for i, m in enumerate(machines)}
    unique, inverse = np.unique(column, return_inverse=True)
    index = np.array([lookup.get(m, -1) for m in unique.tolist()], dtype=np.int64)
    return index[inverse] if len(column) else np.array([], dtype=np.int64)


def _keys(m: np.ndarray, ts: np.ndarray, t0: int, span: int) -> np.ndarray:
    return m.astype(np.int64) * span + (ts.astype(np.int64) - t0)


def latest_index(
    ev_machine: np.ndarray, ev_ts: np.ndarray, q_machine: np.ndarray, q_ts: np.ndarray
) -> np.ndarray:
    """Index of the last event of the query's machine at or before the query time.

    Events must be sorted by (machine, time); -1 where the machine has no event yet.
    One ``np.searchsorted`` on a combined (machine, time) key answers every query.

    >>> latest_index(np.array([0, 0, 1]), np.array([10, 20, 5]),
    ...              np.array([0, 0, 1, 1]), np.array([15, 5, 5, 99])).tolist()
    [0, -1, 2, 2]
    """
    if len(ev_ts) == 0 or np.size(q_ts) == 0:
        return np.full(np.shape(q_ts), -1, dtype=np.int64)
    t0 = int(min(ev_ts.min(), np.min(q_ts)))
    span = int(max(ev_ts.max(), np.max(q_ts))) - t0 + 1
    keys = _keys(ev_machine, ev_ts, t0, span)
    pos = np.searchsorted(keys, _keys(q_machine, q_ts, t0, span), side="right") - 1
    ok = (pos >= 0) & (ev_machine[np.maximum(pos, 0)] == q_machine)
    return np.where(ok, pos, -1)


@dataclass
class _Timeline:
    """State intervals of all machines as sorted arrays, with per-state cumulative ms."""

    machine: np.ndarray
    ts: np.ndarray
    code: np.ndarray
    cum_ms: np.ndarray  # (N, 8): ms in each state in the machine's intervals before this one

    def cumulative_ms(self, q_machine: np.ndarray, q_ts: np.ndarray) -> np.ndarray:
        """``F_s(t)``: ms in each state from the machine's first event to ``q_ts``."""
        k = latest_index(self.machine, self.ts, q_machine, q_ts)
        kk = np.maximum(k, 0)
        elapsed = np.where(k >= 0, q_ts - self.ts[kk], 0)
        current = (self.code[kk][..., None] == np.arange(N_STATES)) & (k >= 0)[..., None]
        return self.cum_ms[kk] * (k >= 0)[..., None] + elapsed[..., None] * current


def _timeline(
    events: EventTable,
    machines: Sequence[str],
    now_ms: int | None,
    initial: np.ndarray | None,
    initial_ms: int,
) -> _Timeline:
    st = events.where(kind="state")
    m = machine_index(st.machine, machines)
    keep = m >= 0
    m, ts, code = m[keep], st.ts_ms[keep], state_codes(st.code[keep])
    n = len(machines)
    parts = [(m, ts, code, np.ones(len(m), dtype=np.int64))]
    if initial is not None:
        init = np.asarray(initial, dtype=np.float64)
        init_code = np.where(np.isnan(init), -1, init).astype(np.int64)
        start = min(initial_ms, int(ts.min()) if len(ts) else initial_ms)
        parts.insert(0, (np.arange(n), np.full(n, start), init_code, np.zeros(n, np.int64)))
    if now_ms is not None:
        parts.append((np.arange(n), np.full(n, now_ms), np.full(n, -1), np.full(n, 2)))
    m, ts, code, rank = (np.concatenate(c) for c in zip(*parts, strict=True))
    order = np.lexsort((rank, ts, m))
    m, ts, code = m[order], ts[order].astype(np.int64), code[order]
    dur = np.zeros(len(ts), dtype=np.int64)
    same = m[1:] == m[:-1]
    dur[:-1] = np.where(same, ts[1:] - ts[:-1], 0)
    contrib = dur[:, None] * (code[:, None] == np.arange(N_STATES))
    cum = np.cumsum(contrib, axis=0) - contrib
    first = np.ones(len(m), dtype=bool)
    first[1:] = ~same
    base = cum[np.maximum.accumulate(np.where(first, np.arange(len(m)), 0))]
    return _Timeline(m, ts, code, cum - base)


def state_seconds_spans(
    events: EventTable,
    machines: Sequence[str],
    rows: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    *,
    now_ms: int | None = None,
    initial: np.ndarray | None = None,
    initial_ms: int | None = None,
) -> np.ndarray:
    """Seconds per state code in spans ``[starts, ends)`` of machines ``machines[rows]``.

    The general form of :func:`state_seconds_windows`: ``rows``, ``starts`` and
    ``ends`` broadcast together (one span per dyeing batch, or a machine x window
    grid) and the result has their shape plus a last axis of 8 state codes.
    ``initial_ms`` is where the ``initial`` state begins (default: the earliest start).

    >>> from analytics.events import EventTable
    >>> ev = EventTable.from_records([{"machine": "b", "ts": 0, "kind": "state", "code": "RUN"},
    ...                               {"machine": "b", "ts": 50, "kind": "state", "code": "WAIT"}])
    >>> state_seconds_spans(ev, ["a", "b"], np.array([1]), np.array([40]),
    ...                     np.array([1040]))[0, [1, 5]].tolist()
    [0.01, 0.99]
    """
    rows, lo, hi = np.broadcast_arrays(
        np.asarray(rows, dtype=np.int64),
        np.asarray(starts, dtype=np.int64),
        np.asarray(ends, dtype=np.int64),
    )
    if now_ms is not None:
        lo, hi = np.minimum(lo, now_ms), np.minimum(hi, now_ms)
    if initial_ms is None:
        initial_ms = int(lo.min()) if lo.size else 0
    line = _timeline(events, machines, now_ms, initial, initial_ms)
    upper, lower = line.cumulative_ms(rows, hi), line.cumulative_ms(rows, lo)
    return (upper - lower).astype(np.float64) / 1000.0


def state_seconds_windows(
    events: EventTable,
    machines: Sequence[str],
    window_starts: np.ndarray,
    window_ends: np.ndarray,
    *,
    now_ms: int | None = None,
    initial: np.ndarray | None = None,
    initial_ms: int | None = None,
) -> np.ndarray:
    """Seconds each machine spent in each state code in each window.

    ``out[m, w, s] = F_s(m, end_w) - F_s(m, start_w)`` where ``F_s`` is the cumulative
    time in state ``s`` (see module docstring). Intervals are clipped to windows exactly
    (ms resolution); time before a machine's first event counts only with ``initial``
    (from ``initial_ms``, default the first window start), time after ``now_ms`` never
    counts (the last interval runs to ``now_ms``, or to the window end when ``now_ms``
    is None).

    Parameters
    ----------
    events
        Events of these machines; only ``kind == "state"`` rows are used.
    machines
        Row order of the result.
    window_starts, window_ends
        Shape (W,), UTC epoch ms, ``[start, end)``.
    now_ms
        End of knowledge: where the last interval of every machine stops.
    initial
        Shape (M,): state code before each machine's first event (NaN or -1: unknown).
    initial_ms
        Time from which ``initial`` holds.

    Returns
    -------
    numpy.ndarray
        Shape (M, W, 8), seconds, indexed by contract state code.

    Examples
    --------
    A RUN interval from 05:00 to 07:00 split at a 06:00 shift boundary:

    >>> from analytics.events import EventTable
    >>> h = 3_600_000
    >>> ev = EventTable.from_records([
    ...     {"machine": "k1", "ts": 5 * h, "kind": "state", "code": "RUN"},
    ...     {"machine": "k1", "ts": 7 * h, "kind": "state", "code": "WAIT"}])
    >>> s = state_seconds_windows(ev, ["k1"], np.array([0, 6 * h]), np.array([6 * h, 8 * h]))
    >>> s[0, :, 1].tolist(), s[0, :, 5].tolist()  # RUN, WAIT
    ([3600.0, 3600.0], [0.0, 3600.0])
    """
    n = len(machines)
    return state_seconds_spans(
        events,
        machines,
        np.arange(n)[:, None],
        np.asarray(window_starts, dtype=np.int64)[None, :],
        np.asarray(window_ends, dtype=np.int64)[None, :],
        now_ms=now_ms,
        initial=initial,
        initial_ms=initial_ms,
    )


def state_seconds(
    events: EventTable,
    machines: Sequence[str],
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int | None = None,
    initial: np.ndarray | None = None,
) -> np.ndarray:
    """Seconds per state code in one window ``[start_ms, end_ms)``, shape (M, 8).

    See :func:`state_seconds_windows`.

    >>> from analytics.events import EventTable
    >>> ev = EventTable.from_records([{"machine": "a", "ts": 1_000, "kind": "state",
    ...                               "code": "SETUP"}])
    >>> state_seconds(ev, ["a"], 0, 11_000, initial=np.array([1]))[0, [1, 4]].tolist()
    [1.0, 10.0]
    """
    one = state_seconds_windows(
        events, machines, np.array([start_ms]), np.array([end_ms]), now_ms=now_ms, initial=initial
    )
    return one[:, 0, :]


@dataclass
class StopTable:
    """One row per stop episode: who, why, which class, when, how long (s).

    ``code`` is the state the stop put the machine in (``STOP_PROCESS``, ``BREAKDOWN``,
    ``SETUP``, ``WAIT``); ``duration_s`` is NaN for an episode still open.
    """

    machine: np.ndarray
    code: np.ndarray
    reason: np.ndarray
    cls: np.ndarray
    start_ms: np.ndarray
    duration_s: np.ndarray

    def __len__(self) -> int:
        return len(self.start_ms)

    def take(self, index: np.ndarray) -> StopTable:
        """The rows at ``index`` (integer or boolean array)."""
        return StopTable(
            self.machine[index],
            self.code[index],
            self.reason[index],
            self.cls[index],
            self.start_ms[index],
            self.duration_s[index],
        )


def stop_table(events: EventTable, machine_type: str, *, now_ms: int | None = None) -> StopTable:
    """Stop episodes with class and repair duration.

    ``duration_s = (ts of the machine's first state event after the stop - stop ts) / 1000``;
    an episode with no later state event lasts to ``now_ms`` (NaN without it). The
    class comes from the reason through :data:`STOP_CLASSES` of the machine's family.

    >>> from analytics.events import EventTable
    >>> ev = EventTable.from_records([
    ...     {"machine": "k", "ts": 0, "kind": "stop", "code": "STOP_PROCESS", "reason": "LYCRA"},
    ...     {"machine": "k", "ts": 0, "kind": "state", "code": "STOP_PROCESS"},
    ...     {"machine": "k", "ts": 90_000, "kind": "state", "code": "RUN"}])
    >>> t = stop_table(ev, "knit_circular")
    >>> t.cls.tolist(), t.duration_s.tolist()
    (['yarn'], [90.0])
    """
    stops = events.where(kind="stop")
    states = events.where(kind="state")
    names = sorted(set(stops.machine.astype(str).tolist()) | set(states.machine.astype(str)))
    sm, tm = machine_index(stops.machine, names), machine_index(states.machine, names)
    duration = np.full(len(stops), np.nan)
    if len(stops) and len(states):
        t0 = int(min(stops.ts_ms.min(), states.ts_ms.min()))
        span = int(max(stops.ts_ms.max(), states.ts_ms.max(), now_ms or 0)) - t0 + 1
        keys = _keys(tm, states.ts_ms, t0, span)
        nxt = np.searchsorted(keys, _keys(sm, stops.ts_ms, t0, span), side="right")
        ok = (nxt < len(keys)) & (tm[np.minimum(nxt, len(keys) - 1)] == sm)
        end = states.ts_ms[np.minimum(nxt, len(keys) - 1)]
        duration = np.where(ok, (end - stops.ts_ms) / 1000.0, np.nan)
    if now_ms is not None:
        duration = np.where(np.isnan(duration), (now_ms - stops.ts_ms) / 1000.0, duration)
    return StopTable(
        stops.machine.astype(str),
        stops.code.astype(str),
        stops.reason.astype(str),
        stop_class(stops.reason, family_of(machine_type)),
        stops.ts_ms.copy(),
        duration,
    )
