"""Publishes alerts to ``alerts.<kind>.v1`` for downstream systems (one Avro record per alert).

Alerts are produced as soon as a batch raises them (they do not wait for the ClickHouse flush),
keyed by the entity they concern so one entity's alerts stay ordered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confluent_kafka import Producer

from dealstream.broker.headers import producer_headers
from dealstream.schemas import catalog, codec
from dealstream.schemas.registry import Encoder

ALERT = "alert"


class AlertPublisher:
    def __init__(
        self, producer: Producer, *, topic_prefix: str = "", encode: Encoder = codec.encode
    ) -> None:
        self._producer = producer
        self._encode = encode
        self._prefix = topic_prefix
        self._type = catalog.event_type(ALERT)

    def publish(self, alerts: Sequence[dict[str, Any]]) -> int:
        for alert in alerts:
            value, headers = self._encode(self._type, alert)
            self._producer.produce(
                self._prefix + catalog.topic_for_alert(alert["kind"]),
                value=value,
                key=str(alert["entity_key"]).encode(),
                headers=producer_headers(headers),
            )
        if alerts:
            self._producer.poll(0)
        return len(alerts)
