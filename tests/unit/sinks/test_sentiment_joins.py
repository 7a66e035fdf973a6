"""Sentiment reaches the customer view (through journey steps) and channel health (per store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clickhouse_connect.driver.client import Client

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
REVIEW_COLUMNS = [
    "event_id", "platform", "review_id", "store_id", "region", "rating", "text", "posted_at",
    "score", "label", "learned", "model_name", "model_version", "model_examples", "scored_at",
    "kafka_topic", "kafka_partition", "kafka_offset",
]  # fmt: skip


def review(n: int, store: str, score: float, days_ago: int) -> list[object]:
    label = "negative" if score < -0.2 else "positive" if score > 0.2 else "neutral"
    return [
        f"r{n}", "meituan", f"{n}", store, "south", 3, "text", T0 - timedelta(days=days_ago),
        score, label, False, "logreg", "1", 10, T0, "reviews.posts.v1", 0, n,
    ]  # fmt: skip


def health(channel: str, score: float) -> list[object]:
    return [channel, "store", "south", score, 0.9, 0.9, 0.9, 5, 5, 2, 0, T0, T0, f"h{channel}", "1"]


def test_channel_health_is_scaled_by_recent_review_sentiment(client: Client) -> None:
    client.insert(
        "channel_health",
        [health("S1", 0.8), health("S2", 0.8), health("S3", 0.6)],
        column_names=[
            "channel_id", "channel_kind", "region", "score", "turnover", "sla", "intent",
            "sla_samples", "buyers", "returning", "alerting", "as_of", "computed_at", "event_id",
            "model_version",
        ],
    )  # fmt: skip
    rows = [review(1, "S1", -1.0, 1), review(2, "S1", -0.6, 2), review(3, "S2", 1.0, 3)]
    rows.append(review(4, "S2", -1.0, 60))  # older than the 30-day window: left out
    client.insert("review_sentiment", rows, column_names=REVIEW_COLUMNS)
    got = {
        r[0]: r[1:]
        for r in client.query(
            "SELECT channel_id, reviews_30d, round(review_sentiment_30d, 3), negative_reviews_30d,"
            " round(score_with_reviews, 3) FROM channel_health_with_reviews ORDER BY channel_id"
        ).result_rows
    }
    assert got["S1"] == (2, -0.8, 2, 0.08)  # 0.8 * (-0.8 + 1) / 2
    assert got["S2"] == (1, 1.0, 0, 0.8)
    assert got["S3"] == (None, None, None, 0.6)  # no reviews: the stream's own score


def test_customer_sentiment_follows_merged_customer_ids(client: Client) -> None:
    client.insert(
        "journey_steps",
        [
            ["m1", "wecom_message", "c-old", "S1", "store", T0, "wecom.message", None, "t", 0, 1],
            ["m2", "wecom_message", "c-new", "S1", "store", T0, "wecom.message", None, "t", 0, 2],
        ],
        column_names=[
            "event_id", "step", "customer_id", "channel", "channel_kind", "occurred_at",
            "event_type", "amount", "kafka_topic", "kafka_partition", "kafka_offset",
        ],
    )  # fmt: skip
    client.insert(
        "customer_merges",
        [["c-old", "c-new", 1, T0, "m2"]],
        column_names=["merged_id", "customer_id", "seq", "merged_at", "event_id"],
    )
    chats = [
        [eid, "conv", eid, "wecom", role, T0, score, label, "logreg", "1", 10, T0, "w", 0, n]
        for n, (eid, role, score, label) in enumerate(
            [("m1", "CUSTOMER", -0.9, "negative"), ("m2", "CUSTOMER", 0.1, "neutral"),
             ("m3", "SALES_REP", 0.9, "positive")]  # a rep's message: not the customer's mood
        )
    ]  # fmt: skip
    client.insert(
        "chat_sentiment",
        chats,
        column_names=[
            "event_id", "conversation_id", "message_id", "channel", "speaker_role",
            "occurred_at", "score", "label", "model_name", "model_version", "model_examples",
            "scored_at", "kafka_topic", "kafka_partition", "kafka_offset",
        ],
    )  # fmt: skip
    rows = client.query(
        "SELECT customer_id, scored_messages, round(mean_score, 2), negative_messages "
        "FROM customer_sentiment"
    ).result_rows
    assert [tuple(r) for r in rows] == [("c-new", 2, -0.4, 1)]
