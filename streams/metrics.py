"""Prometheus series of the stream engine (module-level: one set per process)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from confluent_kafka import Message
from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from dealstream.streams.pipeline import BatchResult

EVENTS_IN = Counter(
    "dealstream_events_in_total", "Kafka records consumed by a pipeline", ["pipeline", "topic"]
)
EVENTS_OK = Counter(
    "dealstream_events_processed_total", "Records processed without error", ["pipeline"]
)
DEAD_LETTERS = Counter(
    "dealstream_dead_letters_total",
    "Records sent to a dead-letter topic",
    ["pipeline", "topic", "stage", "code"],
)
ALERTS_OUT = Counter("dealstream_alerts_total", "Alerts published", ["pipeline", "kind"])
EVENTS_OUT = Counter(
    "dealstream_events_out_total", "Events a pipeline published", ["pipeline", "event_type"]
)
BATCH_SECONDS = Histogram(
    "dealstream_batch_seconds",
    "Time to process one consumed batch (decode to sink buffer)",
    ["pipeline"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
RECORD_AGE_SECONDS = Histogram(
    "dealstream_record_age_seconds",
    "Age of the oldest record of each batch when processed (Kafka timestamp to now)",
    ["pipeline"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0),
)
STATE_RECORDS_REFUSED = Counter(
    "dealstream_state_records_refused_total",
    "State snapshots Kafka refused (e.g. larger than the topic allows); the worker goes on",
    ["pipeline", "topic"],
)
COMMITS = Counter(
    "dealstream_commits_total", "Offset commits after a successful sink flush", ["pipeline"]
)
CHECKPOINT_FAILURES = Counter(
    "dealstream_checkpoint_failures_total",
    "Flushes that failed; offsets stay uncommitted and consumption pauses",
    ["pipeline", "reason"],
)
STATE_ENTRIES = Gauge(
    "dealstream_state_entries",
    "Keys of a pipeline's state held in memory (one changelog entry each), at the last checkpoint",
    ["pipeline"],
)
SNAPSHOT_SECONDS = Histogram(
    "dealstream_snapshot_seconds",
    "Time a checkpoint spends building a pipeline's state records (the engine loop waits)",
    ["pipeline"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
PAUSED = Gauge("dealstream_paused", "1 while consumption is paused by backpressure", ["pipeline"])
CONSUMER_LAG = Gauge(
    "dealstream_consumer_lag", "Records behind the log end", ["pipeline", "topic", "partition"]
)


def observe_batch(
    pipeline: str, batch: Sequence[Message], result: BatchResult, elapsed_s: float
) -> None:
    """Count one processed batch of a pipeline (one call per batch, not per record)."""
    BATCH_SECONDS.labels(pipeline).observe(elapsed_s)
    EVENTS_IN.labels(pipeline, batch[0].topic()).inc(len(batch))
    EVENTS_OK.labels(pipeline).inc(result.processed)
    for letter in result.dead_letters:
        DEAD_LETTERS.labels(pipeline, letter.topic, letter.stage, letter.error_code).inc()
    for alert in result.alerts:
        ALERTS_OUT.labels(pipeline, str(alert.get("kind", ""))).inc()
    for event in result.events:
        EVENTS_OUT.labels(pipeline, str(event.get("event_type", ""))).inc()
    oldest_ms = batch[0].timestamp()[1]
    if oldest_ms > 0:
        RECORD_AGE_SECONDS.labels(pipeline).observe(max(0.0, time.time() - oldest_ms / 1000))


def lag_from_statistics(engine: str) -> Callable[[str], None]:
    """A librdkafka ``stats_cb`` that sets the consumer-lag gauge per topic and partition.

    librdkafka computes the lag itself (high watermark minus committed offset) and reports it
    in its statistics JSON every ``statistics.interval.ms``; -1 means not known yet.
    """

    def on_stats(document: str) -> None:
        try:
            topics = json.loads(document).get("topics", {})
        except ValueError:
            return
        for topic, info in topics.items():
            for partition, stats in info.get("partitions", {}).items():
                lag = stats.get("consumer_lag", -1)
                if partition != "-1" and stats.get("fetch_state") == "active" and lag >= 0:
                    CONSUMER_LAG.labels(engine, topic, partition).set(lag)

    return on_stats
