"""Publishes alerts to ``alerts.<kind>.v1`` for downstream systems (one Avro record per alert).

Alerts are produced as soon as a batch raises them (they do not wait for the ClickHouse flush),
keyed by the entity they concern so one entity's alerts stay ordered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import Histogram

from dealstream.broker.headers import producer_headers
from dealstream.schemas import catalog, codec
from dealstream.schemas.registry import Encoder

ALERT = "alert"
EVENT_TO_ALERT_SECONDS = Histogram(
    "dealstream_event_to_alert_seconds",
    "From the Kafka timestamp of the record that raised an alert to the broker acknowledging it",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0),
)


def _observe(kind: str, source_ms: int) -> Callable[[KafkaError | None, Message], None]:
    def delivered(error: KafkaError | None, _: Message) -> None:
        if error is None:
            EVENT_TO_ALERT_SECONDS.labels(kind).observe(max(0.0, time.time() - source_ms / 1000))

    return delivered


class AlertPublisher:
    def __init__(
        self, producer: Producer, *, topic_prefix: str = "", encode: Encoder = codec.encode
    ) -> None:
        self._producer = producer
        self._encode = encode
        self._prefix = topic_prefix
        self._type = catalog.event_type(ALERT)

    def publish(
        self, alerts: Sequence[dict[str, Any]], sources: Mapping[str, int] | None = None
    ) -> int:
        """Produce ``alerts``; ``sources`` (alert id → Kafka timestamp in ms of the record that
        raised it) feeds the event → alert latency histogram when the broker acknowledges."""
        for alert in alerts:
            value, headers = self._encode(self._type, alert)
            source_ms = sources.get(alert["alert_id"]) if sources else None
            self._producer.produce(
                self._prefix + catalog.topic_for_alert(alert["kind"]),
                value=value,
                key=str(alert["entity_key"]).encode(),
                headers=producer_headers(headers),
                on_delivery=None if source_ms is None else _observe(alert["kind"], source_ms),
            )
        if alerts:
            self._producer.poll(0)
        return len(alerts)
