"""Kafka header typing between confluent-kafka (str | bytes | None values) and our codec (bytes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from confluent_kafka import Message

RecordHeaders = list[tuple[str, bytes | None]]
ProducerHeaders = list[tuple[str, str | bytes | None]]


def record_headers(message: Message) -> RecordHeaders | None:
    """Headers of a consumed record; librdkafka always returns a list of (str, bytes|None)."""
    return cast(RecordHeaders | None, message.headers())


def producer_headers(headers: Sequence[tuple[str, bytes | None]]) -> ProducerHeaders:
    """Our (str, bytes) headers in the type ``Producer.produce`` declares (no copy)."""
    return cast(ProducerHeaders, headers)
