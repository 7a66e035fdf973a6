"""Event-time timers for absence and sequence rules: a heap with lazy cancellation.

At most one pending timer per (rule, key); ``pop_due(watermark)`` hands back, in due order,
the timers the watermark has passed. Snapshots to plain data with the rest of the engine state.
A ``limit`` bounds the pending timers: a full queue refuses new ones and counts them per rule
(an absence rule arms one per unanswered conversation and keeps it for days).

>>> q = TimerQueue()
>>> q.schedule(Timer(due_ms=100, rule_id="r", key="k", started_ms=0, event_ids=("e1",)))
True
>>> q.cancel("r", "k"), q.pop_due(1000)
(True, [])
>>> full = TimerQueue(limit=1)
>>> [full.schedule(Timer(100, "r", k, 0, ())) for k in ("a", "b")], full.refused
([True, False], {'r': 1})
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Timer:
    due_ms: int
    rule_id: str
    key: str
    started_ms: int  # event time of what armed it
    event_ids: tuple[str, ...]


class TimerQueue:
    def __init__(self, *, limit: int | None = None) -> None:
        self._heap: list[tuple[int, int, str, str]] = []
        self._active: dict[tuple[str, str], tuple[int, Timer]] = {}
        self._seq = 0
        self.limit = limit
        # Timers refused because the queue was full, by rule, since the owner last reset it.
        self.refused: dict[str, int] = {}

    def schedule(self, timer: Timer) -> bool:
        """Arm a timer; False (and no change) if one is already pending for its rule and key,
        or if ``limit`` timers are pending (then counted in ``refused``)."""
        ident = (timer.rule_id, timer.key)
        if ident in self._active:
            return False
        if self.limit is not None and len(self._active) >= self.limit:
            self.refused[timer.rule_id] = self.refused.get(timer.rule_id, 0) + 1
            return False
        self._seq += 1
        self._active[ident] = (self._seq, timer)
        heapq.heappush(self._heap, (timer.due_ms, self._seq, timer.rule_id, timer.key))
        return True

    def pending(self, rule_id: str, key: str) -> Timer | None:
        found = self._active.get((rule_id, key))
        return found[1] if found else None

    def cancel(self, rule_id: str, key: str) -> bool:
        if self._active.pop((rule_id, key), None) is None:
            return False
        if len(self._heap) > 2 * len(self._active) + 1024:
            # Cancelled timers wait in the heap until due (72 h for an answered chat): rebuild
            # it from the live ones before they outnumber them, so memory follows live timers.
            self._heap = [(t.due_ms, seq, t.rule_id, t.key) for seq, t in self._active.values()]
            heapq.heapify(self._heap)
        return True

    def pop_due(self, watermark_ms: int) -> list[Timer]:
        due: list[Timer] = []
        while self._heap and self._heap[0][0] <= watermark_ms:
            _, seq, rule_id, key = heapq.heappop(self._heap)
            live = self._active.get((rule_id, key))
            if live is not None and live[0] == seq:
                del self._active[(rule_id, key)]
                due.append(live[1])
        return due

    def __len__(self) -> int:
        return len(self._active)

    @property
    def heap_size(self) -> int:
        """Entries in the heap, cancelled ones included (bounded by the live count)."""
        return len(self._heap)

    def entry(self, rule_id: str, key: str) -> dict[str, Any] | None:
        """The pending timer of ``rule_id`` and ``key`` in the snapshot's format."""
        found = self._active.get((rule_id, key))
        return None if found is None else _data(found[1])

    def to_data(self) -> list[dict[str, Any]]:
        timers = sorted(self._active.values(), key=lambda st: st[0])
        return [_data(t) for _, t in timers]

    @classmethod
    def from_data(cls, data: list[dict[str, Any]], *, limit: int | None = None) -> TimerQueue:
        """The queue of a snapshot; every restored timer is kept, even beyond a lowered
        ``limit`` (which then refuses new ones until enough have fired)."""
        q = cls()
        for d in data:
            q.schedule(
                Timer(
                    int(d["due_ms"]),
                    str(d["rule_id"]),
                    str(d["key"]),
                    int(d["started_ms"]),
                    tuple(str(e) for e in d["event_ids"]),
                )
            )
        q.limit = limit
        return q


def _data(t: Timer) -> dict[str, Any]:
    return {
        "due_ms": t.due_ms,
        "rule_id": t.rule_id,
        "key": t.key,
        "started_ms": t.started_ms,
        "event_ids": list(t.event_ids),
    }
