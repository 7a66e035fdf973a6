"""The topics dealstream itself uses, with the settings each needs.

Event topics share one partition count so that topics keyed by the same entity (SKU+region for
POS and inventory) stay co-partitioned; dead letters keep a week; rule config is compacted.
"""

from __future__ import annotations

from dealstream.broker.settings import KafkaSettings
from dealstream.broker.topics import TopicSpec
from dealstream.schemas import catalog

ALERT_KINDS = ("compliance", "business", "forecast", "channel")
RULES_TOPIC = "config.rules.v1"
FORECAST_STATE_TOPIC = "state.forecast.v1"
RULES_STATE_TOPIC = "state.rules.v1"
REP_FORECAST_STATE_TOPIC = "state.rep-forecast.v1"
STORE_TASKS_STATE_TOPIC = "state.store-tasks.v1"
REVIEWS_STATE_TOPIC = "state.reviews.v1"
IDENTITY_STATE_TOPIC = "state.identity.v1"
_WEEK_MS = str(7 * 24 * 3600 * 1000)
STATE_MAX_BYTES = 16 * 1024 * 1024
"""A key's state snapshot may outgrow Kafka's 1 MB default (long windows on busy keys)."""
STATE_TOPIC_CONFIG = {"cleanup.policy": "compact", "max.message.bytes": str(STATE_MAX_BYTES)}


def standard_topics(kafka: KafkaSettings) -> list[TopicSpec]:
    """Every topic a dealstream deployment needs (names carry ``kafka.topic_prefix``).

    >>> names = [t.name for t in standard_topics(KafkaSettings())]
    >>> "pos.transactions.v1" in names and "dlq.pos.transactions.v1" in names
    True
    """
    specs: list[TopicSpec] = []
    for event_type in catalog.event_types():
        topic = kafka.topic(event_type.topic)
        specs.append(TopicSpec(topic, kafka.topic_partitions, kafka.topic_replication))
        specs.append(
            TopicSpec(
                catalog.dlq_topic(topic),
                1,
                kafka.topic_replication,
                {"retention.ms": _WEEK_MS},
            )
        )
    for kind in ALERT_KINDS:
        specs.append(
            TopicSpec(
                kafka.topic(catalog.topic_for_alert(kind)),
                kafka.topic_partitions,
                kafka.topic_replication,
            )
        )
    specs.append(
        TopicSpec(
            kafka.topic(RULES_TOPIC),
            1,
            kafka.topic_replication,
            # faust's aiokafka consumer reads it: stored uncompressed whatever producers send.
            {"cleanup.policy": "compact", "compression.type": "uncompressed"},
        )
    )
    # Forecast state: compacted, co-partitioned with its input (input partition p -> p).
    specs.append(
        TopicSpec(
            kafka.topic(FORECAST_STATE_TOPIC),
            kafka.topic_partitions,
            kafka.topic_replication,
            STATE_TOPIC_CONFIG,
        )
    )
    # Business rule state: compacted, co-partitioned with the event topics (partition p -> p).
    specs.append(
        TopicSpec(
            kafka.topic(RULES_STATE_TOPIC),
            kafka.topic_partitions,
            kafka.topic_replication,
            STATE_TOPIC_CONFIG,
        )
    )
    # Sales rep forecast state: compacted, one partition (a rep's orders span every partition).
    specs.append(
        TopicSpec(
            kafka.topic(REP_FORECAST_STATE_TOPIC),
            1,
            kafka.topic_replication,
            STATE_TOPIC_CONFIG,
        )
    )
    # Review sentiment state (models per partition, negative runs per store): compacted,
    # co-partitioned with reviews.posts.v1.
    specs.append(
        TopicSpec(
            kafka.topic(REVIEWS_STATE_TOPIC),
            kafka.topic_partitions,
            kafka.topic_replication,
            STATE_TOPIC_CONFIG,
        )
    )
    # Store task state: compacted, one partition (a customer's events span every partition).
    specs.append(
        TopicSpec(
            kafka.topic(STORE_TASKS_STATE_TOPIC),
            1,
            kafka.topic_replication,
            STATE_TOPIC_CONFIG,
        )
    )
    # Identity and journey state: compacted, one partition (a customer's events span them all).
    specs.append(
        TopicSpec(
            kafka.topic(IDENTITY_STATE_TOPIC),
            1,
            kafka.topic_replication,
            STATE_TOPIC_CONFIG,
        )
    )
    return specs
