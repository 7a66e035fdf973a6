-- Forecast rows say which key family chose the model (models file rules), which family the
-- model is (holt_winters, linear, ...), the grain of the key (e.g. sku|region, sku|store_id)
-- and the newest input time per signal (sales, promo_discount, tender_award, iot_usage, ...):
-- the per-signal freshness behind the single `freshness` column of 0004.
ALTER TABLE forecasts
    ADD COLUMN IF NOT EXISTS key_family LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS model_family LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS grain LowCardinality(String) DEFAULT 'sku|region',
    ADD COLUMN IF NOT EXISTS signal_freshness Map(String, DateTime64(3, 'UTC'));

-- Accuracy per key family and model family (the Prometheus gauges aggregate the same way).
ALTER TABLE forecast_accuracy
    ADD COLUMN IF NOT EXISTS key_family LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS model_family LowCardinality(String) DEFAULT '';

-- A view's `SELECT *` is expanded when it is created: re-create it so it shows the new columns
-- (same query as in 0004).
CREATE OR REPLACE VIEW forecasts_latest AS
SELECT *
FROM forecasts FINAL
ORDER BY key, horizon, period_start DESC, produced_at DESC
LIMIT 1 BY key, horizon;
