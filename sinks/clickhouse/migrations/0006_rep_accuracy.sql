-- Prequential accuracy of the weekly order forecasts per sales rep (streams/rep_forecast.py):
-- one row per rep, scored week, horizon and model version, written when the week closes.
-- n/mae/wape/bias are the rep's running figures up to and including this week; deviation is
-- (forecast - actual) / actual of this week (inf when the rep had no orders), the value the
-- deviation alerts (alerts.forecast.v1) are raised on. ReplacingMergeTree: a replay collapses.
CREATE TABLE IF NOT EXISTS rep_forecast_accuracy
(
    rep             String,
    period          LowCardinality(String),
    period_start    DateTime64(3, 'UTC'),
    horizon         UInt16,
    forecast        Float64,
    actual          Float64,
    abs_error       Float64,
    deviation       Float64,
    n               UInt32,
    mae             Float64,
    wape            Float64,
    bias            Float64,
    model_name      LowCardinality(String),
    model_version   LowCardinality(String),
    produced_at     DateTime64(3, 'UTC'),
    -- The input event whose arrival closed the week ('' when the watermark closed it).
    event_id        String
)
ENGINE = ReplacingMergeTree(produced_at)
PARTITION BY toYear(period_start)
ORDER BY (rep, period_start, horizon, model_version)
SETTINGS non_replicated_deduplication_window = 1000;
