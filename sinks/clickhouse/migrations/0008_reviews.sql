-- Review sentiment: one row per review event (platform + review id), scored in the stream.
-- event_id is deterministic (platform, review id), so a review re-read from the API or an export,
-- or re-processed after a restart, collapses onto one row.
CREATE TABLE IF NOT EXISTS review_sentiment
(
    event_id        String,
    platform        LowCardinality(String),
    review_id       String,
    store_id        String,
    region          LowCardinality(String),
    sku             Nullable(String),
    product         Nullable(String),
    rating          Nullable(UInt8),
    text            String,
    customer_ref    Nullable(String),
    posted_at       DateTime64(3, 'UTC'),
    score           Float64,
    label           LowCardinality(String),
    learned         Bool,
    model_name      LowCardinality(String),
    model_version   LowCardinality(String),
    model_examples  UInt64,
    scored_at       DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    INDEX idx_store_id store_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toYYYYMM(posted_at)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

-- Chat messages scored by the same model (chats have no stars: scored, never learned from).
CREATE TABLE IF NOT EXISTS chat_sentiment
(
    event_id        String,
    conversation_id String,
    message_id      String,
    channel         LowCardinality(String),
    speaker_role    LowCardinality(String),
    rep_id          Nullable(String),
    customer_ref    Nullable(String),
    occurred_at     DateTime64(3, 'UTC'),
    score           Float64,
    label           LowCardinality(String),
    model_name      LowCardinality(String),
    model_version   LowCardinality(String),
    model_examples  UInt64,
    scored_at       DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64
)
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY event_id;

-- Reviews per day and store: the review side of a store's channel health.
CREATE VIEW IF NOT EXISTS store_review_health_daily AS
SELECT
    toDate(posted_at) AS day,
    store_id,
    region,
    count() AS reviews,
    countIf(label = 'negative') AS negative,
    countIf(label = 'positive') AS positive,
    avg(score) AS mean_score,
    avgOrNull(rating) AS mean_rating
FROM review_sentiment FINAL
GROUP BY day, store_id, region;
