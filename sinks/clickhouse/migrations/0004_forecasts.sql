-- Online forecasts per key (SKU|region): one row per key, closed period (the forecast origin),
-- horizon and model version, written by the forecast pipeline when a period closes.
-- ORDER BY is the dedup key, so a replay after a crash (at-least-once) collapses onto the rows
-- of the first run instead of counting twice; the newest produced_at wins.
-- target_start = start of the period forecast (origin + horizon periods).
CREATE TABLE IF NOT EXISTS forecasts
(
    key             String,
    sku             String,
    region          LowCardinality(String),
    period          LowCardinality(String),
    period_start    DateTime64(3, 'UTC'),
    horizon         UInt16,
    target_start    DateTime64(3, 'UTC'),
    point           Float64,
    lower           Float64,
    upper           Float64,
    level           Float64,
    status          LowCardinality(String),
    factors         Map(String, Float64),
    model_name      LowCardinality(String),
    model_version   LowCardinality(String),
    periods_seen    UInt32,
    -- Newest input time the forecast saw (sales or signals): how stale it may be.
    freshness       DateTime64(3, 'UTC'),
    produced_at     DateTime64(3, 'UTC'),
    -- The input event whose arrival closed the period (audit trail, DESIGN §1).
    event_id        String,
    kafka_partition UInt16,
    kafka_offset    UInt64,
    INDEX idx_region region TYPE set(0) GRANULARITY 4,
    INDEX idx_sku sku TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(produced_at)
PARTITION BY toYear(period_start)
ORDER BY (key, period_start, horizon, model_version)
SETTINGS non_replicated_deduplication_window = 1000;

-- Prequential accuracy: a forecast scored when the actual of its target period arrived.
-- period = the target period whose actual is known; one row per key, period, horizon, version.
CREATE TABLE IF NOT EXISTS forecast_accuracy
(
    key             String,
    region          LowCardinality(String),
    horizon         UInt16,
    period          LowCardinality(String),
    period_start    DateTime64(3, 'UTC'),
    forecast        Float64,
    actual          Float64,
    abs_error       Float64,
    model_name      LowCardinality(String),
    model_version   LowCardinality(String),
    produced_at     DateTime64(3, 'UTC'),
    event_id        String
)
ENGINE = ReplacingMergeTree(produced_at)
PARTITION BY toYear(period_start)
ORDER BY (key, period_start, horizon, model_version)
SETTINGS non_replicated_deduplication_window = 1000;

-- What BI tools should query: the newest forecast per key and horizon (any model version).
CREATE VIEW IF NOT EXISTS forecasts_latest AS
SELECT *
FROM forecasts FINAL
ORDER BY key, horizon, period_start DESC, produced_at DESC
LIMIT 1 BY key, horizon;
