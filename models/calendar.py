"""Calendar features of a period, known in advance: yearly position, quarter ends, holidays.

Unlike signals read from topics, the calendar of a *future* period is known when the forecast
is made, so a model may use the target period's own calendar (the linear model does). The
yearly terms are aligned to the calendar date, not to the key's first period, so every key of a
product family shares the same phase; quarter ends matter because public buyers spend their
budgets then; holidays (e.g. Spring Festival, Golden Week) are configured as ISO dates.

>>> from dealstream.models.periods import period_index
>>> cal = Calendar("week", holidays=("2024-10-01", "2024-10-02"))
>>> week = period_index(1727654400000, "week")  # Mon 30 Sep 2024
>>> x = cal.features(week, fourier_terms=1)
>>> x["cal_quarter_end"], x["cal_holidays"], round(x["cal_year_sin1"], 2)
(1.0, 2.0, -1.0)
"""

from __future__ import annotations

import datetime as dt
import math

from dealstream.models.periods import DAY_MS, Granularity, period_end_ms, period_start_ms

_YEAR_DAYS = 365.2425


class Calendar:
    """Calendar features per period index (picklable: plain attributes only)."""

    def __init__(self, granularity: Granularity, holidays: tuple[str, ...] = ()) -> None:
        self.granularity: Granularity = granularity
        self.holidays = tuple(sorted(holidays))
        self._holiday_days = frozenset(dt.date.fromisoformat(d).toordinal() for d in self.holidays)

    def features(self, index: int, *, fourier_terms: int = 2) -> dict[str, float]:
        """``cal_year_sin/cos<k>``, ``cal_quarter_end`` and ``cal_holidays`` of period ``index``."""
        start = period_start_ms(index, self.granularity)
        end = period_end_ms(index, self.granularity)
        first = _date(start)
        days = [first + dt.timedelta(days=d) for d in range((end - start) // DAY_MS)]
        mid = (start + end) / 2 / DAY_MS  # days since the epoch, at the middle of the period
        x: dict[str, float] = {}
        for k in range(1, fourier_terms + 1):
            angle = 2.0 * math.pi * k * (mid - _year_origin(first)) / _YEAR_DAYS
            x[f"cal_year_sin{k}"] = math.sin(angle)
            x[f"cal_year_cos{k}"] = math.cos(angle)
        x["cal_quarter_end"] = float(any(_is_quarter_end(d) for d in days))
        x["cal_holidays"] = float(sum(d.toordinal() in self._holiday_days for d in days))
        return x


def _date(ms: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=ms // DAY_MS)


def _year_origin(day: dt.date) -> float:
    """Days since the epoch of 1 January of ``day``'s year (the phase origin)."""
    return float((dt.date(day.year, 1, 1) - dt.date(1970, 1, 1)).days)


def _is_quarter_end(day: dt.date) -> bool:
    return day.month in (3, 6, 9, 12) and (day + dt.timedelta(days=1)).month != day.month
