"""Copies every ``dlq.<topic>`` record into the ClickHouse ``dead_letters`` table.

Connectors and workers both dead-letter to Kafka; archiving from the topics gives analysts one
table with all of them, whoever rejected the record.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from confluent_kafka import Message

from dealstream.broker.headers import record_headers
from dealstream.schemas import catalog
from dealstream.schemas.codec import DecodeError, SchemaResolver, decoder_for
from dealstream.sinks.clickhouse import tables
from dealstream.streams import metrics
from dealstream.streams.pipeline import BatchResult, Row, TableSpec

log = logging.getLogger(__name__)

DEAD_LETTERS = TableSpec(tables.DEAD_LETTERS, tables.DEAD_LETTERS_COLUMNS)


_MAX_PARTITION = 0xFFFF  # kafka_partition is UInt16
_MAX_OFFSET = 2**63 - 1


def _position(value: int | None, limit: int) -> int:
    """A partition or offset that fits its unsigned column; anything else is stored as 0.

    Dead letters are written by anyone who can produce to ``dlq.*``: a value out of range
    would fail every insert of the batch and stall the worker, so it is treated as unknown.

    >>> _position(None, 10), _position(-1, 10), _position(11, 10), _position(7, 10)
    (0, 0, 0, 7)
    """
    return value if value is not None and 0 <= value <= limit else 0


def dead_letter_topics(topic_prefix: str = "") -> tuple[str, ...]:
    return tuple(catalog.dlq_topic(topic_prefix + t.topic) for t in catalog.event_types())


class DeadLetterArchivePipeline:
    name = "dead-letter-archive"
    tables: tuple[TableSpec, ...] = (DEAD_LETTERS,)

    def __init__(
        self, topics: Sequence[str] | None = None, *, resolver: SchemaResolver | None = None
    ) -> None:
        self.topics: tuple[str, ...] = tuple(topics or dead_letter_topics())
        self._decoders = {
            topic: decoder_for(topic, resolver=resolver).decode for topic in self.topics
        }

    def process(self, messages: Sequence[Message]) -> BatchResult:
        rows: list[Row] = []
        for message in messages:
            topic = message.topic() or ""
            try:
                letter = self._decoders[topic](message.value() or b"", record_headers(message))
            except (DecodeError, KeyError) as error:
                # A dead letter about a dead letter would loop; count it and log where it is.
                metrics.DEAD_LETTERS.labels(self.name, topic, "ARCHIVE", "undecodable").inc()
                log.error("unreadable dead letter at %s[%s]@%s: %s",
                          topic, message.partition(), message.offset(), error)  # fmt: skip
                continue
            rows.append(
                (
                    letter["original_topic"], _position(letter["partition"], _MAX_PARTITION),
                    _position(letter["offset"], _MAX_OFFSET),
                    letter["stage"], letter["source"], letter["error_code"],
                    letter["error_message"], letter["failed_at"], letter["key"], letter["value"],
                )
            )  # fmt: skip
        return BatchResult(rows={DEAD_LETTERS.name: rows}, processed=len(rows))
