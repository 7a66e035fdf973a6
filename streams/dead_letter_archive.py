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
                    letter["original_topic"], letter["partition"] or 0, letter["offset"] or 0,
                    letter["stage"], letter["source"], letter["error_code"],
                    letter["error_message"], letter["failed_at"], letter["key"], letter["value"],
                )
            )  # fmt: skip
        return BatchResult(rows={DEAD_LETTERS.name: rows}, processed=len(rows))
