"""A customer's signal store that knows when eviction next has work to do, and where.

The store task pipeline evicts a customer's signals at each of their purchases (so that a
frequent buyer's compacted purchase series stays short between daily expiries). In
:class:`SeriesStore` that walks every key and signal of the customer, bisecting each series,
although most calls change nothing. :class:`CustomerSignals` keeps, for each series of two
points or more, the earliest watermark at which :meth:`evict` changes it (its oldest point
leaves the retention, or a compacted signal's second point is settled), so an eviction before
the earliest of them is one comparison, and one that is due visits only the series that are:
the store ends up exactly as :class:`SeriesStore` would leave it. It also writes its snapshot
with orjson (the same JSON).

>>> s = CustomerSignals(retention_ms={"purchase": 100}, extremes_only={"purchase": frozenset()})
>>> for t in (10, 20, 30):
...     s.append("k", "purchase", Point(t, 1, f"e{t}"))
>>> s.next_due  # the second point settles at 20: the first is then compacted away
20
>>> s.evict(19), s.evict(25), s.next_due, [p.event_id for p in s.window("k", "purchase", 0, 99)]
(0, 1, 30, ['e20', 'e30'])
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping

import orjson

from dealstream.streams.rules.state import Extremes, Point, SeriesStore

__all__ = ["CustomerSignals", "Point"]

NEVER = 2**63  # later than any event time (epoch ms)
Slot = tuple[str, str]  # (state key, signal)


class CustomerSignals(SeriesStore):
    """A :class:`SeriesStore` whose :meth:`evict` skips the series it would leave unchanged."""

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
        super().__init__(retention_ms=retention_ms, extremes_only=extremes_only)

    # The pipeline sets both after a restore: the due times then have to be worked out again.
    @property
    def retention_ms(self) -> dict[str, int]:
        return self._retention_ms

    @retention_ms.setter
    def retention_ms(self, value: dict[str, int]) -> None:
        self._retention_ms, self._dues = value, None

    @property
    def extremes_only(self) -> dict[str, Extremes]:
        return self._extremes_only

    @extremes_only.setter
    def extremes_only(self, value: dict[str, Extremes]) -> None:
        self._extremes_only, self._dues = value, None

    @property
    def next_due(self) -> int:
        """The earliest watermark at which :meth:`evict` drops a point (``NEVER``: none)."""
        self._tracked()
        return self._due

    def append(self, key: str, signal: str, point: Point) -> None:
        """As :meth:`SeriesStore.append` (inlined: it runs for every signal of every record)."""
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

    def evict(self, watermark_ms: int) -> int:
        """As :meth:`SeriesStore.evict`, visiting only the series that have something due."""
        if watermark_ms < self._due and self._dues is not None:
            return 0  # the common case: one comparison
        dues = self._tracked()
        if watermark_ms < self._due:
            return 0
        dropped, earliest = 0, NEVER
        retention, extremes_only = self._retention_ms, self._extremes_only
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
                    dropped += self._settle(key, signal, series, watermark_ms, extremes)
                if dropped != before:
                    self.touched.add(key)
                if len(series) < 2:
                    del dues[slot]
                    continue
                due = dues[slot] = self._due_of(signal, series)
            earliest = min(earliest, due)
        self._due = earliest
        return dropped

    def drop_key(self, key: str) -> None:
        super().drop_key(key)
        self._dues = None

    def forget(self, signals: frozenset[str]) -> None:
        super().forget(signals)
        self._dues = None

    def _settle(
        self, key: str, signal: str, series: list[Point], watermark_ms: int, extremes: Extremes
    ) -> int:
        """Compact two or more settled points (see :func:`without_dominated`: a signal read
        by neither ``max_over`` nor ``min_over`` keeps only its newest settled point)."""
        if extremes:
            return self._compact(key, signal, series, watermark_ms, extremes)
        settled = 2  # series[1] is settled; the rest rarely are (a scan beats bisect here)
        while settled < len(series) and series[settled].ts <= watermark_ms:
            settled += 1
        del series[: settled - 1]
        for width in self._widths.get(signal, ()):
            self._windows.pop((key, signal, width), None)  # indices moved: rebuild on next use
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

    def snapshot(self) -> bytes:
        """The :meth:`SeriesStore.snapshot` document, written by orjson."""
        return orjson.dumps({
            "v": self.SNAPSHOT_VERSION,
            "retention_ms": self._retention_ms,
            "series": {
                key: {sig: [[p.ts, p.value, p.event_id] for p in pts] for sig, pts in sigs.items()}
                for key, sigs in self._series.items()
            },
        })  # fmt: skip

    def _due_of(self, signal: str, series: list[Point]) -> int:
        """When evict first changes a series of two points or more: its oldest point leaves
        the retention, or (compacted signals) its second point is settled."""
        due = series[0].ts + self._retention_ms.get(signal, 0)
        if signal in self._extremes_only and series[1].ts < due:
            return series[1].ts
        return due


def _ts(p: Point) -> int:
    return p.ts
