-- Views behind the web dashboard (`dealstream dashboard`) and the Grafana ClickHouse panels.
-- Plain views, not materialized ones: they read the deduplicated (FINAL) tables, so a replayed
-- batch never counts twice, and they need no backfill when this migration lands on old data.
-- Filters (time range, region, product line) are applied by the dashboard's parameterised
-- queries on the columns these views expose.

-- The product line of each SKU, as the tills last reported it: forecasts are keyed by
-- SKU|region only, so this is how a forecast joins a product line.
CREATE VIEW IF NOT EXISTS sku_product_lines AS
SELECT sku, argMax(product_line, occurred_at) AS product_line
FROM pos_transactions
GROUP BY sku;

-- Dashboard 1 (forecast credibility): every forecast with its product line and, once the target
-- period is over and scored, the actual it is judged by (NULL while still in the future).
CREATE VIEW IF NOT EXISTS dashboard_forecast_vs_actual AS
SELECT
    f.key AS key,
    f.sku AS sku,
    f.region AS region,
    ifNull(p.product_line, 'unknown') AS product_line,
    f.period AS period,
    f.horizon AS horizon,
    f.target_start AS target_start,
    f.point AS point,
    f.lower AS lower,
    f.upper AS upper,
    f.level AS level,
    f.status AS status,
    f.model_name AS model_name,
    f.model_version AS model_version,
    f.freshness AS freshness,
    f.produced_at AS produced_at,
    a.actual AS actual
FROM (SELECT * FROM forecasts FINAL) AS f
LEFT JOIN sku_product_lines AS p ON p.sku = f.sku
LEFT JOIN
(
    SELECT key, period_start, horizon, model_version, any(actual) AS actual
    FROM forecast_accuracy FINAL
    GROUP BY key, period_start, horizon, model_version
) AS a
    ON a.key = f.key AND a.period_start = f.target_start AND a.horizon = f.horizon
    AND a.model_version = f.model_version
SETTINGS join_use_nulls = 1;

-- The top factors of the newest forecast per key and horizon, one row per factor.
CREATE VIEW IF NOT EXISTS dashboard_forecast_factors AS
SELECT
    f.key AS key,
    f.region AS region,
    ifNull(p.product_line, 'unknown') AS product_line,
    f.horizon AS horizon,
    f.target_start AS target_start,
    f.produced_at AS produced_at,
    kv.1 AS factor,
    kv.2 AS weight
FROM forecasts_latest AS f
LEFT JOIN sku_product_lines AS p ON p.sku = f.sku
ARRAY JOIN arrayZip(mapKeys(f.factors), mapValues(f.factors)) AS kv
SETTINGS join_use_nulls = 1;

-- Scored forecasts with their interval, so accuracy and interval coverage trend together.
CREATE VIEW IF NOT EXISTS dashboard_forecast_accuracy AS
SELECT
    a.key AS key,
    a.region AS region,
    ifNull(p.product_line, 'unknown') AS product_line,
    a.horizon AS horizon,
    a.period_start AS period_start,
    a.forecast AS forecast,
    a.actual AS actual,
    a.abs_error AS abs_error,
    a.model_version AS model_version,
    f.lower AS lower,
    f.upper AS upper
FROM (SELECT * FROM forecast_accuracy FINAL) AS a
LEFT JOIN sku_product_lines AS p ON p.sku = splitByChar('|', a.key)[1]
LEFT JOIN (SELECT key, target_start, horizon, model_version, lower, upper FROM forecasts FINAL) AS f
    ON f.key = a.key AND f.target_start = a.period_start AND f.horizon = a.horizon
    AND f.model_version = a.model_version
SETTINGS join_use_nulls = 1;

-- Dashboard 2 (customer journey): one touchpoint per receipt. Only till purchases and refunds
-- carry a customer today (customer_ref, member_id); chats are stored only when they break a
-- rule, so they are not counted as touchpoints here. `channel` is the event source.
CREATE VIEW IF NOT EXISTS dashboard_touchpoints AS
SELECT
    transaction_id,
    any(customer_ref) AS customer_ref,
    any(member_id) AS member_id,
    any(source) AS channel,
    any(store_id) AS store_id,
    any(region) AS region,
    groupUniqArray(product_line) AS product_lines,
    min(occurred_at) AS occurred_at,
    sum(amount) AS amount,
    max(is_refund) AS is_refund
FROM pos_transactions FINAL
GROUP BY transaction_id;

-- Dashboard 3 (behaviour and compliance health): violations with the columns a QA lead filters.
CREATE VIEW IF NOT EXISTS dashboard_violations AS
SELECT
    toDate(occurred_at) AS day,
    occurred_at,
    rule_id,
    severity,
    ifNull(rep_id, 'unknown') AS rep_id,
    channel,
    ifNull(product_line, 'unknown') AS product_line,
    conversation_id
FROM compliance_violations FINAL;
