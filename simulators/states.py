"""The §2 state machine shared by every machine group: runs, stops, breakdowns, setups.

Each machine is in one state code of ``millwatch.contract.STATES`` at a time. A machine
of its own accord is either running or in an *episode*: a stop of some
:class:`StopClass` (a warp break, a beam change, a breakdown, a wait for yarn) that
lasts a drawn time. Two *overrides* sit on top: the shift calendar (``OFF_NOPLAN`` or
``PLANNED_MAINT`` while production is not planned) and a fault holding the machine
down (``BREAKDOWN``). The visible state is the override if there is one, else the
episode's state. An override ends process stops and waits (nobody clears a warp break
in an empty hall), but only pauses setups and breakdowns: they resume, with the time
they had left, when the override ends, so a beam change is never lost.

Time is tick-granular: transitions happen at the tick's timestamp and the reading shows
the state after them; production during a tick follows the state *before* them
(``Tick.ran``). An episode of duration ``d`` lasts ``max(1, round(d / dt))`` ticks, so
mean durations do not depend on ``dt`` (beyond episodes shorter than half a tick).

Event convention (what analytics derive intervals from), all stamped with the tick:

- ``{"kind": "state", "code": <new state name>, "duration_s": <seconds spent in the
  previous state>, "reason": <why, for stop-like states>}`` on every change of the
  visible state. A machine's first step emits one with ``duration_s`` 0.0, so the
  intervals between consecutive state events of a machine cover its whole timeline.
  A resumed setup or breakdown carries its original reason again.
- ``{"kind": "stop", "code": <state entered>, "reason": ..., ["feeder": int]}`` once
  per episode, when it starts, and once when a fault's hold begins (reason ``MECH``).
  It follows the state event of the same tick. Counting stop events counts stops.

Calendar states carry no reason. ``counts[:, c]`` counts the episodes of class ``c``
started so far, so a group's stop counters equal its stop events exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from millwatch.contract import STATES

__all__ = ["STATE_NAMES", "StateMachine", "StopClass", "Tick", "ramp_mean", "ramp_speed"]

#: State names indexed by code.
STATE_NAMES: tuple[str, ...] = tuple(sorted(STATES, key=STATES.__getitem__))
OFF, RUN, BREAKDOWN = STATES["OFF_NOPLAN"], STATES["RUN"], STATES["BREAKDOWN"]
MAINT = STATES["PLANNED_MAINT"]
EPISODE_STATES = frozenset({"STOP_PROCESS", "BREAKDOWN", "SETUP", "WAIT"})
#: Episodes an override ends rather than pauses.
_DROPPED = frozenset({"STOP_PROCESS", "WAIT"})
#: Reason of the breakdown a fault forces (``GroupEffects.held_down``).
HOLD_REASON = "MECH"


@dataclass(frozen=True)
class StopClass:
    """One kind of episode: the state it puts a machine in, its reasons and durations.

    Durations are lognormal around ``median_s`` with shape ``sigma`` (spec §2 uses
    sigma ~0.7, so the mean is ≈1.3x the median), or uniform over ``range_s`` where the
    spec gives a range ("1-4 h"). ``weights`` split the class into its reasons
    (equal when empty); ``feeder`` stops also name the feeder that stopped.

    >>> StopClass("weft", "STOP_PROCESS", ("WEFT_SHORT", "WEFT_LONG"), (3, 1), 42.0).state
    'STOP_PROCESS'
    """

    name: str
    state: str
    reasons: tuple[str, ...]
    weights: tuple[float, ...] = ()
    median_s: float = 60.0
    sigma: float = 0.7
    range_s: tuple[float, float] | None = None
    feeder: bool = False

    def __post_init__(self) -> None:
        if self.state not in EPISODE_STATES:
            raise ValueError(f"{self.name}: state must be one of {sorted(EPISODE_STATES)}")
        if not self.reasons or (self.weights and len(self.weights) != len(self.reasons)):
            raise ValueError(f"{self.name}: need reasons, and one weight per reason")


@dataclass
class Tick:
    """What one step did; arrays have shape (n,).

    ``ran``: the machine was in ``RUN`` during the tick just ended (it produced).
    ``run_age_s``: for those, seconds in ``RUN`` at the tick's start (for speed ramps).
    ``started`` / ``completed``: class index of the episode that started, or ran its
    full time and ended, at this tick (-1: none). A paused episode completes later.
    """

    events: list[tuple[int, dict[str, Any]]]
    ran: np.ndarray
    run_age_s: np.ndarray
    started: np.ndarray
    completed: np.ndarray


class StateMachine:
    """The states of ``n`` machines, advanced together one tick at a time.

    ``expected[i, c]`` passed to :meth:`step` is the expected number of episodes of
    class ``c`` machine ``i`` would start this tick if it ran all of it (rate times
    exposure: picks for loom stops, run seconds for breakdowns); at most one starts per
    tick. ``trigger[i] = c`` starts class ``c`` for sure (a beam ran out) and wins over
    the random draw.

    >>> sm = StateMachine(2, [StopClass("warp", "STOP_PROCESS", ("WARP",), median_s=150)],
    ...                   np.random.default_rng(1))
    >>> tick = sm.step(0, 1.0, np.zeros((2, 1)), True, False)
    >>> [e["code"] for _, e in tick.events]
    ['RUN', 'RUN']
    >>> tick = sm.step(1000, 1.0, np.zeros((2, 1)), True, False, trigger=np.array([0, -1]))
    >>> [(i, e["kind"], e["code"]) for i, e in tick.events], sm.counts[:, 0].tolist()
    ([(0, 'state', 'STOP_PROCESS'), (0, 'stop', 'STOP_PROCESS')], [1.0, 0.0])
    >>> tick = sm.step(2000, 1.0, np.zeros((2, 1)), False, False)
    >>> [STATE_NAMES[s] for s in sm.state]
    ['OFF_NOPLAN', 'OFF_NOPLAN']
    """

    def __init__(
        self,
        n: int,
        classes: Sequence[StopClass],
        rng: np.random.Generator,
        feeders: np.ndarray | None = None,
    ) -> None:
        self.n, self.classes, self.rng = n, tuple(classes), rng
        self.feeders = np.ones(n) if feeders is None else np.asarray(feeders, dtype=np.float64)
        self.class_index = {c.name: k for k, c in enumerate(self.classes)}
        self._class_state = np.array([STATES[c.state] for c in self.classes], dtype=np.int8)
        self._dropped = np.array([c.state in _DROPPED for c in self.classes])
        self._uniform = np.array([c.range_s is not None for c in self.classes])
        self._median = np.array([c.median_s for c in self.classes])
        self._sigma = np.array([c.sigma for c in self.classes])
        self._low = np.array([c.range_s[0] if c.range_s else 0.0 for c in self.classes])
        self._high = np.array([c.range_s[1] if c.range_s else 0.0 for c in self.classes])
        self._has_feeder = np.array([c.feeder for c in self.classes])
        self.reasons = tuple(r for c in self.classes for r in c.reasons)
        self._reason_offset = np.cumsum([0] + [len(c.reasons) for c in self.classes])[:-1]
        self._reason_cum = self._cumulative_weights()
        self.state = np.full(n, RUN, dtype=np.int8)
        self.counts = np.zeros((n, len(self.classes)))
        self._ep_class = np.full(n, -1, dtype=np.int64)
        self._ep_reason = np.full(n, -1, dtype=np.int64)
        self._ep_left = np.zeros(n)
        self._ep_feeder = np.zeros(n, dtype=np.int64)
        self._since_ms = np.zeros(n, dtype=np.int64)
        self._known = np.zeros(n, dtype=bool)  # False: in this state since before tick 1
        self._free = np.ones(n, dtype=bool)
        self._hold_announced = np.zeros(n, dtype=bool)
        self._started = False

    def _cumulative_weights(self) -> np.ndarray:
        width = max(len(c.reasons) for c in self.classes)
        cum = np.full((len(self.classes), width), 2.0)  # padding is never picked
        for k, c in enumerate(self.classes):
            w = np.asarray(c.weights or [1.0] * len(c.reasons), dtype=np.float64)
            cum[k, : len(w)] = np.cumsum(w / w.sum())
            cum[k, len(w) - 1] = 1.0
        return cum

    def age_s(self, ts_ms: int) -> np.ndarray:
        """Seconds each machine has been in its current visible state (inf: since ever)."""
        return np.where(self._known, (ts_ms - self._since_ms) / 1000.0, np.inf)

    def running(self) -> np.ndarray:
        """Machines in ``RUN`` now, i.e. the ones that produce during the next tick."""
        return self.state == RUN

    def run_age_s(self, ts_ms: int, dt: float) -> np.ndarray:
        """Seconds in the current state at the start of the tick ending at ``ts_ms``."""
        return np.maximum(self.age_s(ts_ms) - dt, 0.0)

    def step(
        self,
        ts_ms: int,
        dt: float,
        expected: np.ndarray,
        planned: bool,
        maintenance: bool,
        held: np.ndarray | None = None,
        trigger: np.ndarray | None = None,
    ) -> Tick:
        """Advance every machine by one tick of ``dt`` seconds ending at ``ts_ms``."""
        prev = self.state
        held = np.zeros(self.n, dtype=bool) if held is None else held
        if not planned:
            override = np.full(self.n, MAINT if maintenance else OFF, dtype=np.int8)
        else:
            override = np.where(held, BREAKDOWN, -1).astype(np.int8)
        free = override < 0
        # On the first tick every machine comes from an unknown past in which it ran.
        ran, run_age = self.running(), self.run_age_s(ts_ms, dt)
        completed = self._advance_episodes(dt, free)
        started = self._start_episodes(expected, trigger, ran & free)
        self.state = np.where(free, self._class_state_of_episodes(), override).astype(np.int8)
        events = self._events(ts_ms, prev, override, started)
        self._free = free
        self._hold_announced &= held  # one stop event per hold, across calendar breaks
        return Tick(events, ran, run_age, started, completed)

    def _class_state_of_episodes(self) -> np.ndarray:
        in_episode = self._ep_class >= 0
        return np.where(in_episode, self._class_state[np.maximum(self._ep_class, 0)], RUN)

    def _advance_episodes(self, dt: float, free: np.ndarray) -> np.ndarray:
        """Run the clocks of episodes that were visible this tick; end what is due."""
        open_ = self._ep_class >= 0
        clock = open_ & self._free
        self._ep_left[clock] -= dt
        done = clock & (self._ep_left < dt / 2)
        completed = np.where(done, self._ep_class, -1)
        # An override ends process stops and waits; setups and breakdowns only pause.
        dropped = open_ & ~free & self._dropped[np.maximum(self._ep_class, 0)]
        self._ep_class[done | dropped] = -1
        return completed

    def _start_episodes(
        self, expected: np.ndarray, trigger: np.ndarray | None, eligible: np.ndarray
    ) -> np.ndarray:
        lam = expected.sum(axis=1)
        u = self.rng.random(self.n)
        p = -np.expm1(-lam)
        started = np.full(self.n, -1, dtype=np.int64)
        if trigger is not None:
            started = np.where(eligible & (trigger >= 0), trigger, -1)
        hit = np.flatnonzero(eligible & (started < 0) & (u < p))
        if hit.size:  # u / p is uniform on [0, 1) given a hit: reuse it to pick the class
            cum = np.cumsum(expected[hit], axis=1)
            pick = (cum < (u[hit] / p[hit] * lam[hit])[:, None]).sum(axis=1)
            started[hit] = np.minimum(pick, len(self.classes) - 1)
        new = np.flatnonzero(started >= 0)
        if new.size:
            self._draw_episodes(new, started[new])
        return started

    def _draw_episodes(self, idx: np.ndarray, cls: np.ndarray) -> None:
        m = idx.size
        v = self.rng.random((3, m))
        z = self.rng.standard_normal(m)
        lognormal = self._median[cls] * np.exp(self._sigma[cls] * z)
        uniform = self._low[cls] + (self._high[cls] - self._low[cls]) * v[0]
        self._ep_left[idx] = np.where(self._uniform[cls], uniform, lognormal)
        local = (self._reason_cum[cls] < v[1][:, None]).sum(axis=1)
        self._ep_reason[idx] = self._reason_offset[cls] + local
        feeder = 1 + np.floor(v[2] * self.feeders[idx]).astype(np.int64)
        self._ep_feeder[idx] = np.where(self._has_feeder[cls], feeder, 0)
        self._ep_class[idx] = cls
        self.counts[idx, cls] += 1

    def _events(
        self, ts_ms: int, prev: np.ndarray, override: np.ndarray, started: np.ndarray
    ) -> list[tuple[int, dict[str, Any]]]:
        if self._started:
            idx = np.flatnonzero(self.state != prev)
            durations = (ts_ms - self._since_ms[idx]) / 1000.0
            self._known[idx] = True
        else:  # the first tick opens every machine's timeline
            idx, durations = np.arange(self.n), np.zeros(self.n)
            self._known = self.state != prev
        self._since_ms[idx] = ts_ms
        self._started = True
        events: list[tuple[int, dict[str, Any]]] = []
        for i, duration in zip(idx.tolist(), durations.tolist(), strict=True):
            code = STATE_NAMES[self.state[i]]
            record: dict[str, Any] = {"ts": ts_ms, "kind": "state", "code": code}
            record["duration_s"] = duration
            reason = self._reason_now(i, override[i])
            if reason is not None:
                record["reason"] = reason
            events.append((i, record))
            if started[i] >= 0:
                stop = {"ts": ts_ms, "kind": "stop", "code": code, "reason": reason}
                if self._ep_feeder[i] > 0:
                    stop["feeder"] = int(self._ep_feeder[i])
                events.append((i, stop))
            elif override[i] == BREAKDOWN and not self._hold_announced[i]:
                self._hold_announced[i] = True
                events.append((i, {"ts": ts_ms, "kind": "stop", "code": code, "reason": reason}))
        return events

    def _reason_now(self, i: int, override: int) -> str | None:
        if override == BREAKDOWN:
            return HOLD_REASON
        if override >= 0 or self._ep_class[i] < 0:
            return None
        return self.reasons[self._ep_reason[i]]


def ramp_speed(age_s: np.ndarray, ramp_s: float) -> np.ndarray:
    """Share of full speed ``age_s`` seconds after a restart (a linear ramp).

    The sample at the restart instant reads half a second into the ramp: a speed
    reading averages over the second around it.

    >>> ramp_speed(np.array([0.0, 1.0, 5.0]), 1.0).tolist()
    [0.5, 1.0, 1.0]
    """
    return np.minimum((np.minimum(age_s, ramp_s) + 0.5) / ramp_s, 1.0)


def ramp_mean(age_s: np.ndarray, dt: float, ramp_s: float) -> np.ndarray:
    """Mean of :func:`ramp_speed` over a tick of ``dt`` s starting ``age_s`` after restart.

    Production during a tick is full-speed output times this share, so the picks lost to
    the ramp do not depend on ``dt``.

    >>> ramp_mean(np.array([0.0, 3.0]), 1.0, 1.0).tolist()
    [0.875, 1.0]
    """
    start = np.minimum(age_s, ramp_s) + 0.5
    end = start + dt
    mid = np.minimum(end, ramp_s)
    ramp = np.maximum(mid * mid - start * start, 0.0) / (2 * ramp_s) + (
        end - np.maximum(mid, start)
    )
    return np.where(start >= ramp_s, 1.0, ramp / max(dt, 1e-9))


class EpisodeEvents:
    """Shared by groups that track state, reason and stop episodes themselves (dyeing, stenter).

    The group keeps ``state``, ``_reason``, ``since_ms``, ``_ts``, ``_episode`` (stop reason
    index per machine, 0 = none), ``_held`` and an ``_emit(i, kind, code, **extra)``.
    """

    state: np.ndarray
    _reason: np.ndarray
    since_ms: np.ndarray
    _ts: int
    _episode: np.ndarray
    _held: np.ndarray

    def _emit(self, i: int, kind: str, code: str, **extra: Any) -> None:
        raise NotImplementedError

    def _emit_changes(
        self,
        state: np.ndarray,
        reason: np.ndarray,
        held: np.ndarray,
        reasons: Sequence[str],
        held_reason: int,
    ) -> None:
        """State events on every change of state or reason; one stop event per episode."""
        first = self.state[0] < 0
        for i in np.flatnonzero((state != self.state) | (reason != self._reason)).tolist():
            extra: dict[str, Any] = {
                "duration_s": 0.0 if first else (self._ts - int(self.since_ms[i])) / 1000
            }
            if reason[i]:
                extra["reason"] = reasons[reason[i]]
            self._emit(i, "state", STATE_NAMES[int(state[i])], **extra)
            self.since_ms[i] = self._ts
        self._episode[held & ~self._held] = held_reason
        for i in np.flatnonzero(self._episode).tolist():
            self._emit(i, "stop", STATE_NAMES[int(state[i])], reason=reasons[self._episode[i]])
        self._episode[:] = 0
        self.state, self._reason, self._held = state, reason, held.copy()
