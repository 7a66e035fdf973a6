"""Dead letters: bad input is data, kept with its original bytes, the error and where it came from.

Connectors and workers both build :class:`DeadLetter` values and hand them to a
:class:`DeadLetterPublisher`, which writes them to ``dlq.<topic>`` as Avro records.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka import Producer

from dealstream.broker.headers import RecordHeaders, producer_headers
from dealstream.schemas import catalog, codec
from dealstream.schemas.registry import Encoder

DEAD_LETTER = "dead_letter"

Stage = Literal["DECODE", "VALIDATE", "PROCESS", "SINK", "SOURCE"]


@dataclass(frozen=True)
class DeadLetter:
    """One record that could not be processed, and why.

    ``topic`` is the topic the record came from (or was meant for, at a connector), ``source``
    names who saw it fail and where (``worker-1``, ``pos-file:/data/x.csv:42``).
    """

    topic: str
    value: bytes | None
    error_code: str
    error_message: str
    stage: Stage
    source: str
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None
    headers: RecordHeaders = field(default_factory=list)
    failed_at_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    @property
    def dlq_topic(self) -> str:
        return catalog.dlq_topic(self.topic)

    def to_record(self) -> dict[str, Any]:
        return {
            "original_topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
            "value": self.value if self.value is not None else b"",
            "headers": [{"key": name, "value": value} for name, value in self.headers],
            "error_code": self.error_code,
            "error_message": self.error_message[:4096],
            "stage": self.stage,
            "source": self.source,
            "failed_at": self.failed_at_ms,
        }


class DeadLetterPublisher:
    """Produces dead letters through a shared producer (delivery is awaited at checkpoints)."""

    def __init__(self, producer: Producer, *, encode: Encoder = codec.encode) -> None:
        self._producer = producer
        self._encode = encode

    def publish(self, letters: Iterable[DeadLetter]) -> int:
        count = 0
        for letter in letters:
            value, headers = self._encode(DEAD_LETTER, letter.to_record())
            self._producer.produce(
                letter.dlq_topic, value=value, key=letter.key, headers=producer_headers(headers)
            )
            count += 1
        if count:
            self._producer.poll(0)
        return count
