"""Forecast model families with one interface: River time-series models and a naive baseline.

Every family is constructed from plain parameters that are stored under the same names
(``params()`` gives them back, as River's ``_get_params`` does), learns one period at a time
and forecasts several horizons at once. Forecasts are cleaned in one place: a non-finite value
(a diverging model) falls back to the seasonal-naive value, and sales are never negative.

>>> m = SeasonalNaive(season=2)
>>> for y in [1.0, 5.0, 2.0, 6.0]:
...     m.learn_one(y)
>>> m.forecast([1, 2, 3])
{1: 2.0, 2: 6.0, 3: 2.0}
"""

from __future__ import annotations

import inspect
import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from river import time_series

Features = Mapping[str, float]

# River's constructors are untyped; bind them once as Any instead of silencing each call.
_HoltWinters: Any = time_series.HoltWinters
_SNARIMAX: Any = time_series.SNARIMAX


class ForecastModel(Protocol):
    """What the forecaster needs from a model family."""

    n_seen: int

    def learn_one(
        self, y: float, x: Features | None = None, *, period: int | None = None
    ) -> None: ...

    def forecast(self, horizons: Sequence[int]) -> dict[int, float]: ...

    def contributions(self, horizon: int) -> dict[str, float]: ...

    def params(self) -> dict[str, Any]: ...


PLAUSIBLE_FACTOR = 10.0
"""Forecasts beyond this multiple of the largest actual of the last season are rejected."""


class BaseModel:
    """Shared history (for the fallback), cleaning of forecasts and ``params()``."""

    season: int = 1
    period: int | None = None  # (class default: snapshots from before it existed)

    def __init__(self) -> None:
        self.n_seen = 0
        self.period: int | None = None  # index of the last period learned, when known
        self._history: deque[float] = deque(maxlen=max(self._season(), 1))

    def _season(self) -> int:
        return self.season

    def params(self) -> dict[str, Any]:
        """Constructor arguments, read back from the attributes of the same names."""
        names = inspect.signature(type(self)).parameters
        return {name: getattr(self, name) for name in names}

    def learn_one(self, y: float, x: Features | None = None, *, period: int | None = None) -> None:
        """Learn the actual of the next closed period (``x``: signals seen in it).

        ``period`` is the period's index (``models.periods``), for calendar features.
        """
        self.period = period
        self._learn(float(y), x or {})
        self._history.append(float(y))
        self.n_seen += 1

    def forecast(self, horizons: Sequence[int]) -> dict[int, float]:
        """Point forecast per horizon (1 = the next period), finite and >= 0."""
        raw = self._forecast(horizons) if self.n_seen else {}
        # An online model can diverge (a signal that was 0 for years turning 1 made the linear
        # model's errors reach 1e9 in bench/forecast_eval.py): a forecast far outside anything
        # seen in the last season is not one, and the seasonal-naive value is used instead.
        bound = PLAUSIBLE_FACTOR * max((abs(v) for v in self._history), default=0.0)
        out = {}
        for h in horizons:
            value = raw.get(h, math.nan)
            if not math.isfinite(value) or abs(value) > max(bound, 1.0):
                value = self._naive(h)
            out[h] = max(0.0, value)
        return out

    def contributions(self, horizon: int) -> dict[str, float]:
        """Signed share of each factor in the forecast; empty when a family cannot tell."""
        return {}

    def _naive(self, h: int) -> float:
        if not self._history:
            return 0.0
        n = len(self._history)
        if n < self._season():
            return self._history[-1]
        return self._history[(h - 1) % n]  # same position in the last season seen

    def _learn(self, y: float, x: Features) -> None:
        raise NotImplementedError

    def _forecast(self, horizons: Sequence[int]) -> dict[int, float]:
        raise NotImplementedError


class SeasonalNaive(BaseModel):
    """Baseline: the value one season earlier (the last value when ``season=1``)."""

    def __init__(self, *, season: int = 52) -> None:
        if season < 1:
            raise ValueError("season must be >= 1")
        self.season = season
        super().__init__()

    def _learn(self, y: float, x: Features) -> None:
        pass

    def _forecast(self, horizons: Sequence[int]) -> dict[int, float]:
        return {h: self._naive(h) for h in horizons}


class HoltWintersModel(BaseModel):
    """River's Holt-Winters; seasonal naive until it has seen the ``seasonality`` it needs."""

    def __init__(
        self,
        *,
        alpha: float = 0.3,
        beta: float | None = 0.05,
        gamma: float | None = 0.2,
        seasonality: int = 52,
        multiplicative: bool = False,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.seasonality = seasonality
        self.multiplicative = multiplicative
        super().__init__()
        self._hw: Any = _HoltWinters(
            alpha=alpha,
            beta=beta,
            gamma=gamma if seasonality else None,
            seasonality=seasonality,
            multiplicative=multiplicative,
        )

    def _season(self) -> int:
        return self.seasonality

    def _learn(self, y: float, x: Features) -> None:
        self._hw.learn_one(y)

    def _forecast(self, horizons: Sequence[int]) -> dict[int, float]:
        if not self._hw._initialized:
            return {}
        values = self._hw.forecast(horizon=max(horizons))
        return {h: float(values[h - 1]) for h in horizons}

    def contributions(self, horizon: int) -> dict[str, float]:
        """Level, trend and seasonality parts of the additive forecast, normalised."""
        hw = self._hw
        if not hw._initialized or self.multiplicative:
            return {}
        parts = {"level": float(hw.level[-1])}
        if hw.trend:
            parts["trend"] = horizon * float(hw.trend[-1])
        if hw.season:
            parts["seasonality"] = float(
                hw.season[-self.seasonality + (horizon - 1) % self.seasonality]
            )
        return normalise(parts)


class SnarimaxModel(BaseModel):
    """River's SNARIMAX (online seasonal ARIMA, fitted by SGD)."""

    def __init__(
        self,
        *,
        p: int = 2,
        d: int = 1,
        q: int = 1,
        m: int = 1,
        sp: int = 0,
        sd: int = 0,
        sq: int = 0,
    ) -> None:
        self.p, self.d, self.q, self.m, self.sp, self.sd, self.sq = p, d, q, m, sp, sd, sq
        super().__init__()
        self._model: Any = _SNARIMAX(p=p, d=d, q=q, m=m, sp=sp, sd=sd, sq=sq)

    def _season(self) -> int:
        return max(self.m, 1)

    def _learn(self, y: float, x: Features) -> None:
        self._model.learn_one(y)

    def _forecast(self, horizons: Sequence[int]) -> dict[int, float]:
        if self.n_seen <= self.d + self.sd * self.m:
            return {}
        try:
            values = self._model.forecast(horizon=max(horizons))
        except (ValueError, IndexError, OverflowError):  # too little history for the lags
            return {}
        return {h: float(values[h - 1]) for h in horizons}


def normalise(parts: Mapping[str, float]) -> dict[str, float]:
    """Scale signed parts so their absolute values sum to 1.

    >>> normalise({"a": 3.0, "b": -1.0})
    {'a': 0.75, 'b': -0.25}
    """
    total = sum(abs(v) for v in parts.values())
    if not total or not math.isfinite(total):
        return {}
    return {k: v / total for k, v in parts.items()}
