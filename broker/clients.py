"""Factories for confluent-kafka producers and consumers with dealstream's delivery guarantees.

Producers are idempotent with ``acks=all`` (a retried send never duplicates and an acknowledged
record survives a broker restart). Consumers never auto-commit: offsets are committed by the
worker only after the sink has flushed the rows they cover.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer

from dealstream.broker.settings import KafkaSettings


def make_producer(kafka: KafkaSettings, *, client_id: str, **overrides: Any) -> Producer:
    config: dict[str, Any] = {
        **kafka.client_config(),
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "batch.size": 262_144,
        "queue.buffering.max.messages": 500_000,
        # Up to the largest record any of our topics accepts (state snapshots, 16 MB); event
        # topics keep the broker's 1 MB limit.
        "message.max.bytes": 16 * 1024 * 1024 + 65_536,
    }
    config.update(overrides)
    return Producer(config)


def make_consumer(
    kafka: KafkaSettings, *, group_id: str, client_id: str, **overrides: Any
) -> Consumer:
    config: dict[str, Any] = {
        **kafka.client_config(),
        "group.id": group_id,
        "client.id": client_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # range, not (cooperative-)sticky: it splits every topic's partitions over the members
        # separately, so the hot topics are shared even when many one-partition topics (DLQs)
        # are subscribed too, and co-partitioned topics (same key, same partition count) land
        # on the same member, which keyed-state joins rely on.
        "partition.assignment.strategy": "range",
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1_000,
        "fetch.min.bytes": 1,
        "fetch.wait.max.ms": 50,
        "queued.max.messages.kbytes": 65_536,
    }
    config.update(overrides)
    return Consumer(config)
