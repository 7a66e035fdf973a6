-- Customer journeys across channels and channel health (streams/journeys.py).
--
-- journey_steps: one row per step of a resolved customer (wecom_added, miniprogram_view,
-- store_visit, purchase, ...). customer_id is the id the customer had when the step was
-- written; customer_merges says which ids were merged into which since, so queries use
-- journey_steps_resolved. ReplacingMergeTree on (event_id, step): a replayed event collapses
-- (the last write, with the newest customer id, wins).
CREATE TABLE IF NOT EXISTS journey_steps
(
    event_id        String,
    step            LowCardinality(String),
    customer_id     String,
    -- The store or dealer the event names, else the customer's latest one ('' unknown).
    channel         String,
    channel_kind    LowCardinality(String),
    occurred_at     DateTime64(3, 'UTC'),
    event_type      LowCardinality(String),
    amount          Nullable(Float64),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (event_id, step)
SETTINGS non_replicated_deduplication_window = 1000;

-- One row per customer id merged away (also ids merged into it before, so there are no
-- chains): the latest row (highest seq) per merged_id names the surviving customer.
CREATE TABLE IF NOT EXISTS customer_merges
(
    merged_id   String,
    customer_id String,
    seq         UInt64,
    merged_at   DateTime64(3, 'UTC'),
    -- The event whose identifiers linked the two customers.
    event_id    String
)
ENGINE = ReplacingMergeTree(seq)
ORDER BY merged_id
SETTINGS non_replicated_deduplication_window = 1000;

-- Channel health each time an event moved it: score = weighted geometric mean of turnover,
-- sla and intent (each in [0, 1], NULL without enough evidence). One row per channel and the
-- event that moved it, so a replay collapses; channel_health_latest has the current score.
CREATE TABLE IF NOT EXISTS channel_health
(
    channel_id    String,
    channel_kind  LowCardinality(String),
    region        LowCardinality(String),
    score         Nullable(Float64),
    turnover      Nullable(Float64),
    sla           Nullable(Float64),
    intent        Nullable(Float64),
    sla_samples   UInt32,
    buyers        UInt32,
    returning     UInt32,
    alerting      UInt8,
    as_of         DateTime64(3, 'UTC'),
    computed_at   DateTime64(3, 'UTC'),
    event_id      String,
    model_version LowCardinality(String)
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(as_of)
ORDER BY (channel_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE VIEW IF NOT EXISTS customer_current_id AS
SELECT merged_id, argMax(customer_id, seq) AS customer_id
FROM customer_merges
GROUP BY merged_id;

-- Journey steps under the customer's current id (what funnels must group by).
CREATE VIEW IF NOT EXISTS journey_steps_resolved AS
SELECT
    j.event_id AS event_id,
    j.step AS step,
    if(m.customer_id != '', m.customer_id, j.customer_id) AS customer_id,
    j.customer_id AS written_customer_id,
    j.channel AS channel,
    j.channel_kind AS channel_kind,
    j.occurred_at AS occurred_at,
    j.event_type AS event_type,
    j.amount AS amount
FROM journey_steps AS j FINAL
LEFT JOIN customer_current_id AS m ON j.customer_id = m.merged_id;

-- Per customer with a WeCom contact added: how far the funnel wecom_added -> store_visit ->
-- purchase got within 72 hours of the add (windowFunnel), the channel of the first add, and
-- whether 72 hours have passed since (newest step time in the table): the outcome is final.
CREATE VIEW IF NOT EXISTS journey_funnel_customers AS
SELECT
    customer_id,
    argMinIf(channel, occurred_at, step = 'wecom_added') AS channel,
    minIf(occurred_at, step = 'wecom_added') AS added_at,
    windowFunnel(259200)(
        toDateTime(occurred_at), step = 'wecom_added', step = 'store_visit', step = 'purchase'
    ) AS level,
    added_at <= (SELECT max(occurred_at) FROM journey_steps) - INTERVAL 72 HOUR AS final
FROM journey_steps_resolved
GROUP BY customer_id
HAVING countIf(step = 'wecom_added') > 0;

-- The funnel per channel of the WeCom add: customers added, reaching a store visit and a
-- purchase within 72 h, and the share of customers whose 72 h have passed (decided) that did not convert within 72 h.
CREATE VIEW IF NOT EXISTS journey_funnel AS
SELECT
    channel,
    count() AS added,
    countIf(level >= 2) AS visited_72h,
    countIf(level >= 3) AS purchased_72h,
    countIf(final) AS decided,
    countIf(final AND level < 3) AS not_converted_72h,
    if(decided > 0, not_converted_72h / decided, NULL) AS not_converted_72h_share
FROM journey_funnel_customers
GROUP BY channel;

-- The same over all channels: one row.
CREATE VIEW IF NOT EXISTS journey_conversion_72h AS
SELECT
    count() AS added,
    countIf(level >= 2) AS visited_72h,
    countIf(level >= 3) AS purchased_72h,
    countIf(final) AS decided,
    countIf(final AND level < 3) AS not_converted_72h,
    if(decided > 0, not_converted_72h / decided, NULL) AS not_converted_72h_share
FROM journey_funnel_customers;

-- The latest health of each channel.
CREATE VIEW IF NOT EXISTS channel_health_latest AS
SELECT
    channel_id,
    argMax(h.channel_kind, (h.computed_at, h.as_of)) AS channel_kind,
    argMax(h.region, (h.computed_at, h.as_of)) AS region,
    argMax(h.score, (h.computed_at, h.as_of)) AS score,
    argMax(h.turnover, (h.computed_at, h.as_of)) AS turnover,
    argMax(h.sla, (h.computed_at, h.as_of)) AS sla,
    argMax(h.intent, (h.computed_at, h.as_of)) AS intent,
    argMax(h.alerting, (h.computed_at, h.as_of)) AS alerting,
    max(h.as_of) AS latest_event_at
FROM channel_health AS h FINAL
GROUP BY channel_id;
