"""Prequential accuracy (scored when the actual arrives) and the sales-rep deviation tracker.

Stats are sums, not averages, so per-key stats merge exactly into per-region or per-rep ones
(``aggregate``) wherever the keys were processed. MAPE skips zero actuals (undefined there);
WAPE is the one to trust for intermittent sales.

>>> s = AccuracyStats()
>>> for f, y in [(10.0, 8.0), (5.0, 0.0), (9.0, 10.0)]:
...     s.update(f, y)
>>> s.n, s.mae, round(s.wape, 3), round(s.mape, 3), s.bias
(3, 2.6666666666666665, 0.444, 0.175, 2.0)
>>> aggregate([("north", s), ("north", s), ("south", s)])["north"].n
6
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(slots=True)
class AccuracyStats:
    """Sums over scored forecasts; bias is mean(forecast − actual), positive = over-forecast."""

    n: int = 0
    abs_error: float = 0.0
    abs_actual: float = 0.0
    error: float = 0.0
    ape: float = 0.0
    n_ape: int = 0

    def update(self, forecast: float, actual: float) -> None:
        """Score one forecast against its actual."""
        e = forecast - actual
        self.n += 1
        self.abs_error += abs(e)
        self.abs_actual += abs(actual)
        self.error += e
        if actual != 0:
            self.ape += abs(e) / abs(actual)
            self.n_ape += 1

    def merge(self, other: AccuracyStats) -> AccuracyStats:
        """A new stats object covering both."""
        return AccuracyStats(
            self.n + other.n,
            self.abs_error + other.abs_error,
            self.abs_actual + other.abs_actual,
            self.error + other.error,
            self.ape + other.ape,
            self.n_ape + other.n_ape,
        )

    @property
    def mae(self) -> float:
        return self.abs_error / self.n if self.n else math.nan

    @property
    def wape(self) -> float:
        return self.abs_error / self.abs_actual if self.abs_actual else math.nan

    @property
    def mape(self) -> float:
        return self.ape / self.n_ape if self.n_ape else math.nan

    @property
    def bias(self) -> float:
        return self.error / self.n if self.n else math.nan


@dataclass(slots=True)
class KeyAccuracy:
    """Accuracy of one key, per horizon."""

    by_horizon: dict[int, AccuracyStats] = field(default_factory=dict)

    def update(self, horizon: int, forecast: float, actual: float) -> None:
        self.by_horizon.setdefault(horizon, AccuracyStats()).update(forecast, actual)


def aggregate(items: Iterable[tuple[str, AccuracyStats]]) -> dict[str, AccuracyStats]:
    """Merge stats by group (region, rep, ...): pass ``(group_of(key), stats)`` pairs."""
    out: dict[str, AccuracyStats] = {}
    for group, stats in items:
        out[group] = out[group].merge(stats) if group in out else stats.merge(AccuracyStats())
    return out


@dataclass(frozen=True, slots=True)
class RepDeviationFlag:
    """A rep's forecast deviated beyond the threshold for ``len(periods)`` periods in a row."""

    rep: str
    periods: tuple[int, ...]
    deviations: tuple[float, ...]  # signed (rep − reference) / reference
    threshold: float


@dataclass(slots=True)
class _Streak:
    last_period: int | None = None
    recent: deque[tuple[int, float]] = field(default_factory=deque)
    length: int = 0
    flagged: bool = False


class RepDeviationTracker:
    """Flags reps whose forecasts stay far from a reference (actual or model forecast).

    >>> t = RepDeviationTracker(threshold=0.15, periods=3)
    >>> [t.update("ana", p, rep_forecast=120.0, reference=100.0) is not None for p in range(4)]
    [False, False, True, False]
    """

    def __init__(self, threshold: float = 0.15, periods: int = 3) -> None:
        if threshold <= 0 or periods < 1:
            raise ValueError("threshold must be > 0 and periods >= 1")
        self.threshold = threshold
        self.periods = periods
        self._streaks: dict[str, _Streak] = {}

    def update(
        self, rep: str, period: int, *, rep_forecast: float, reference: float
    ) -> RepDeviationFlag | None:
        """Record one period; return a flag once, when a streak reaches ``periods``."""
        if rep_forecast == reference:
            deviation = 0.0
        else:
            deviation = (rep_forecast - reference) / abs(reference) if reference else math.inf
        s = self._streaks.setdefault(rep, _Streak(recent=deque(maxlen=self.periods)))
        if s.last_period is not None and period < s.last_period:
            return None  # an older period than the streak's: too late to change it
        if s.last_period == period and s.recent:  # a revision of the same period replaces it
            s.recent.pop()
            s.length -= 1
        elif s.last_period is not None and s.last_period != period - 1:  # a gap breaks it
            s.recent.clear()
            s.length, s.flagged = 0, False
        s.last_period = period
        if abs(deviation) <= self.threshold:
            s.recent.clear()
            s.length, s.flagged = 0, False
            return None
        s.recent.append((period, deviation))
        s.length += 1
        if s.length < self.periods or s.flagged:
            return None
        s.flagged = True
        return RepDeviationFlag(
            rep, tuple(p for p, _ in s.recent), tuple(d for _, d in s.recent), self.threshold
        )
