"""Per-key period buckets (UTC days or ISO weeks) closed by event time, with late revisions.

Sales arrive out of order, so a period is only *closed* (its actual handed to the model) once
the watermark (max event time seen − ``grace_ms``) has passed its end. A late event for a
closed period still counts if the period is at most ``allowed_lateness`` periods behind the
watermark's period: its actual is updated and reported as *revised*. Anything older comes back
as :class:`TooLate` so the caller can dead-letter it instead of losing it silently.

Periods are integer indexes (day or Monday-based week since the epoch) so that gaps, ordering
and seasonality are plain arithmetic.

>>> b = PeriodBuckets(granularity="day")
>>> DAY = 86_400_000
>>> b.add(DAY * 10 + 5, 3.0).closed
[]
>>> [(p.label, p.actual) for p in b.add(DAY * 12, 1.0).closed]
[('1970-01-11', 3.0), ('1970-01-12', 0.0)]
>>> r = b.add(DAY * 10 + 9, 2.0)
>>> (r.revised[0].label, r.revised[0].actual, r.revised[0].revised)
('1970-01-11', 5.0, True)
>>> b.add(DAY * 1, 1.0).too_late[0].label
'1970-01-02'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Granularity = Literal["day", "week"]

DAY_MS = 86_400_000
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def period_index(event_time_ms: int, granularity: Granularity) -> int:
    """Index of the UTC day, or of the ISO (Monday-based) week, holding ``event_time_ms``.

    >>> period_index(0, "week"), period_index(4 * DAY_MS, "week")  # Thu 1 Jan, Mon 5 Jan 1970
    (0, 1)
    """
    day = event_time_ms // DAY_MS
    return day if granularity == "day" else (day + _EPOCH_WEEKDAY) // 7


def period_start_ms(index: int, granularity: Granularity) -> int:
    """First millisecond of period ``index``.

    >>> period_start_ms(1, "week") == 4 * DAY_MS
    True
    """
    day = index if granularity == "day" else index * 7 - _EPOCH_WEEKDAY
    return day * DAY_MS


def period_end_ms(index: int, granularity: Granularity) -> int:
    """First millisecond after period ``index``."""
    return period_start_ms(index + 1, granularity)


def period_label(index: int, granularity: Granularity) -> str:
    """ISO label: ``2024-03-05`` for a day, ``2024-W10`` for a week.

    >>> period_label(period_index(1704067200000, "week"), "week")  # Mon 1 Jan 2024
    '2024-W01'
    """
    start = dt.datetime.fromtimestamp(period_start_ms(index, granularity) / 1000, tz=dt.UTC)
    if granularity == "day":
        return start.date().isoformat()
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True, slots=True)
class Period:
    """The actual of one closed period (or its revision), with the signals seen in it."""

    index: int
    label: str
    actual: float
    signals: Mapping[str, float]
    newest_ms: Mapping[str, int]  # newest input time per signal, "sales" for the actual
    revised: bool = False


@dataclass(frozen=True, slots=True)
class TooLate:
    """An event for a period older than the allowed lateness: returned, never dropped."""

    event_time_ms: int
    quantity: float
    index: int
    label: str


@dataclass(slots=True)
class Ingested:
    """What one ``add`` produced: newly closed periods, revisions and rejected events."""

    closed: list[Period] = field(default_factory=list)
    revised: list[Period] = field(default_factory=list)
    too_late: list[TooLate] = field(default_factory=list)


@dataclass(slots=True)
class _Bucket:
    actual: float = 0.0
    signals: dict[str, float] = field(default_factory=dict)
    newest_ms: dict[str, int] = field(default_factory=dict)
    revised: bool = False


class PeriodBuckets:
    """Open and recently closed buckets of one key; closed ones are kept for revisions only."""

    def __init__(
        self, granularity: Granularity = "week", allowed_lateness: int = 2, grace_ms: int = 0
    ) -> None:
        if granularity not in ("day", "week"):
            raise ValueError(f"granularity must be 'day' or 'week', not {granularity!r}")
        if allowed_lateness < 0 or grace_ms < 0:
            raise ValueError("allowed_lateness and grace_ms must be >= 0")
        self.granularity: Granularity = granularity
        self.allowed_lateness = allowed_lateness
        self.grace_ms = grace_ms
        self._buckets: dict[int, _Bucket] = {}
        self._max_event_ms: int | None = None
        self._next_to_close: int | None = None  # lowest period index not yet closed
        self._closed_any = False

    @property
    def watermark_ms(self) -> int | None:
        """Max event time seen − grace; periods ending at or before it are closed."""
        return None if self._max_event_ms is None else self._max_event_ms - self.grace_ms

    def add(
        self,
        event_time_ms: int,
        quantity: float = 0.0,
        signals: Mapping[str, float] | None = None,
    ) -> Ingested:
        """Add a sale (and/or external signal values, summed per period) at event time."""
        out = Ingested()
        index = period_index(event_time_ms, self.granularity)
        if self._next_to_close is None:
            self._next_to_close = index
        elif not self._closed_any and self._next_to_close - self.allowed_lateness <= index:
            # Nothing emitted yet: a slightly earlier first sale extends the history backwards.
            self._next_to_close = min(self._next_to_close, index)
        if index < self._next_to_close:
            self._add_late(index, event_time_ms, quantity, signals, out)
        else:
            bucket = self._buckets.setdefault(index, _Bucket())
            _accumulate(bucket, event_time_ms, quantity, signals)
        self._advance(event_time_ms, out)
        return out

    def advance_to(self, event_time_ms: int) -> Ingested:
        """Move event time forward without an event (e.g. a partition-wide watermark)."""
        out = Ingested()
        if self._next_to_close is not None:
            self._advance(event_time_ms, out)
        return out

    def _add_late(
        self,
        index: int,
        event_time_ms: int,
        quantity: float,
        signals: Mapping[str, float] | None,
        out: Ingested,
    ) -> None:
        bucket = self._buckets.get(index)
        if bucket is None:
            label = period_label(index, self.granularity)
            out.too_late.append(TooLate(event_time_ms, quantity, index, label))
            return
        _accumulate(bucket, event_time_ms, quantity, signals)
        bucket.revised = True
        out.revised.append(self._period(index, bucket))

    def _advance(self, event_time_ms: int, out: Ingested) -> None:
        if self._max_event_ms is None or event_time_ms > self._max_event_ms:
            self._max_event_ms = event_time_ms
        watermark = self.watermark_ms
        assert watermark is not None and self._next_to_close is not None
        while period_end_ms(self._next_to_close, self.granularity) <= watermark:
            index = self._next_to_close
            bucket = self._buckets.setdefault(index, _Bucket())
            out.closed.append(self._period(index, bucket))
            self._next_to_close += 1
            self._closed_any = True
        oldest_kept = self._next_to_close - self.allowed_lateness
        for index in [i for i in self._buckets if i < oldest_kept]:
            del self._buckets[index]

    def _period(self, index: int, bucket: _Bucket) -> Period:
        return Period(
            index=index,
            label=period_label(index, self.granularity),
            actual=bucket.actual,
            signals=dict(bucket.signals),
            newest_ms=dict(bucket.newest_ms),
            revised=bucket.revised,
        )


def _accumulate(
    bucket: _Bucket, event_time_ms: int, quantity: float, signals: Mapping[str, float] | None
) -> None:
    if quantity:
        bucket.actual += quantity
        bucket.newest_ms["sales"] = max(bucket.newest_ms.get("sales", event_time_ms), event_time_ms)
    for name, value in (signals or {}).items():
        bucket.signals[name] = bucket.signals.get(name, 0.0) + value
        bucket.newest_ms[name] = max(bucket.newest_ms.get(name, event_time_ms), event_time_ms)
