"""Alarm episodes across service passes: one alarm per fault, not one per pass.

Each pass scores new buckets with some earlier ones as context, so the monitor finds an
ongoing episode again, often with a slightly different first bucket. The book keeps
every alarm it has reported per machine (or hall), type and kind: an episode that starts
before the known alarm's end (plus the merge gap) continues it and keeps its start,
which is the alarm's identity in InfluxDB; an open alarm no pass finds again is closed.

Example
-------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class A:
...     machine: str; machine_type: str; kind: str; signal: str
...     start_ms: int; end_ms: int | None; peak_score: float; z: float
>>> book = AlarmBook(merge_gap_ms=300_000)
>>> out, fresh = book.update([A("l1", "loom", "process", "vib", 60_000, None, 0.9, 5.0)], 0)
>>> len(fresh), out[0].start_ms
(1, 60000)
>>> out, fresh = book.update([A("l1", "loom", "process", "vib", 120_000, 600_000, 0.95, 6.0)],
...                          300_000)
>>> len(fresh), out[0].start_ms, out[0].end_ms, out[0].peak_score
(0, 60000, 600000, 0.95)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["AlarmBook"]


def _key(alarm: Any) -> tuple[str, str, str]:
    who = alarm.machine or ",".join(getattr(alarm, "machines", ()))
    return who, alarm.machine_type, alarm.kind


@dataclass
class AlarmBook:
    """The alarms reported so far that may still continue (open or recently ended)."""

    merge_gap_ms: int
    known: dict[tuple[str, str, str], Any] = field(default_factory=dict)

    def update(self, alarms: Sequence[Any], new_from_ms: int) -> tuple[list[Any], list[Any]]:
        """Fold one pass's episodes in; return the alarms to store, and the new ones.

        ``new_from_ms`` is the first bucket the pass scores for the first time; an
        unknown episode reaching back before it starts there (the earlier buckets were
        context, already judged by the previous pass).
        """
        changed: dict[tuple[str, str, str], Any] = {}
        fresh = []
        for alarm in sorted(alarms, key=lambda a: a.start_ms):
            if alarm.end_ms is not None and alarm.end_ms < new_from_ms:
                continue  # over before this pass's new buckets: reported already
            key = _key(alarm)
            before = changed.get(key) or self.known.get(key)
            if before is not None and alarm.start_ms <= _end(before, alarm) + self.merge_gap_ms:
                merged = _continue(before, alarm)
            else:
                merged = replace(alarm, start_ms=max(alarm.start_ms, new_from_ms))
                fresh.append(merged)
            changed[key] = merged
        for key, alarm in self.known.items():
            if key not in changed and alarm.end_ms is None:  # not found again: it ended
                changed[key] = replace(alarm, end_ms=new_from_ms)
        self.known.update(changed)
        horizon = new_from_ms - self.merge_gap_ms
        self.known = {
            k: a for k, a in self.known.items() if a.end_ms is None or a.end_ms >= horizon
        }
        return list(changed.values()), fresh


def _end(before: Any, now: Any) -> int:
    return before.end_ms if before.end_ms is not None else now.start_ms


def _continue(before: Any, alarm: Any) -> Any:
    """``alarm`` as the continuation of ``before``: its start, the stronger peak's details."""
    stronger = alarm if alarm.peak_score >= before.peak_score else before
    return replace(stronger, start_ms=before.start_ms, end_ms=alarm.end_ms)
