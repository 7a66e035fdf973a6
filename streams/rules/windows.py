"""Sliding-window aggregates over a signal series, updated incrementally.

Evaluating ``max_over("discount_pct", "7d")`` by scanning the window at every event costs the
window's size per event: a busy SKU with thousands of sales a week made the rules pipeline the
slowest part of the worker. Event time mostly moves forward, so each (key, signal, window)
keeps the points inside the window in a deque, monotonic deques for min and max, and a running
sum: every point enters and leaves once. When the series changed in a way the cache did not
see (a late point inserted before the cached end, eviction at the front) or a query goes back
in time, the cache is rebuilt by a scan, which is what the plain scan cost anyway.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dealstream.streams.rules.state import Point


def numeric(value: object) -> float | int | None:
    """The value as a number for aggregates; None for text, booleans and missing values."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return float(value)
    return None


def _ts(p: Point) -> int:
    return p.ts


@dataclass
class WindowStats:
    """Aggregates of the numeric points in one window, and which points made them."""

    count: int
    total: float
    min_point: Point | None  # the newest point holding the minimum
    max_point: Point | None  # the newest point holding the maximum
    recent: list[Point]  # the newest points in the window (for the audit trail)


class SlidingWindow:
    """Incremental aggregates of ``series`` over ``(since, until]`` as both move forward."""

    def __init__(self, series: list[Point]) -> None:
        self.series = series
        self._series = series
        self._reset()

    def _reset(self) -> None:
        series = self._series
        self._first = series[0] if series else None
        self._end = 0
        self._tail: Point | None = None
        self._since = self._until = -(2**63)
        self._inside: deque[int] = deque()
        self._max: deque[int] = deque()
        self._min: deque[int] = deque()
        self._total = 0.0
        self._count = 0

    def _still_valid(self, since: int, until: int) -> bool:
        series = self._series
        if since < self._since or until < self._until:
            return False
        if series and series[0] is not self._first and self._end:
            return False
        return self._end == 0 or (self._end <= len(series) and series[self._end - 1] is self._tail)

    def stats(self, since: int, until: int, *, recent: int = 0) -> WindowStats:
        """Aggregates over ``(since, until]``; ``recent`` newest points are listed too."""
        if not self._still_valid(since, until):
            self._reset()
        series = self._series
        hi = bisect.bisect_right(series, until, key=_ts)
        for i in range(self._end, hi):
            self._inside.append(i)
            v = numeric(series[i].value)
            if v is None:
                continue
            self._total += v
            self._count += 1
            while self._max and numeric(series[self._max[-1]].value) <= v:  # type: ignore[operator]
                self._max.pop()
            self._max.append(i)
            while self._min and numeric(series[self._min[-1]].value) >= v:  # type: ignore[operator]
                self._min.pop()
            self._min.append(i)
        self._end = max(self._end, hi)
        self._tail = series[self._end - 1] if self._end else None
        if not self._first and series:
            self._first = series[0]
        inside = self._inside
        while inside and series[inside[0]].ts <= since:
            i = inside.popleft()
            v = numeric(series[i].value)
            if v is not None:
                self._total -= v
                self._count -= 1
            if self._max and self._max[0] == i:
                self._max.popleft()
            if self._min and self._min[0] == i:
                self._min.popleft()
        self._since, self._until = since, until
        return WindowStats(
            count=self._count,
            total=self._total,
            min_point=series[self._min[0]] if self._min else None,
            max_point=series[self._max[0]] if self._max else None,
            recent=[series[i] for i in reversed(list(islice(reversed(inside), recent)))]
            if recent
            else [],
        )


def without_dominated(points: list[Point], *, keep_max: bool, keep_min: bool) -> list[Point]:
    """The points an extreme over any window ending at or after the last of them can still be.

    A point with a newer point at least as large is never the (newest) maximum of a window
    that reaches that newer point; likewise for minima. Keeping only the rest bounds a signal
    read only by ``max_over``/``min_over``/``last`` to a handful of points whatever the event
    rate (a monotonic stack), instead of every point of a 7-day window. The last point stays
    for ``last()``.

    >>> from dealstream.streams.rules.state import Point
    >>> pts = [Point(t, v, f"e{t}") for t, v in enumerate([3, 1, 4, 1, 5, 2, 2])]
    >>> [p.value for p in without_dominated(pts, keep_max=True, keep_min=False)]
    [5, 2]
    >>> [p.value for p in without_dominated(pts, keep_max=True, keep_min=True)]
    [1, 5, 2]
    """
    if len(points) < 2:
        return points
    kept: list[Point] = [points[-1]]
    high = low = numeric(points[-1].value)
    for p in reversed(points[:-1]):
        v = numeric(p.value)
        if v is None:
            continue
        needed = False
        if keep_max and (high is None or v > high):
            needed = True
        if keep_min and (low is None or v < low):
            needed = True
        if high is None or v > high:
            high = v
        if low is None or v < low:
            low = v
        if needed:
            kept.append(p)
    kept.reverse()
    return kept
