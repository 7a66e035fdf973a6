-- POS transaction lines, one row per event (one line of a receipt).
-- ReplacingMergeTree collapses rows with the same sorting key, so ORDER BY is the dedup key:
-- event_id alone, so a re-sent event collapses whatever else it carries. The newest ingested_at
-- wins. Dedup happens within a partition; occurred_at is part of the event, so a re-sent event
-- always lands in the same month. Store, SKU and time filters use the partition key and the
-- skip indexes below instead of the sorting key. BI tools read pos_transactions_dedup (FINAL).
CREATE TABLE IF NOT EXISTS pos_transactions
(
    event_id        String,
    source          LowCardinality(String),
    event_type      LowCardinality(String),
    occurred_at     DateTime64(3, 'UTC'),
    ingested_at     DateTime64(3, 'UTC'),
    customer_ref    Nullable(String),
    transaction_id  String,
    line_no         UInt32,
    store_id        LowCardinality(String),
    region          LowCardinality(String),
    sku             String,
    product_line    LowCardinality(String),
    quantity        Int32,
    unit_price      Decimal(18, 2),
    discount        Decimal(18, 2),
    amount          Decimal(18, 2),
    currency        LowCardinality(String),
    payment_method  LowCardinality(String),
    member_id       Nullable(String),
    cashier_id      Nullable(String),
    is_refund       Bool,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    INDEX idx_occurred_at occurred_at TYPE minmax GRANULARITY 1,
    INDEX idx_store_id store_id TYPE set(0) GRANULARITY 4,
    INDEX idx_region region TYPE set(0) GRANULARITY 4,
    INDEX idx_sku sku TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_transaction_id transaction_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_member_id member_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY event_id
-- Lets insert_deduplication_token (and identical retried blocks) land once without replication.
SETTINGS non_replicated_deduplication_window = 1000;

-- Records that failed parsing, validation or processing (mirrors dlq.<topic>), so analysts can
-- count and inspect them. One row per (record, stage, source): a record that fails again
-- collapses. `source` is part of the key because records rejected by a connector have no
-- partition/offset yet; their source carries the position instead (file:line, page, cursor).
CREATE TABLE IF NOT EXISTS dead_letters
(
    original_topic  LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stage           LowCardinality(String),
    source          LowCardinality(String),
    error_code      LowCardinality(String),
    error_message   String,
    failed_at       DateTime64(3, 'UTC'),
    -- The original record bytes as received (a ClickHouse String holds arbitrary bytes;
    -- base64Encode(value) shows them in a BI tool).
    key             Nullable(String),
    value           String
)
ENGINE = ReplacingMergeTree(failed_at)
ORDER BY (original_topic, kafka_partition, kafka_offset, stage, source)
SETTINGS non_replicated_deduplication_window = 1000;

-- What BI tools should query: duplicates that merges have not collapsed yet are removed here.
CREATE VIEW IF NOT EXISTS pos_transactions_dedup AS
SELECT * FROM pos_transactions FINAL;

-- Dead-letter counts per day, topic, stage and error code.
CREATE VIEW IF NOT EXISTS dead_letters_daily AS
SELECT
    toDate(failed_at) AS day,
    original_topic,
    stage,
    error_code,
    count() AS records
FROM dead_letters FINAL
GROUP BY day, original_topic, stage, error_code;
