"""Rows the forecast pipeline writes (forecasts, prequential accuracy) and its error gauges.

One row per key, closed period and horizon in ``forecasts`` (with interval, status, factors,
model name/version/family, key family, grain and freshness per signal), one per scored forecast
in ``forecast_accuracy``. The gauges give the error per model family and horizon of what this
process scored since it started (the exact per-key figures are in ClickHouse).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Gauge

from dealstream.models.accuracy import AccuracyStats
from dealstream.models.forecaster import Forecast
from dealstream.models.periods import period_start_ms
from dealstream.models.state import KeyState, Step
from dealstream.sinks.clickhouse import tables
from dealstream.streams.forecast_settings import ForecastSettings
from dealstream.streams.pipeline import Row, TableSpec

TableRows = list[tuple[str, Row]]

# Columns added by migration 0010 (tables.py lists those of 0004).
FORECASTS = TableSpec(
    tables.FORECASTS,
    (*tables.FORECASTS_COLUMNS, "key_family", "model_family", "grain", "signal_freshness"),
)
FORECAST_ACCURACY = TableSpec(
    tables.FORECAST_ACCURACY, (*tables.FORECAST_ACCURACY_COLUMNS, "key_family", "model_family")
)


# Prequential error of the forecasts scored by this process since it started, per model family
# and horizon (the exact per-key figures are in ClickHouse forecast_accuracy).
WAPE = Gauge(
    "dealstream_forecast_wape",
    "Weighted absolute percentage error of scored forecasts (sum|e| / sum|actual|)",
    ["family", "horizon"],
)
MAPE = Gauge(
    "dealstream_forecast_mape",
    "Mean absolute percentage error of scored forecasts (non-zero actuals only)",
    ["family", "horizon"],
)
MAE = Gauge(
    "dealstream_forecast_mae",
    "Mean absolute error of scored forecasts, in units",
    ["family", "horizon"],
)
BIAS = Gauge(
    "dealstream_forecast_bias",
    "Mean (forecast - actual) of scored forecasts; positive = over-forecast",
    ["family", "horizon"],
)


class ErrorGauges:
    """Running error per (model family, horizon), published to the gauges above."""

    def __init__(self) -> None:
        self._stats: dict[tuple[str, int], AccuracyStats] = {}

    def observe(self, family: str, horizon: int, forecast: float, actual: float) -> None:
        stats = self._stats.setdefault((family, horizon), AccuracyStats())
        stats.update(forecast, actual)
        labels = (family, str(horizon))
        MAE.labels(*labels).set(stats.mae)
        BIAS.labels(*labels).set(stats.bias)
        if stats.abs_actual:
            WAPE.labels(*labels).set(stats.wape)
        if stats.n_ape:
            MAPE.labels(*labels).set(stats.mape)


@dataclass(frozen=True, slots=True)
class Source:
    """The input record whose arrival closed the period(s), for the audit columns."""

    record: dict[str, Any]
    partition: int
    offset: int


def forecast_rows(
    state: KeyState,
    step: Step,
    source: Source,
    *,
    settings: ForecastSettings,
    family: str,
    model_family: str,
) -> TableRows:
    """The rows of one step that closed at least one period."""
    g = settings.granularity
    produced_at = datetime.now(UTC)
    record = source.record
    event_id = record["event_id"]
    p = record["payload"]
    key = state.key
    sku = p["sku"] if "sku" in settings.key_fields else ""
    fc = step.forecast
    assert fc is not None  # a closed period always forecasts again
    origin = step.closed[-1]
    fresh = _dt(max(fc.freshness.values(), default=_ms(record["occurred_at"])))
    signal_fresh = {name: _dt(ms) for name, ms in fc.freshness.items()}
    rows: TableRows = []
    for h in settings.horizons:
        lower, upper = fc.intervals[h]
        rows.append(
            (
                FORECASTS.name,
                (
                    key, sku, p["region"], origin.label,
                    _dt(period_start_ms(origin.index, g)), h,
                    _dt(period_start_ms(origin.index + h, g)), fc.points[h], lower, upper,
                    fc.level, fc.status, _factors(fc), fc.model_name, fc.model_version,
                    fc.periods_seen, fresh, produced_at, event_id, source.partition,
                    source.offset, family, model_family, settings.grain, signal_fresh,
                ),
            )
        )  # fmt: skip
    first_step = state.forecaster.steps - len(step.closed)
    for s in step.scored:
        period = step.closed[s.step - first_step]
        rows.append(
            (
                FORECAST_ACCURACY.name,
                (
                    key, p["region"], s.horizon, period.label,
                    _dt(period_start_ms(period.index, g)), s.forecast, s.actual,
                    abs(s.forecast - s.actual), fc.model_name, fc.model_version,
                    produced_at, event_id, family, model_family,
                ),
            )
        )  # fmt: skip
    return rows


def _factors(fc: Forecast) -> dict[str, float]:
    return {f.name: float(f.weight) for f in fc.factors}


def _ms(value: datetime | int) -> int:
    if isinstance(value, datetime):
        return (value - _EPOCH) // timedelta(milliseconds=1)
    return int(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
