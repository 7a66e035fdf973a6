"""Column order of the tables the sink writes, the one place producers of rows look it up.

A test checks these against the migrated tables, so a migration that adds a column fails loudly
until the tuple (and the code building rows) follows.
"""

from __future__ import annotations

POS_TRANSACTIONS = "pos_transactions"
POS_TRANSACTIONS_COLUMNS: tuple[str, ...] = (
    "event_id",
    "source",
    "event_type",
    "occurred_at",
    "ingested_at",
    "customer_ref",
    "transaction_id",
    "line_no",
    "store_id",
    "region",
    "sku",
    "product_line",
    "quantity",
    "unit_price",
    "discount",
    "amount",
    "currency",
    "payment_method",
    "member_id",
    "cashier_id",
    "is_refund",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)

DEAD_LETTERS = "dead_letters"
DEAD_LETTERS_COLUMNS: tuple[str, ...] = (
    "original_topic",
    "kafka_partition",
    "kafka_offset",
    "stage",
    "source",
    "error_code",
    "error_message",
    "failed_at",
    "key",
    "value",
)

COMPLIANCE_VIOLATIONS = "compliance_violations"
COMPLIANCE_VIOLATIONS_COLUMNS: tuple[str, ...] = (
    "alert_id",
    "rule_id",
    "rule_version",
    "severity",
    "conversation_id",
    "message_event_id",
    "rep_id",
    "speaker_role",
    "channel",
    "product_line",
    "phrase",
    "matched_text",
    "span_start",
    "span_end",
    "suggestion",
    "occurred_at",
    "raised_at",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)

FORECASTS = "forecasts"
FORECASTS_COLUMNS: tuple[str, ...] = (
    "key",
    "sku",
    "region",
    "period",
    "period_start",
    "horizon",
    "target_start",
    "point",
    "lower",
    "upper",
    "level",
    "status",
    "factors",
    "model_name",
    "model_version",
    "periods_seen",
    "freshness",
    "produced_at",
    "event_id",
    "kafka_partition",
    "kafka_offset",
)

FORECAST_ACCURACY = "forecast_accuracy"
FORECAST_ACCURACY_COLUMNS: tuple[str, ...] = (
    "key",
    "region",
    "horizon",
    "period",
    "period_start",
    "forecast",
    "actual",
    "abs_error",
    "model_name",
    "model_version",
    "produced_at",
    "event_id",
)

REP_FORECAST_ACCURACY = "rep_forecast_accuracy"
REP_FORECAST_ACCURACY_COLUMNS: tuple[str, ...] = (
    "rep",
    "period",
    "period_start",
    "horizon",
    "forecast",
    "actual",
    "abs_error",
    "deviation",
    "n",
    "mae",
    "wape",
    "bias",
    "model_name",
    "model_version",
    "produced_at",
    "event_id",
)

REVIEW_SENTIMENT = "review_sentiment"
REVIEW_SENTIMENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "platform",
    "review_id",
    "store_id",
    "region",
    "sku",
    "product",
    "rating",
    "text",
    "customer_ref",
    "posted_at",
    "score",
    "label",
    "learned",
    "model_name",
    "model_version",
    "model_examples",
    "scored_at",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)

JOURNEY_STEPS = "journey_steps"
JOURNEY_STEPS_COLUMNS: tuple[str, ...] = (
    "event_id", "step", "customer_id", "channel", "channel_kind", "occurred_at", "event_type",
    "amount", "kafka_topic", "kafka_partition", "kafka_offset",
)  # fmt: skip

CUSTOMER_MERGES = "customer_merges"
CUSTOMER_MERGES_COLUMNS: tuple[str, ...] = (
    "merged_id", "customer_id", "seq", "merged_at", "event_id",
)  # fmt: skip

CHANNEL_HEALTH = "channel_health"
CHANNEL_HEALTH_COLUMNS: tuple[str, ...] = (
    "channel_id", "channel_kind", "region", "score", "turnover", "sla", "intent", "sla_samples",
    "buyers", "returning", "alerting", "as_of", "computed_at", "event_id", "model_version",
)  # fmt: skip

STORE_TASKS = "store_tasks"
STORE_TASKS_COLUMNS: tuple[str, ...] = (
    "task_id", "rule_id", "rule_version", "store_id", "region", "subject", "series", "sku",
    "customer_ref", "views", "stock_on_hand", "stock_scope", "preference_tags", "script",
    "first_view_at", "created_at", "expires_at", "raised_at", "event_id",
)  # fmt: skip

STORE_TASK_CONVERSIONS = "store_task_conversions"
STORE_TASK_CONVERSIONS_COLUMNS: tuple[str, ...] = (
    "task_id", "rule_id", "rule_version", "store_id", "conversion_store_id", "customer_ref",
    "created_at", "converted_at", "amount", "purchase_event_id", "raised_at",
)  # fmt: skip

CHAT_SENTIMENT = "chat_sentiment"
CHAT_SENTIMENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "conversation_id",
    "message_id",
    "channel",
    "speaker_role",
    "rep_id",
    "customer_ref",
    "occurred_at",
    "score",
    "label",
    "model_name",
    "model_version",
    "model_examples",
    "scored_at",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)
