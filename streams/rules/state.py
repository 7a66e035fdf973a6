"""Keyed, time-windowed signal series: what business rules remember between events.

Per state key (say a rule and "SKU|region") and signal name, an append-only series of points
ordered by event time. Old points are evicted by event time (a watermark), never by wall
clock, and the newest point of a series is always kept so ``last()`` survives long quiet spells.
The whole store snapshots to bytes and is rebuilt from them alone (DESIGN §3.3).

>>> s = SeriesStore(retention_ms={"price": 1000})
>>> s.append("k", "price", Point(1000, 9.5, "e1")); s.append("k", "price", Point(1500, 9.0, "e2"))
>>> [p.value for p in s.window("k", "price", since_ms=1000, until_ms=1500)]
[9.0]
>>> s.evict(3000); [p.event_id for p in s.window("k", "price", 0, 9999)]
1
['e2']
>>> SeriesStore.restore(s.snapshot()).last("k", "price")
Point(ts=1500, value=9.0, event_id='e2')
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Mapping
from typing import NamedTuple

import orjson

from dealstream.streams.rules.windows import SlidingWindow, WindowStats, without_dominated

Value = float | int | str | bool
Extremes = frozenset[str]
"""Which of ``max_over`` and ``min_over`` read a compacted signal."""


class Point(NamedTuple):
    """One observation; a named tuple, as one is made per recorded signal of every event
    (a third of a frozen dataclass's construction cost)."""

    ts: int  # event time, epoch ms
    value: Value
    event_id: str


def _ts(p: Point) -> int:
    return p.ts


NEVER = 2**63  # later than any event time (epoch ms)
Slot = tuple[str, str]  # (state key, signal)


class SeriesStore:
    """Series per (state key, signal); ``retention_ms`` per signal bounds how far back it keeps.

    Eviction runs often (every batch for business rules, every purchase for store tasks) and
    mostly has nothing to do: the store keeps, for each series of two points or more, the
    earliest watermark at which :meth:`evict` changes it (its oldest point leaves the retention,
    or a compacted signal's second point is settled), so an eviction before the earliest of
    them is one comparison, and one that is due visits only the series that are.
    """

    SNAPSHOT_VERSION = 1

    def __init__(
        self,
        *,
        retention_ms: Mapping[str, int] | None = None,
        extremes_only: Mapping[str, Extremes] | None = None,
    ) -> None:
        # When evict first changes each series of 2+ points; None: not known (restored, or
        # settings replaced), worked out again when needed. Never snapshotted.
        self._dues: dict[Slot, int] | None = None
        self._due = NEVER  # the earliest of them
        self.retention_ms: dict[str, int] = {}
        # Signals read only through max_over/min_over/last: their settled points are compacted.
        self.extremes_only: dict[str, Extremes] = {}
        self.set_policy(retention_ms or {}, extremes_only or {})
        self._series: dict[str, dict[str, list[Point]]] = {}
        # Keys whose series changed since the owner last took them (incremental checkpoints).
        self.touched: set[str] = set()
        # Incremental window aggregates (a cache: never snapshotted, rebuilt when needed).
        self._windows: dict[tuple[str, str, int], SlidingWindow] = {}
        self._widths: dict[str, set[int]] = {}

    def set_policy(
        self, retention_ms: Mapping[str, int], extremes_only: Mapping[str, Extremes]
    ) -> None:
        """What to keep (owners set it after a restore, from their current rules); the due
        times are worked out again when next needed. Set both only through here."""
        self.retention_ms, self.extremes_only = dict(retention_ms), dict(extremes_only)
        self._dues = None

    @property
    def next_due(self) -> int:
        """The earliest watermark at which :meth:`evict` drops a point (``NEVER``: none)."""
        self._tracked()
        return self._due

    def append(self, key: str, signal: str, point: Point) -> None:
        """Add a point; out-of-order points are inserted in event-time order."""
        signals = self._series.get(key)
        if signals is None:  # (no setdefault: its default would be built on every call)
            signals = self._series[key] = {}
        series = signals.get(signal)
        if series is None:
            series = signals[signal] = []
        self.touched.add(key)
        if not series or series[-1].ts <= point.ts:
            series.append(point)
            if len(series) != 2:  # the first two points, and so the due time, are unchanged
                return
        else:
            bisect.insort_right(series, point, key=_ts)
        if self._dues is not None:  # a point only brings a due time forward
            due = self._due_of(signal, series)
            if due < self._dues.get((key, signal), NEVER):
                self._dues[key, signal] = due
                self._due = min(self._due, due)

    def window(self, key: str, signal: str, since_ms: int, until_ms: int) -> list[Point]:
        """Points with ``since_ms < ts <= until_ms``."""
        series = self._series.get(key, {}).get(signal)
        if not series:
            return []
        lo = bisect.bisect_right(series, since_ms, key=_ts)
        hi = bisect.bisect_right(series, until_ms, key=_ts)
        return series[lo:hi]

    def window_stats(
        self, key: str, signal: str, since_ms: int, until_ms: int, *, recent: int = 0
    ) -> WindowStats:
        """Aggregates of the points with ``since_ms < ts <= until_ms`` (amortised O(1))."""
        series = self._series.get(key, {}).get(signal)
        if not series:
            return WindowStats(0, 0.0, None, None, [])
        slot = (key, signal, until_ms - since_ms)
        window = self._windows.get(slot)
        if window is None or window.series is not series:
            window = self._windows[slot] = SlidingWindow(series)
            self._widths.setdefault(signal, set()).add(slot[2])
        return window.stats(since_ms, until_ms, recent=recent)

    def last(self, key: str, signal: str, until_ms: int | None = None) -> Point | None:
        """Newest point (at or before ``until_ms`` when given)."""
        series = self._series.get(key, {}).get(signal)
        if not series:
            return None
        if until_ms is None or series[-1].ts <= until_ms:
            return series[-1]
        i = bisect.bisect_right(series, until_ms, key=_ts)
        return series[i - 1] if i else None

    def evict(self, watermark_ms: int) -> int:
        """Drop points older than their signal's retention before ``watermark_ms``, and the
        points at or before the watermark that can no longer be an extreme (signals read only
        through ``max_over``/``min_over``/``last``; see :func:`without_dominated`).

        Queries that end at or after the watermark get exactly the answers they would without
        compaction; an event later than the allowed lateness is evaluated against the
        compacted series (its window may miss points a newer one dominated).
        """
        if watermark_ms < self._due and self._dues is not None:
            return 0  # the common case: one comparison
        dues = self._tracked()
        if watermark_ms < self._due:
            return 0
        dropped, earliest = 0, NEVER
        retention, extremes_only = self.retention_ms, self.extremes_only
        for slot, was in list(dues.items()):
            due = was
            if was <= watermark_ms:
                key, signal = slot
                series = self._series[key][signal]
                kept, before = retention.get(signal, 0), dropped
                if series[0].ts + kept <= watermark_ms:  # the oldest left the retention
                    i = bisect.bisect_right(series, watermark_ms - kept, key=_ts)
                    i = min(i, len(series) - 1)
                    del series[:i]
                    dropped += i
                extremes = extremes_only.get(signal)
                if extremes is not None and len(series) > 1 and series[1].ts <= watermark_ms:
                    compacted = self._settle(series, watermark_ms, extremes)
                    if compacted:
                        dropped += compacted
                        for width in self._widths.get(signal, ()):
                            self._windows.pop((key, signal, width), None)  # indices moved
                if dropped != before:
                    self.touched.add(key)
                if len(series) < 2:
                    del dues[slot]
                    continue
                due = dues[slot] = self._due_of(signal, series)
            earliest = min(earliest, due)
        self._due = earliest
        return dropped

    @staticmethod
    def _settle(series: list[Point], watermark_ms: int, extremes: Extremes) -> int:
        """Compact two or more settled points (see :func:`without_dominated`: a signal read
        by neither ``max_over`` nor ``min_over`` keeps only its newest settled point)."""
        if extremes:
            settled = bisect.bisect_right(series, watermark_ms, key=_ts)
            kept = without_dominated(
                series[:settled], keep_max="max_over" in extremes, keep_min="min_over" in extremes
            )
            series[:settled] = kept
            return settled - len(kept)
        settled = 2  # series[1] is settled; the rest rarely are (a scan beats bisect here)
        while settled < len(series) and series[settled].ts <= watermark_ms:
            settled += 1
        del series[: settled - 1]
        return settled - 1

    def _tracked(self) -> dict[Slot, int]:
        if self._dues is None:
            self._dues = {
                (key, signal): self._due_of(signal, series)
                for key, signals in self._series.items()
                for signal, series in signals.items()
                if len(series) > 1
            }
            self._due = min(self._dues.values(), default=NEVER)
        return self._dues

    def _due_of(self, signal: str, series: list[Point]) -> int:
        """When evict first changes a series of two points or more: its oldest point leaves
        the retention, or (compacted signals) its second point is settled."""
        due = series[0].ts + self.retention_ms.get(signal, 0)
        if signal in self.extremes_only and series[1].ts < due:
            return series[1].ts
        return due

    def forget(self, signals: frozenset[str]) -> None:
        """Drop every series of ``signals`` (nothing reads them any more) and emptied keys."""
        for key in list(self._series):
            found = self._series[key]
            if found.keys() & signals:
                for signal in signals:
                    found.pop(signal, None)
                self.touched.add(key)
                if not found:
                    self.drop_key(key)
        self._dues = None

    def entry(self, key: str) -> dict[str, list[list[Value | int | str]]] | None:
        """One key's series in the snapshot's format (None when it has none)."""
        signals = self._series.get(key)
        if not signals:
            return None
        return {sig: [[p.ts, p.value, p.event_id] for p in pts] for sig, pts in signals.items()}

    def drop_key(self, key: str) -> None:
        self._series.pop(key, None)
        self.touched.add(key)
        self._dues = None
        for slot in [slot for slot in self._windows if slot[0] == key]:
            del self._windows[slot]

    def __len__(self) -> int:
        return sum(len(s) for signals in self._series.values() for s in signals.values())

    def snapshot(self) -> bytes:
        """JSON bytes (never pickle: a snapshot must not be able to run code when restored)."""
        # A Point is a named tuple: orjson hands it to ``tuple`` and writes [ts, value, id],
        # without a Python list per point (40% of a store task customer's snapshot).
        doc = {
            "v": self.SNAPSHOT_VERSION,
            "retention_ms": self.retention_ms,
            "series": self._series,
        }
        return orjson.dumps(doc, default=tuple)

    @classmethod
    def restore(cls, data: bytes) -> SeriesStore:
        doc = json.loads(data)
        if doc.get("v") != cls.SNAPSHOT_VERSION:
            raise ValueError(f"unsupported state snapshot version {doc.get('v')!r}")
        store = cls(retention_ms=doc["retention_ms"])  # owners set_policy() from their rules
        for key, sigs in doc["series"].items():
            store._series[key] = {
                sig: [Point(int(ts), value, str(eid)) for ts, value, eid in pts]
                for sig, pts in sigs.items()
            }
        return store
