-- Compliance violations found in chats and call transcripts, for QA dashboards.
-- alert_id is deterministic (rule, version, message, span), so a message re-processed after a
-- restart collapses onto the same row.
CREATE TABLE IF NOT EXISTS compliance_violations
(
    alert_id        String,
    rule_id         LowCardinality(String),
    rule_version    UInt32,
    severity        LowCardinality(String),
    conversation_id String,
    message_event_id String,
    rep_id          Nullable(String),
    speaker_role    LowCardinality(String),
    channel         LowCardinality(String),
    product_line    Nullable(String),
    phrase          String,
    matched_text    String,
    span_start      UInt32,
    span_end        UInt32,
    suggestion      String,
    occurred_at     DateTime64(3, 'UTC'),
    raised_at       DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    INDEX idx_occurred_at occurred_at TYPE minmax GRANULARITY 1,
    INDEX idx_rep_id rep_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(raised_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY alert_id
SETTINGS non_replicated_deduplication_window = 1000;

-- Violations per day, rule and rep (dashboard 3: behaviour and compliance health).
CREATE VIEW IF NOT EXISTS compliance_violations_daily AS
SELECT
    toDate(occurred_at) AS day,
    rule_id,
    severity,
    rep_id,
    count() AS violations
FROM compliance_violations FINAL
GROUP BY day, rule_id, severity, rep_id;
