"""A customer's signal store that knows when eviction next has work to do.

The store task pipeline evicts a customer's signals at each of their purchases (so that a
frequent buyer's compacted purchase series stays short between daily expiries). In
:class:`SeriesStore` that walks every key and signal of the customer, bisecting each series,
although most calls change nothing. :class:`CustomerSignals` keeps the earliest watermark at
which :meth:`evict` could change anything (the oldest point of a series passing its retention,
or a second settled point of a compacted signal), so an eviction before then is one comparison,
and one that is due visits only the series that are: the store ends up exactly as
:class:`SeriesStore` would leave it. It also writes its snapshot with orjson (same JSON).

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


class CustomerSignals(SeriesStore):
    """A :class:`SeriesStore` whose :meth:`evict` skips the series it would leave unchanged."""

    def __init__(
        self,
        *,
        retention_ms: Mapping[str, int] | None = None,
        extremes_only: Mapping[str, Extremes] | None = None,
    ) -> None:
        self._due: int | None = None  # None: not known (restored, or settings replaced)
        super().__init__(retention_ms=retention_ms, extremes_only=extremes_only)

    # The pipeline sets both after a restore: the due time then has to be worked out again.
    @property
    def retention_ms(self) -> dict[str, int]:
        return self._retention_ms

    @retention_ms.setter
    def retention_ms(self, value: dict[str, int]) -> None:
        self._retention_ms, self._due = value, None

    @property
    def extremes_only(self) -> dict[str, Extremes]:
        return self._extremes_only

    @extremes_only.setter
    def extremes_only(self, value: dict[str, Extremes]) -> None:
        self._extremes_only, self._due = value, None

    @property
    def next_due(self) -> int:
        """The earliest watermark at which :meth:`evict` may drop a point (``NEVER``: none)."""
        if self._due is None:
            self._due = self._earliest()
        return self._due

    def append(self, key: str, signal: str, point: Point) -> None:
        super().append(key, signal, point)
        if self._due is not None:  # a new point can only bring the due time forward
            series = self._series[key][signal]
            if len(series) > 1:
                due = self._due_of(signal, series)
                self._due = min(self._due, due)

    def evict(self, watermark_ms: int) -> int:
        """As :meth:`SeriesStore.evict`, visiting only the series that have something due."""
        due = self._due if self._due is not None else self.next_due
        if watermark_ms < due:
            return 0  # (drop_key leaves the due time early: still a safe bound)
        dropped, earliest = 0, NEVER
        retention, extremes_only = self._retention_ms, self._extremes_only
        for key, signals in self._series.items():
            for signal, series in signals.items():
                if len(series) < 2:
                    continue
                if self._due_of(signal, series) <= watermark_ms:
                    cutoff = watermark_ms - retention.get(signal, 0)
                    i = min(bisect.bisect_right(series, cutoff, key=_ts), len(series) - 1)
                    if i > 0:
                        del series[:i]
                        dropped += i
                    extremes = extremes_only.get(signal)
                    if extremes is not None:
                        dropped += self._compact(key, signal, series, watermark_ms, extremes)
                    if len(series) < 2:
                        continue
                due = self._due_of(signal, series)
                earliest = min(earliest, due)
        self._due = earliest
        return dropped

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

    def _earliest(self) -> int:
        dues = [
            self._due_of(signal, series)
            for signals in self._series.values()
            for signal, series in signals.items()
            if len(series) > 1
        ]
        return min(dues, default=NEVER)


def _ts(p: Point) -> int:
    return p.ts
