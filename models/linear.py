"""Linear forecasts over engineered features: lags, calendar terms and external signals.

One scaled River linear regression per horizon (the *direct* strategy): the features built at
period ``t`` for horizon ``h`` are kept until the actual of ``t + h`` arrives and are learned
then, so no model ever needs future signal values. External signals (tender awards in the
region, promotions, policy changes, IoT usage) enter as the per-period sums the caller passes
to ``learn_one``, with ``signal_lags`` past periods each, so an effect that shows up weeks
later is still a plain linear term. Calendar terms are Fourier pairs of the period position,
whose unknown phase the regression absorbs; with ``calendar`` ("day" or "week") they are the
*target* period's own calendar instead (``models.calendar``: yearly position by date, quarter
end, configured ``holidays``), known in advance and shared by every key.

>>> m = LinearModel(horizons=(1, 2), n_lags=2, seasonality=4.0, fourier_terms=1, signal_lags=1)
>>> for t in range(40):
...     m.learn_one(10.0 + (t % 4), {"promo": float(t % 5 == 0)})
>>> sorted(m.forecast([1, 2]))
[1, 2]
>>> sorted(m.features(1))[:4]
['cal_cos1', 'cal_sin1', 'lag_1', 'lag_2']
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from river import linear_model, optim, preprocessing

from dealstream.models.calendar import Calendar
from dealstream.models.families import BaseModel, Features, normalise
from dealstream.models.periods import Granularity


class LinearModel(BaseModel):
    """Direct multi-horizon linear regression (River SGD, standardised features and target)."""

    # Defaults for snapshots pickled before these parameters existed.
    calendar: str = ""
    holidays: tuple[str, ...] = ()
    _calendar: Calendar | None = None

    def __init__(
        self,
        *,
        horizons: tuple[int, ...] = (1, 4, 13),
        n_lags: int = 4,
        seasonality: float = 52.0,
        fourier_terms: int = 2,
        signal_lags: int = 6,
        lr: float = 0.02,
        l2: float = 0.0,
        calendar: str = "",
        holidays: tuple[str, ...] = (),
    ) -> None:
        if not horizons or min(horizons) < 1:
            raise ValueError("horizons must be a non-empty tuple of integers >= 1")
        self.horizons = tuple(sorted(set(horizons)))
        self.n_lags = n_lags
        self.seasonality = seasonality
        self.fourier_terms = fourier_terms
        self.signal_lags = signal_lags
        self.lr = lr
        self.l2 = l2
        if calendar not in ("", "day", "week"):
            raise ValueError(f"calendar must be '', 'day' or 'week', not {calendar!r}")
        self.calendar = calendar
        self.holidays = tuple(holidays)
        grain: Granularity | None = "day" if calendar == "day" else "week" if calendar else None
        self._calendar = Calendar(grain, self.holidays) if grain else None
        super().__init__()
        self._ys: deque[float] = deque(maxlen=max(n_lags, round(seasonality)) + 1)
        self._signals: deque[dict[str, float]] = deque(maxlen=signal_lags + 1)
        self._signal_names: set[str] = set()
        self._pending: dict[int, deque[dict[str, float]]] = {h: deque() for h in self.horizons}
        self._models = {h: self._new_regressor() for h in self.horizons}

    def _season(self) -> int:
        return max(1, round(self.seasonality))

    def _new_regressor(self) -> Any:
        reg = preprocessing.StandardScaler() | linear_model.LinearRegression(
            optimizer=optim.SGD(self.lr), l2=self.l2, intercept_lr=self.lr
        )
        target_scaler: Any = preprocessing.TargetStandardScaler
        return target_scaler(regressor=reg)

    def _learn(self, y: float, x: Features) -> None:
        for h in self.horizons:
            pending = self._pending[h]
            if len(pending) == h:  # built h periods ago for this very period
                self._models[h].learn_one(pending.popleft(), y)
        self._ys.append(y)
        self._signals.append({k: float(v) for k, v in x.items()})
        self._signal_names.update(x)
        for h in self.horizons:
            self._pending[h].append(self.features(h, _after_learn=True))

    def features(self, horizon: int, *, _after_learn: bool = False) -> dict[str, float]:
        """Features known now for the period ``horizon`` steps ahead."""
        t = self.n_seen + (1 if _after_learn else 0)  # periods seen, including the one learned
        ys = self._ys
        x: dict[str, float] = {}
        for k in range(1, self.n_lags + 1):
            x[f"lag_{k}"] = ys[-k] if len(ys) >= k else (ys[0] if ys else 0.0)
        m = round(self.seasonality)
        back = m - horizon + 1  # the same period one season before the target
        if m > 1 and 1 <= back < len(ys) + 1:
            x["lag_season"] = ys[-back]
        period = self.period
        if self._calendar is not None and period is not None:
            x.update(self._calendar.features(period + horizon, fourier_terms=self.fourier_terms))
        else:
            for k in range(1, self.fourier_terms + 1):
                angle = 2.0 * math.pi * k * (t + horizon) / self.seasonality
                x[f"cal_sin{k}"] = math.sin(angle)
                x[f"cal_cos{k}"] = math.cos(angle)
        for name in sorted(self._signal_names):
            for lag in range(self.signal_lags + 1):
                past = self._signals[-1 - lag] if len(self._signals) > lag else {}
                x[name if lag == 0 else f"{name}_lag{lag}"] = past.get(name, 0.0)
        return x

    def _model_for(self, horizon: int) -> Any:
        usable = [h for h in self.horizons if h <= horizon] or [self.horizons[0]]
        return self._models[usable[-1]]

    def _forecast(self, horizons: Sequence[int]) -> dict[int, float]:
        if self.n_seen < 2:
            return {}
        return {h: float(self._model_for(h).predict_one(self.features(h))) for h in horizons}

    def contributions(self, horizon: int) -> dict[str, float]:
        """Coefficient × standardised feature value, normalised."""
        model = self._model_for(horizon).regressor
        scaled = model["StandardScaler"].transform_one(self.features(horizon))
        weights = model["LinearRegression"].weights
        return normalise({k: float(weights.get(k, 0.0)) * v for k, v in scaled.items() if v})
