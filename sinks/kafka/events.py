"""Routes a pipeline's output records: alerts to their alert topics, enveloped events (records
with an ``event_type``, e.g. ``store.task``) to their event type's topic, keyed as the catalog
says, and on to any listeners (WeCom delivery of store tasks).

The engine has one per-batch Kafka output, its alert sink; this router stands in that place so a
pipeline can publish events of its own type without a change to the engine. Events are produced
as soon as the batch made them, like alerts (before the offsets they come from are committed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import Producer
from prometheus_client import Counter

from dealstream.broker.headers import producer_headers
from dealstream.schemas import catalog, codec
from dealstream.schemas.registry import Encoder
from dealstream.sinks.kafka.alerts import AlertPublisher

log = logging.getLogger(__name__)

UNENCODABLE = Counter(
    "dealstream_events_unencodable_total",
    "Pipeline-made events that did not fit their schema (logged, not produced)",
    ["event_type"],
)

Listener = Callable[[Sequence[dict[str, Any]]], None]


class EventRouter:
    """An alert sink that also publishes enveloped events of the types it is given."""

    def __init__(
        self,
        producer: Producer,
        alerts: AlertPublisher,
        *,
        event_types: Sequence[str],
        topic_prefix: str = "",
        encode: Encoder = codec.encode,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self._producer = producer
        self._alerts = alerts
        self._types = {name: catalog.event_type(name) for name in event_types}
        self._prefix = topic_prefix
        self._encode = encode
        self._listeners = tuple(listeners)

    def publish(
        self, alerts: Sequence[dict[str, Any]], sources: Mapping[str, int] | None = None
    ) -> int:
        plain: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for record in alerts:
            (events if record.get("event_type") in self._types else plain).append(record)
        count = self._alerts.publish(plain, sources) if plain else 0
        sent: list[dict[str, Any]] = []
        for event in events:
            et = self._types[event["event_type"]]
            try:
                value, headers = self._encode(et, event)
            except codec.EncodeError as error:  # a bug upstream: say so, never stop the engine
                UNENCODABLE.labels(et.name).inc()
                log.error("%s %s not produced: %s", et.name, event.get("event_id"), error)
                continue
            sent.append(event)
            self._producer.produce(
                self._prefix + et.topic,
                value=value,
                key=et.key(event),
                headers=producer_headers(headers),
            )
        if sent:
            self._producer.poll(0)
            for listener in self._listeners:
                listener(sent)
        return count + len(sent)
