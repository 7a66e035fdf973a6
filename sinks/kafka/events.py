"""Publishes the enveloped events pipelines make (e.g. ``store.task``) to their event type's
topic, keyed as the catalog says, and hands them on to listeners (WeCom delivery of store tasks).

Events are produced as soon as the batch made them, like alerts (before the offsets they come
from are committed): at-least-once, with event ids that a replay derives again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Producer
from prometheus_client import Counter

from dealstream.broker.headers import producer_headers
from dealstream.schemas import catalog, codec
from dealstream.schemas.registry import Encoder

log = logging.getLogger(__name__)

UNENCODABLE = Counter(
    "dealstream_events_unencodable_total",
    "Pipeline-made events with no known type or not fitting their schema (logged, not produced)",
    ["event_type"],
)

Listener = Callable[[Sequence[dict[str, Any]]], None]


class EventPublisher:
    """The engine's event sink: one Kafka record per event on its event type's topic."""

    def __init__(
        self,
        producer: Producer,
        *,
        event_types: Sequence[str],
        topic_prefix: str = "",
        encode: Encoder = codec.encode,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self._producer = producer
        self._types = {name: catalog.event_type(name) for name in event_types}
        self._prefix = topic_prefix
        self._encode = encode
        self._listeners = tuple(listeners)

    def publish(self, events: Sequence[dict[str, Any]]) -> int:
        sent: list[dict[str, Any]] = []
        for event in events:
            et = self._types.get(event.get("event_type", ""))
            if et is None:  # a bug upstream: say so, never stop the engine
                UNENCODABLE.labels(str(event.get("event_type"))).inc()
                log.error("no topic for event type %r: not produced", event.get("event_type"))
                continue
            try:
                value, headers = self._encode(et, event)
            except codec.EncodeError as error:
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
        return len(sent)
