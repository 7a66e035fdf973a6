-- Next-best-action tasks for store staff (streams/tasks/pipeline.py) and the purchases that
-- converted them. One row per task and one per conversion; ReplacingMergeTree keyed by task_id,
-- so a replayed batch (same deterministic task ids) collapses.
CREATE TABLE IF NOT EXISTS store_tasks
(
    task_id          String,
    rule_id          LowCardinality(String),
    rule_version     UInt32,
    store_id         String,  -- '' when the customer's usual store is unknown
    region           String,
    subject          LowCardinality(String),
    series           String,
    sku              String,
    customer_ref     String,
    views            UInt32,
    stock_on_hand    Nullable(Int64),
    stock_scope      LowCardinality(String),
    preference_tags  Array(String),
    script           String,
    first_view_at    DateTime64(3, 'UTC'),
    created_at       DateTime64(3, 'UTC'),  -- event time of the view that raised the task
    expires_at       DateTime64(3, 'UTC'),  -- end of the attribution window
    raised_at        DateTime64(3, 'UTC'),  -- processing time
    event_id         String                 -- the triggering view
)
ENGINE = ReplacingMergeTree(raised_at)
PARTITION BY toYYYYMM(created_at)
ORDER BY task_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS store_task_conversions
(
    task_id              String,
    rule_id              LowCardinality(String),
    rule_version         UInt32,
    store_id             String,  -- the task's store
    conversion_store_id  String,  -- where the customer bought
    customer_ref         String,
    created_at           DateTime64(3, 'UTC'),
    converted_at         DateTime64(3, 'UTC'),
    amount               Nullable(Decimal(18, 2)),
    purchase_event_id    String,
    raised_at            DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(raised_at)
PARTITION BY toYYYYMM(created_at)
ORDER BY task_id
SETTINGS non_replicated_deduplication_window = 1000;

-- The task funnel for the dashboards: tasks raised and converted per store and rule. Plain view
-- over FINAL, so replays never count twice; sum over rule_id (or store_id) for one dimension.
CREATE VIEW IF NOT EXISTS store_task_conversion_rates AS
SELECT
    t.store_id AS store_id,
    t.rule_id AS rule_id,
    count() AS tasks,
    countIf(c.task_id != '') AS converted,
    converted / tasks AS conversion_rate,
    sumIf(c.amount, c.task_id != '') AS converted_amount
FROM (SELECT task_id, store_id, rule_id FROM store_tasks FINAL) AS t
LEFT JOIN (SELECT task_id, amount FROM store_task_conversions FINAL) AS c ON t.task_id = c.task_id
GROUP BY t.store_id, t.rule_id;
