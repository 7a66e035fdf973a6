"""Forecaster of one key: model, split-conformal intervals, status, factors and freshness.

After each closed period it learns the actual, scores the forecasts made *before* that actual
was known (prequential: their absolute errors feed a bounded window per horizon) and forecasts
again. ``forecast()`` returns that cached forecast, so a read costs nothing and a restored
forecaster answers exactly as the original did. The interval half-width for horizon ``h`` is
the conformal quantile (rank ``ceil((n + 1) * level)``) of the last ``residual_window``
absolute errors at ``h``, so coverage holds whatever the model family.

>>> from dealstream.models.families import SeasonalNaive
>>> f = Forecaster(SeasonalNaive(season=1), ForecasterConfig(horizons=(1,), min_history=3))
>>> for y in [10.0, 12.0, 11.0, 13.0, 12.0, 11.0, 12.0]:
...     _ = f.learn_one(y)
>>> fc = f.forecast()
>>> fc.status, fc.points[1], fc.intervals[1]
('ok', 12.0, (10.0, 14.0))
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from dealstream.models.families import ForecastModel

Status = Literal["ok", "insufficient_history", "too_uncertain"]


@dataclass(frozen=True, slots=True)
class ForecasterConfig:
    """Behaviour of a forecaster; all of it is configuration, none of it is learned."""

    horizons: tuple[int, ...] = (1, 4, 13)
    level: float = 0.8  # nominal coverage of the intervals
    min_history: int = 8  # periods before the status can be "ok"
    max_relative_width: float = 1.0  # interval width / point above which "too_uncertain"
    residual_window: int = 52
    top_factors: int = 3

    def __post_init__(self) -> None:
        if not 0.0 < self.level < 1.0:
            raise ValueError("level must be in (0, 1)")
        if not self.horizons or min(self.horizons) < 1:
            raise ValueError("horizons must be integers >= 1")
        if self.residual_window < 1 or self.min_history < 0:
            raise ValueError("residual_window must be >= 1 and min_history >= 0")


@dataclass(frozen=True, slots=True)
class Factor:
    """A named contribution to the forecast; weights are signed and sum to 1 in absolute."""

    name: str
    weight: float


@dataclass(frozen=True, slots=True)
class Forecast:
    """Everything a consumer needs to use (or distrust) a forecast."""

    points: Mapping[int, float]
    intervals: Mapping[int, tuple[float, float]]
    status: Status
    level: float
    factors: tuple[Factor, ...]
    model_name: str
    model_version: str
    freshness: Mapping[str, int]  # newest input time (ms) per signal
    periods_seen: int


@dataclass(frozen=True, slots=True)
class Scored:
    """A forecast made ``horizon`` periods before its actual arrived."""

    horizon: int
    step: int  # index of the actual among the periods this key has seen
    forecast: float
    actual: float


@dataclass
class _Pending:
    step: int
    points: dict[int, float] = field(default_factory=dict)


class Forecaster:
    """Per-key forecaster around one model family (see the module docstring)."""

    def __init__(
        self,
        model: ForecastModel,
        config: ForecasterConfig | None = None,
        *,
        model_name: str = "",
        model_version: str = "1",
    ) -> None:
        self.model = model
        self.config = config or ForecasterConfig()
        self.model_name = model_name or type(model).__name__
        self.model_version = model_version
        self.steps = 0
        self.residuals: dict[int, deque[float]] = {
            h: deque(maxlen=self.config.residual_window) for h in self.config.horizons
        }
        self.freshness: dict[str, int] = {}
        self._pending: deque[_Pending] = deque(maxlen=max(self.config.horizons))
        self._last: Forecast | None = None

    def learn_one(
        self,
        actual: float,
        features: Mapping[str, float] | None = None,
        *,
        newest_ms: Mapping[str, int] | None = None,
        period: int | None = None,
    ) -> list[Scored]:
        """Learn a closed period's actual; return the earlier forecasts it scores."""
        scored = []
        for pending in self._pending:
            h = self.steps - pending.step + 1  # made after pending.step periods
            if h in pending.points:
                point = pending.points[h]
                scored.append(Scored(h, self.steps, point, actual))
                self.residuals[h].append(abs(actual - point))
        self.model.learn_one(actual, features, period=period)
        for name, ms in (newest_ms or {}).items():
            self.freshness[name] = max(self.freshness.get(name, ms), ms)
        self.steps += 1
        self._last = self._make_forecast()
        self._pending.append(_Pending(self.steps, dict(self._last.points)))
        return scored

    def forecast(self) -> Forecast:
        """The forecast for the configured horizons as of the last learned period."""
        if self._last is None:
            self._last = self._make_forecast()
        return self._last

    def _make_forecast(self) -> Forecast:
        cfg = self.config
        points = self.model.forecast(cfg.horizons)
        widths = {h: self._half_width(h) for h in cfg.horizons}
        intervals = {h: (max(0.0, points[h] - w), points[h] + w) for h, w in widths.items()}
        status: Status = "ok"
        if self.steps < cfg.min_history or not all(math.isfinite(w) for w in widths.values()):
            status = "insufficient_history"
        elif any(_relative(2 * widths[h], points[h]) > cfg.max_relative_width for h in widths):
            status = "too_uncertain"
        contributions = self.model.contributions(cfg.horizons[0]) if self.steps else {}
        top = sorted(contributions.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
        return Forecast(
            points=points,
            intervals=intervals,
            status=status,
            level=cfg.level,
            factors=tuple(Factor(k, v) for k, v in top[: cfg.top_factors]),
            model_name=self.model_name,
            model_version=self.model_version,
            freshness=dict(self.freshness),
            periods_seen=self.steps,
        )

    def _half_width(self, h: int) -> float:
        """Conformal quantile of |residual| at ``h``, else a shorter horizon's × sqrt(h/h')."""
        for shorter in sorted((k for k in self.residuals if k <= h), reverse=True):
            q = conformal_quantile(self.residuals[shorter], self.config.level)
            if math.isfinite(q):
                return q * math.sqrt(h / shorter)
        return math.inf


def conformal_quantile(residuals: deque[float] | list[float], level: float) -> float:
    """The ``ceil((n + 1) * level)``-th smallest residual; infinite when n is too small.

    >>> conformal_quantile([1.0, 2.0, 3.0, 4.0], 0.8), conformal_quantile([1.0], 0.8)
    (4.0, inf)
    """
    n = len(residuals)
    rank = math.ceil((n + 1) * level)
    if rank > n:
        return math.inf
    return sorted(residuals)[rank - 1]


def _relative(width: float, point: float) -> float:
    if point > 0:
        return width / point
    return 0.0 if width == 0 else math.inf
