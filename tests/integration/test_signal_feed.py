"""The forecast signal feed knows when it has read every signal partition to its end, also for
empty partitions and for a second catch-up after a rebalance (no end-of-partition event then)."""

from __future__ import annotations

import time

from dealstream.broker.clients import make_producer
from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.output import EventWriter
from dealstream.schemas.samples import sample_event
from dealstream.streams.forecast_signals import KafkaSignalFeed

TENDERS = "tenders.notices.v1"


def test_catch_up_returns_at_once_on_empty_and_already_read_partitions(
    kafka: KafkaSettings,
) -> None:
    feed = KafkaSignalFeed(kafka, [kafka.topic(TENDERS)], catch_up_s=30)
    try:
        started = time.monotonic()
        assert feed.catch_up() == []  # four empty partitions
        writer = EventWriter(
            make_producer(kafka, client_id="it-signals"), event_type="tender.notice",
            source="it", topic_prefix=kafka.topic_prefix,
        )  # fmt: skip
        for _ in range(3):
            assert writer.write(sample_event("tender.notice"), raw=b"", position="it")
        writer.flush()
        assert len(feed.catch_up()) == 3  # what arrived since
        assert feed.catch_up() == []  # read to the end before: nothing to wait for
        assert time.monotonic() - started < 20, "a catch-up waited for its timeout"
    finally:
        feed.close()
