"""Where a connector's records go: validated, encoded, keyed and produced, or dead-lettered.

Delivery is tracked per record; :meth:`EventWriter.flush` returns only when Kafka acknowledged
everything written so far, which is the moment a connector may advance its cursor.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from dealstream.broker.dead_letters import DeadLetter, DeadLetterPublisher
from dealstream.broker.headers import producer_headers
from dealstream.schemas import catalog, codec, validation
from dealstream.schemas.registry import Encoder


class DeliveryError(RuntimeError):
    """Kafka did not acknowledge some records; the cursor must not move past them."""


class EventWriter:
    """Produces events of one type for one connector (``source`` names it in dead letters)."""

    def __init__(
        self,
        producer: Producer,
        *,
        event_type: str,
        source: str,
        topic_prefix: str = "",
        encode: Encoder = codec.encode,
    ) -> None:
        self._producer = producer
        self._encode = encode
        self._type = catalog.event_type(event_type)
        self._topic = topic_prefix + self._type.topic
        self._source = source
        self._dead_letters = DeadLetterPublisher(producer, encode=encode)
        self._failures: list[str] = []
        self.produced = 0
        self.dead_lettered = 0

    @property
    def topic(self) -> str:
        return self._topic

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error}")

    def reject(
        self, *, raw: bytes, position: str, code: str, message: str, stage: str = "SOURCE"
    ) -> None:
        """Send an unusable source record to ``dlq.<topic>`` with its bytes and position."""
        letter = DeadLetter(
            topic=self.topic,
            value=raw,
            error_code=code,
            error_message=message,
            stage=stage,  # type: ignore[arg-type]
            source=f"{self._source}:{position}",
        )
        self._dead_letters.publish([letter])
        self.dead_lettered += 1

    def write(self, record: Mapping[str, Any], *, raw: bytes, position: str) -> bool:
        """Validate and produce ``record``; on failure dead-letter ``raw`` and return False."""
        problems = validation.validate(self._type.name, record)
        if problems:
            first = problems[0]
            self.reject(
                raw=raw,
                position=position,
                code=first.code,
                message="; ".join(str(p) for p in problems),
                stage="VALIDATE",
            )
            return False
        try:
            value, headers = self._encode(self._type, record)
        except codec.EncodeError as error:
            self.reject(
                raw=raw, position=position, code=error.code, message=error.message, stage="VALIDATE"
            )
            return False
        key = self._type.key(record)
        while True:
            try:
                self._producer.produce(
                    self.topic,
                    value=value,
                    key=key,
                    headers=producer_headers(headers),
                    on_delivery=self._on_delivery,
                )
                break
            except BufferError:  # local queue full: let librdkafka drain it, then retry
                self._producer.poll(0.1)
        self._producer.poll(0)
        self.produced += 1
        return True

    def flush(self, timeout_s: float = 60.0) -> None:
        """Block until every record so far is acknowledged; raise if any was not."""
        deadline = time.monotonic() + timeout_s
        remaining = self._producer.flush(timeout_s)
        while remaining and time.monotonic() < deadline:
            remaining = self._producer.flush(1.0)
        if remaining or self._failures:
            failures, self._failures = self._failures, []
            raise DeliveryError(
                f"{remaining} record(s) unacknowledged, {len(failures)} failed: {failures[:3]}"
            )
