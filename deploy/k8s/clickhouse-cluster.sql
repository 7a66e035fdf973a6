-- Option for a ClickHouse cluster (cluster name `dealstream`, macros {shard} and {replica}):
-- replicated local tables per shard plus Distributed tables under the names the code uses.
-- Run once, before the first worker starts (the migrations then find the tables and skip them).
-- Shown for pos_transactions and dead_letters; the other tables follow the same pattern with
-- the columns, ORDER BY and sharding key of their migration.
CREATE DATABASE IF NOT EXISTS dealstream ON CLUSTER dealstream;

CREATE TABLE IF NOT EXISTS dealstream.pos_transactions_local ON CLUSTER dealstream
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
    kafka_offset    UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/dealstream/pos_transactions', '{replica}', ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY event_id;

-- Sharded by the dedup key: a re-sent event reaches the shard that holds its first copy.
CREATE TABLE IF NOT EXISTS dealstream.pos_transactions ON CLUSTER dealstream
AS dealstream.pos_transactions_local
ENGINE = Distributed(dealstream, dealstream, pos_transactions_local, cityHash64(event_id));

CREATE TABLE IF NOT EXISTS dealstream.dead_letters_local ON CLUSTER dealstream
(
    original_topic  LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stage           LowCardinality(String),
    source          LowCardinality(String),
    error_code      LowCardinality(String),
    error_message   String,
    failed_at       DateTime64(3, 'UTC'),
    key             Nullable(String),
    value           String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/dealstream/dead_letters', '{replica}', failed_at)
ORDER BY (original_topic, kafka_partition, kafka_offset, stage, source);

CREATE TABLE IF NOT EXISTS dealstream.dead_letters ON CLUSTER dealstream
AS dealstream.dead_letters_local
ENGINE = Distributed(dealstream, dealstream, dead_letters_local,
                     cityHash64(original_topic, kafka_partition, kafka_offset));

-- FINAL over a Distributed table collapses duplicates per shard, which is all of them when the
-- sharding key is the dedup key, so the views of migrations 0001-0005 work unchanged.
