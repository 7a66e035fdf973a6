"""All the state of one forecast key: period buckets, forecaster and accuracy, one object.

It is what a stream agent keeps per key (SKU + region) and what a snapshot saves, so the
whole key is rebuilt from one blob (DESIGN §3.3). ``dirty`` tells the checkpoint which keys
changed since they were last saved. Signals shared by many keys (a region's tender awards) are
not copied into every key: ``external`` looks them up when a period closes, and what it returned
is learned with the period's own (per-key) signals.

>>> from dealstream.models.registry import ModelSpec
>>> ks = KeyState.new("sku-1|north", ModelSpec("seasonal_naive", params={"season": 1}),
...                   granularity="day")
>>> step = ks.add(0, 5.0)
>>> step = ks.add(86_400_000 * 2, 1.0)
>>> [p.actual for p in step.closed], step.forecast.points[1], ks.dirty
([5.0, 0.0], 0.0, True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dealstream.models.accuracy import KeyAccuracy
from dealstream.models.forecaster import Forecast, Forecaster, ForecasterConfig, Scored
from dealstream.models.periods import Granularity, Ingested, Period, PeriodBuckets, TooLate
from dealstream.models.registry import ModelSpec

External = Callable[[int], tuple[Mapping[str, float], Mapping[str, int]]]
"""Period index -> (signal values in that period, newest input time per signal)."""


def new_forecaster(spec: ModelSpec, config: ForecasterConfig | None = None) -> Forecaster:
    """An untrained forecaster that carries the spec's name and version."""
    return Forecaster(spec.build(), config, model_name=spec.name, model_version=spec.version)


@dataclass(slots=True)
class Step:
    """What one input did: closed/revised periods, rejected events, scores, new forecast."""

    closed: list[Period] = field(default_factory=list)
    revised: list[Period] = field(default_factory=list)
    too_late: list[TooLate] = field(default_factory=list)
    scored: list[Scored] = field(default_factory=list)
    forecast: Forecast | None = None  # set when a period closed


class KeyState:
    """Per-key pipeline: events → periods → learn, score, forecast."""

    family: str = ""  # (class default: snapshots from before key families existed)

    def __init__(
        self,
        key: str,
        forecaster: Forecaster,
        buckets: PeriodBuckets,
        accuracy: KeyAccuracy | None = None,
        *,
        family: str = "",
    ) -> None:
        self.key = key
        self.family = family  # the key family whose model spec built the forecaster
        self.forecaster = forecaster
        self.buckets = buckets
        self.accuracy = accuracy or KeyAccuracy()
        self.dirty = False

    @classmethod
    def new(
        cls,
        key: str,
        spec: ModelSpec,
        config: ForecasterConfig | None = None,
        *,
        granularity: Granularity = "week",
        allowed_lateness: int = 2,
        grace_ms: int = 0,
        family: str = "",
    ) -> KeyState:
        """A fresh key from its model spec (name and version travel with every forecast)."""
        buckets = PeriodBuckets(granularity, allowed_lateness, grace_ms)
        return cls(key, new_forecaster(spec, config), buckets, family=family)

    def rebuild(self, spec: ModelSpec, config: ForecasterConfig | None = None) -> None:
        """Start the model over from ``spec`` (its version changed); periods stay open."""
        self.forecaster = new_forecaster(spec, config)
        self.accuracy = KeyAccuracy()
        self.dirty = True

    def add(
        self,
        event_time_ms: int,
        quantity: float = 0.0,
        signals: Mapping[str, float] | None = None,
        *,
        external: External | None = None,
    ) -> Step:
        """A sale and/or signal values at event time (``external``: see the module doc)."""
        return self._apply(self.buckets.add(event_time_ms, quantity, signals), external)

    def advance_to(self, event_time_ms: int, *, external: External | None = None) -> Step:
        """Let event time pass without an event, closing periods that are due."""
        return self._apply(self.buckets.advance_to(event_time_ms), external)

    def forecast(self) -> Forecast:
        """The latest forecast."""
        return self.forecaster.forecast()

    def _apply(self, ingested: Ingested, external: External | None) -> Step:
        step = Step(ingested.closed, ingested.revised, ingested.too_late)
        for period in ingested.closed:
            signals, newest = period.signals, period.newest_ms
            if external is not None:
                values, times = external(period.index)
                signals = {**signals, **values}
                newest = {**times, **newest}
            scored = self.forecaster.learn_one(
                period.actual, signals, newest_ms=newest, period=period.index
            )
            for s in scored:
                self.accuracy.update(s.horizon, s.forecast, s.actual)
            step.scored.extend(scored)
        if ingested.closed:
            step.forecast = self.forecaster.forecast()
        self.dirty = True
        return step
