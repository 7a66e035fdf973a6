"""External demand signals per region: what events mean as features, and the per-period board.

A signal is a number attributed to a region and a period: tender awards (count) and published
budgets (10k units of currency) in the region, procurement plans (planned budget, attributed to
the *planned* month, so a plan read today is a feature of the period it names), and IoT usage
(summed usage metrics of devices whose store maps to the region). The board keeps recent periods
per region, plus the newest input time per signal (freshness). It never waits for a signal: a
period with no signal simply has none, so a stale feed cannot hold a forecast back.

>>> board = SignalBoard("week")
>>> board.learn_store("S1", "CN-EAST")
>>> rec = {"occurred_at": 1704153600000, "payload": {"kind": "AWARD", "region": "CN-EAST",
...        "published_at": 1704153600000, "budget": None}}
>>> [(s.region, s.name, s.value) for s in from_event("tender.notice", rec, board.stores)]
[('CN-EAST', 'tender_award', 1.0)]
>>> for s in from_event("tender.notice", rec, board.stores):
...     board.add(s)
True
>>> values, newest = board.lookup("CN-EAST", 2818)
>>> values, newest["tender_award"]
({'tender_award': 1.0}, 1704153600000)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dealstream.models.periods import DAY_MS, Granularity, period_index

TENDER_AWARD = "tender_award"
TENDER_BUDGET = "tender_budget"
PROCUREMENT_PLAN = "procurement_plan"
IOT_USAGE = "iot_usage"
PROMO_DISCOUNT = "promo_discount"  # per key, from the POS line itself (see streams/forecast.py)
CALENDAR = "calendar"
MONEY_UNIT = 10_000.0  # budgets in 万 (10k): keeps the features near the sales' magnitude

DEFAULT_USAGE_METRICS = ("usage_count",)


@dataclass(frozen=True, slots=True)
class RegionSignal:
    """A value for ``region`` in the period holding ``period_ms``, known since ``at_ms``."""

    region: str  # "" until the board maps ``store`` to its region
    name: str
    value: float
    period_ms: int
    at_ms: int
    store: str = ""


def from_event(
    event_type: str,
    record: Mapping[str, Any],
    stores: Mapping[str, str],
    usage_metrics: Iterable[str] = DEFAULT_USAGE_METRICS,
) -> list[RegionSignal]:
    """The signals one decoded event carries (none when it says nothing about demand)."""
    p, at = record["payload"], _ms(record["occurred_at"])
    if event_type == "tender.notice":
        return _tender(p, at)
    if event_type == "procurement_plan":
        return _plan(p, at)
    if event_type == "iot.telemetry" and p.get("store_id") and p["metric"] in set(usage_metrics):
        region = stores.get(p["store_id"], "")
        return [RegionSignal(region, IOT_USAGE, float(p["value"]), at, at, p["store_id"])]
    return []


def _tender(p: Mapping[str, Any], at: int) -> list[RegionSignal]:
    region, when = p["region"], _ms(p.get("published_at") or at)
    if p["kind"] == "AWARD":
        return [RegionSignal(region, TENDER_AWARD, 1.0, when, at)]
    if p["kind"] == "ANNOUNCEMENT" and p.get("budget"):
        return [RegionSignal(region, TENDER_BUDGET, _money(p["budget"]), when, at)]
    return []


def _plan(p: Mapping[str, Any], at: int) -> list[RegionSignal]:
    """Attributed to the planned date: a plan read now is a feature of the period it names."""
    if not p.get("region"):
        return []
    planned = p.get("planned_date")
    when = _ms(planned) if planned is not None else at
    value = _money(p["budget"]) if p.get("budget") else 1.0
    return [RegionSignal(p["region"], PROCUREMENT_PLAN, value, when, at)]


class SignalBoard:
    """Signal sums per region and period, newest input time per region and signal.

    Periods more than ``keep_periods`` behind the newest sales period seen are dropped (a key
    closing such a period is far beyond its allowed lateness); a signal for one is refused.
    A reading of a store not seen in sales yet waits (at most ``max_pending``, oldest dropped
    first and counted) until the store's first sale says where it is.
    """

    def __init__(
        self, granularity: Granularity, keep_periods: int = 16, max_pending: int = 10_000
    ) -> None:
        self.granularity: Granularity = granularity
        self.keep_periods = keep_periods
        self.max_pending = max_pending
        self.stores: dict[str, str] = {}  # store -> region, learned from POS sales
        self.pending: dict[str, list[RegionSignal]] = {}  # store not mapped yet -> readings
        self.dropped = 0  # pending readings given up (over max_pending)
        self._n_pending = 0
        self._values: dict[str, dict[int, dict[str, float]]] = {}
        self._newest: dict[str, dict[str, int]] = {}
        self._floor: int | None = None  # oldest period kept

    def learn_store(self, store: str, region: str) -> None:
        """Remember where a store is (IoT readings name the store, not the region)."""
        self.stores[store] = region
        waiting = self.pending.pop(store, [])
        self._n_pending -= len(waiting)
        for signal in waiting:
            self.add(signal)

    def add(self, signal: RegionSignal) -> bool:
        """Add one signal; False when its period is older than the board keeps."""
        if not signal.region:
            region = self.stores.get(signal.store)
            if region is None:
                self._wait(signal)
                return True
            signal = RegionSignal(region, signal.name, signal.value, signal.period_ms,
                                  signal.at_ms, signal.store)  # fmt: skip
        index = period_index(signal.period_ms, self.granularity)
        if self._floor is not None and index < self._floor:
            return False
        periods = self._values.setdefault(signal.region, {})
        values = periods.setdefault(index, {})
        values[signal.name] = values.get(signal.name, 0.0) + signal.value
        newest = self._newest.setdefault(signal.region, {})
        newest[signal.name] = max(newest.get(signal.name, signal.at_ms), signal.at_ms)
        return True

    def lookup(self, region: str, index: int) -> tuple[dict[str, float], dict[str, int]]:
        """Signal sums of ``region`` in period ``index``, and its newest input per signal."""
        values = self._values.get(region, {}).get(index, {})
        return dict(values), dict(self._newest.get(region, {}))

    def advance(self, sales_ms: int) -> None:
        """Sales reached ``sales_ms``: forget periods older than ``keep_periods`` before it."""
        floor = period_index(sales_ms, self.granularity) - self.keep_periods
        if self._floor is not None and floor <= self._floor:
            return
        self._floor = floor
        for periods in self._values.values():
            for index in [i for i in periods if i < floor]:
                del periods[index]

    def _wait(self, signal: RegionSignal) -> None:
        self.pending.setdefault(signal.store, []).append(signal)
        self._n_pending += 1
        if self._n_pending > self.max_pending:
            self._n_pending -= 1
            oldest = min(self.pending, key=lambda s: self.pending[s][0].at_ms)
            self.pending[oldest].pop(0)
            self.dropped += 1
            if not self.pending[oldest]:
                del self.pending[oldest]

    @property
    def size(self) -> int:
        """Region-periods held (for the memory figures)."""
        return sum(len(p) for p in self._values.values())


def _money(value: Decimal | float) -> float:
    return float(value) / MONEY_UNIT


def _ms(value: dt.datetime | dt.date | int) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp() * 1000)
    if isinstance(value, dt.date):
        return (value - dt.date(1970, 1, 1)).days * DAY_MS
    return int(value)
